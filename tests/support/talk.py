"""A sample talk: a face on screen and real speech (espeak-ng), cached under ``.cache/talk``.

Used by the pipeline tests and by ``nox -s demo``.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.support.speech import SAMPLE_RATE, speech_timeline

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "talk"
SIZE = (640, 360)
FPS = Fraction(15)
VERSION = "talk-v1"

SENTENCES = (
    "Welcome back to the show, today we talk about saving money.",
    "Here is the thing nobody tells you about your monthly budget.",
    "Most people lose three hundred dollars every month on subscriptions they forgot.",
    "So what can you actually do about it this week?",
    "First, print your bank statement and circle every repeating charge.",
    "Second, cancel anything you did not use in the last thirty days.",
    "That one habit saved our listeners more than two thousand dollars a year.",
    "And now a short story about my grandfather and his old bicycle.",
    "He rode it to work every single day for forty years.",
    "Why does this matter for your health and your wallet?",
    "Because walking or cycling to work can cut your costs in half.",
    "It also adds years to your life, according to a large study from Denmark.",
    "Thanks for listening, and see you next week.",
)


def talk_video(cache_dir: Path = CACHE_DIR) -> Path:
    """The cached talk MP4 (about 60 s), built on first use."""
    target = cache_dir / f"{VERSION}.mp4"
    if target.exists():
        return target
    samples, _ = speech_timeline(SENTENCES, gap=0.7)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=cache_dir, prefix=".talk-", suffix=".mp4")
    os.close(fd)
    try:
        _write(Path(name), samples)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return target


def _face() -> np.ndarray:
    from skimage import data

    face = data.astronaut()[20:220, 130:300]  # the astronaut's head and shoulders
    return np.asarray(face, dtype=np.uint8)


def _write(path: Path, samples: np.ndarray) -> None:
    width, height = SIZE
    face = _face()
    duration = len(samples) / SAMPLE_RATE
    x = np.linspace(0, 1, width, dtype=np.float32)
    backdrop = np.stack([40 + 60 * x, 50 + 30 * x, 90 - 40 * x], axis=-1).astype(np.uint8)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        for index in range(round(duration * FPS)):
            image = np.repeat(backdrop[None], height, axis=0).copy()
            left = 140 + int(20 * np.sin(index / 40))  # the speaker sits left of centre
            image[100 : 100 + face.shape[0], left : left + face.shape[1]] = face
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        stereo = np.stack([samples, samples]).astype(np.float32)
        for offset in range(0, stereo.shape[1], 1024):
            chunk = np.ascontiguousarray(stereo[:, offset : offset + 1024])
            aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            aframe.sample_rate, aframe.pts = SAMPLE_RATE, offset
            container.mux(audio.encode(aframe))
        container.mux(audio.encode())


def picture_stops_early(dest: Path, picture_seconds: float) -> Path:
    """The sample talk as WebM (VP8, Opus) whose picture stops after ``picture_seconds``
    while the speech goes on (a recording whose camera stopped first). WebM records no
    stream duration: only the packets tell where the picture ends."""
    with av.open(str(talk_video())) as source, av.open(str(dest), "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.time_base = 1 / FPS
        video.options = {"deadline": "realtime", "cpu-used": "8"}
        audio = out.add_stream("libopus", rate=48_000, layout="mono")
        resampler = av.AudioResampler(
            format=audio.codec_context.format.name, layout="mono", rate=48_000
        )
        fifo, size, shown, heard = av.AudioFifo(), audio.codec_context.frame_size or 960, 0, 0
        for frame in source.decode(source.streams.video[0], source.streams.audio[0]):
            if isinstance(frame, av.VideoFrame):
                if shown / FPS < picture_seconds:
                    picture = frame.reformat(320, 180, "yuv420p")
                    picture.pts, picture.time_base = shown, 1 / FPS
                    out.mux(video.encode(picture))
                    shown += 1
                continue
            for resampled in resampler.resample(frame):
                resampled.pts = None
                fifo.write(resampled)
            while fifo.samples >= size:
                chunk = fifo.read(size)
                chunk.pts, chunk.time_base = heard, Fraction(1, 48_000)
                heard += size
                out.mux(audio.encode(chunk))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return dest
