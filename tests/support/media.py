"""Synthetic media for tests, encoded for real with PyAV.

Patterns are chosen so the decoded output tells where each pixel came from:
the source's luma ramps left to right (a column's brightness gives its x), a
background's luma steps with its frame index, and flashes coincide with beeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
RATE = 48_000


def luma_of_x(x: npt.ArrayLike, width: int) -> npt.NDArray[np.float64]:
    """The luma a ramp source has at column ``x`` (16 at the left, 235 at the right)."""
    return 16 + 219 * np.asarray(x, dtype=np.float64) / (width - 1)


def x_of_luma(luma: npt.ArrayLike, width: int) -> npt.NDArray[np.float64]:
    """Inverse of :func:`luma_of_x`."""
    return (np.asarray(luma, dtype=np.float64) - 16) / 219 * (width - 1)


def ramp(width: int, height: int) -> Callable[[int], Image]:
    """Frames whose grey level encodes the column (same picture every frame)."""
    row = luma_of_x(np.arange(width), width).round().astype(np.uint8)
    gray = np.repeat(row[None, :], height, axis=0)
    picture = np.repeat(gray[:, :, None], 3, axis=2)
    return lambda index: picture


def boxed(
    picture: Callable[[int], Image], width: int, height: int, x: int, y: int
) -> Callable[[int], Image]:
    """Frames of ``picture`` pasted at (``x``, ``y``) on black ``width`` x ``height`` frames
    (letterbox or pillarbox bars baked into the picture)."""

    def make(index: int) -> Image:
        inner = picture(index)
        frame = np.zeros((height, width, 3), np.uint8)
        frame[y : y + inner.shape[0], x : x + inner.shape[1]] = inner
        return frame

    return make


def steps(width: int, height: int, levels: Sequence[int]) -> Callable[[int], Image]:
    """Flat grey frames; frame ``i`` has level ``levels[i % len(levels)]``."""
    return lambda index: np.full((height, width, 3), levels[index % len(levels)], np.uint8)


def flashes(width: int, height: int, fps: Fraction, at: Sequence[float]) -> Callable[[int], Image]:
    """Dark frames, white for the frame that starts at each time in ``at``."""
    flash_frames = {round(t * fps) for t in at}

    def make(index: int) -> Image:
        level = 235 if index in flash_frames else 16
        return np.full((height, width, 3), level, np.uint8)

    return make


def tone(duration: float, freq: float = 440.0, beeps: Sequence[float] | None = None) -> Image:
    """Stereo float32 audio: a steady tone, or silence with 50 ms beeps at ``beeps``."""
    t = np.arange(round(duration * RATE)) / RATE
    wave = 0.4 * np.sin(2 * np.pi * freq * t)
    if beeps is not None:
        gate = np.zeros_like(t)
        for start in beeps:
            gate[(t >= start) & (t < start + 0.05)] = 1.0
        wave *= gate
    return np.stack([wave, wave]).astype(np.float32)  # type: ignore[return-value]


_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_video(
    path: Path,
    make_frame: Callable[[int], Image],
    *,
    width: int,
    height: int,
    fps: Fraction = Fraction(30),
    duration: float = 2.0,
    audio: Image | None = None,
    rotation: int = 0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    frame_times: Sequence[float] | None = None,
    gop: int = 30,
    audio_delay: float = 0.0,
) -> Path:
    """Encode frames (and optional float32 audio at 48 kHz, 1, 2 or 6 channels) into ``path``.

    ``frame_times`` (seconds) gives a variable frame rate; otherwise frames are
    ``1/fps`` apart for ``duration``. ``audio_delay`` starts the audio track that
    many seconds after the first video frame.
    """
    times = (
        frame_times
        if frame_times is not None
        else [float(i / fps) for i in range(round(duration * fps))]
    )
    time_base = Fraction(1, 90_000)
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.codec_context.time_base = time_base
        video.codec_context.gop_size = gop
        if codec == "libx264":
            video.codec_context.options = {"preset": "ultrafast", "crf": "18"}
        if rotation:
            video.set_display_rotation(rotation)
        stream_audio = None
        if audio is not None:
            stream_audio = container.add_stream("aac", rate=RATE)
            stream_audio.layout = _LAYOUTS[audio.shape[0]]
        for index, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(make_frame(index), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts = round(t / time_base)
            frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if stream_audio is not None and audio is not None:
            for start in range(0, audio.shape[1], 1024):
                chunk = np.ascontiguousarray(audio[:, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(
                    chunk, format="fltp", layout=_LAYOUTS[audio.shape[0]]
                )
                frame.sample_rate, frame.pts = RATE, start + round(audio_delay * RATE)
                container.mux(stream_audio.encode(frame))
            container.mux(stream_audio.encode(None))
    return path


def decode_gray(path: Path) -> tuple[list[float], list[Image]]:
    """Every decoded frame of ``path`` as (times, luma planes)."""
    times: list[float] = []
    planes: list[Image] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.time))
            planes.append(frame.to_ndarray(format="gray"))
    return times, planes


def decode_rgb_at(path: Path, seconds: float) -> Image:
    """The RGB picture of the frame shown at ``seconds``."""
    chosen: Image | None = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time <= seconds + 1e-6:
                chosen = frame.to_ndarray(format="rgb24")
            else:
                break
    assert chosen is not None, f"no frame at {seconds} s"
    return chosen


def decode_audio(path: Path) -> tuple[float, npt.NDArray[np.float32]]:
    """(start time, mono float32 samples at 48 kHz) of the first audio stream."""
    chunks: list[npt.NDArray[np.float32]] = []
    start: float | None = None
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            if start is None:
                start = float(frame.time)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray()[0])
    assert start is not None, "no audio"
    return start, np.concatenate(chunks)


def onsets(samples: npt.NDArray[np.float32], start: float, threshold: float = 0.1) -> list[float]:
    """Times (seconds) where the signal rises above ``threshold`` after 100 ms of quiet."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    found: list[float] = []
    last = -1.0
    for index in loud:
        t = start + index / RATE
        if t - last > 0.1:
            found.append(t)
        last = t
    return found
