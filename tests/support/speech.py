"""Test media with speech of known text and known timing, made offline with espeak-ng and PyAV.

Each sentence is spoken by Debian's ``espeak-ng``, trimmed to its voiced part and placed on a
timeline with known silences between sentences, then muxed into an MP4 with an H.264 video
track and 48 kHz stereo AAC audio, like a camera recording. Results are cached under the
repository's ``.cache/speech/`` keyed by their parameters.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "speech"
SAMPLE_RATE = 48_000
VOICE = "en-us"
WORDS_PER_MINUTE = 150
GAP_S = 1.2
LEAD_S = 0.6
TAIL_S = 0.8
VOICED_THRESHOLD = 0.01
FPS = 10
VIDEO_SIZE = (160, 90)
AAC_FRAME = 1024
FORMAT_TAG = "speech-v1"

SENTENCES = (
    "Welcome to the weekly show about building things with your hands.",
    "Today we are going to make a small wooden box for the garden.",
    "First, measure each board carefully and mark the cuts with a pencil.",
    "Then cut the pieces slowly and keep the saw straight.",
    "Finally, glue the corners together and let the box dry overnight.",
)


@dataclass(frozen=True)
class SpokenSentence:
    """One sentence of the clip and the seconds where its voice starts and ends."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class SpeechClip:
    """A cached MP4 with known speech."""

    path: Path
    duration: float
    sentences: tuple[SpokenSentence, ...]

    @property
    def text(self) -> str:
        """The spoken text, sentences separated by spaces."""
        return " ".join(s.text for s in self.sentences)


def espeak_binary() -> str:
    """Path of ``espeak-ng``; raises a clear error when the Debian package is missing."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng")
    return found


def speak(text: str, voice: str = VOICE, wpm: int = WORDS_PER_MINUTE) -> np.ndarray:
    """Speak ``text`` with espeak-ng; mono float32 samples at :data:`SAMPLE_RATE`."""
    wav = subprocess.run(
        [espeak_binary(), "-v", voice, "-s", str(wpm), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    with av.open(io.BytesIO(wav), format="wav") as container:
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32)


def trim_to_voice(samples: np.ndarray, threshold: float = VOICED_THRESHOLD) -> np.ndarray:
    """Cut the leading and trailing near-silence off ``samples``."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        raise ValueError("no voice above the threshold")
    return samples[loud[0] : loud[-1] + 1]


def speech_timeline(
    texts: tuple[str, ...], gap: float = GAP_S, lead: float = LEAD_S, tail: float = TAIL_S
) -> tuple[np.ndarray, tuple[SpokenSentence, ...]]:
    """Concatenate spoken ``texts`` with ``gap`` seconds of silence between them."""
    pieces: list[np.ndarray] = [np.zeros(round(lead * SAMPLE_RATE), np.float32)]
    spoken: list[SpokenSentence] = []
    cursor = len(pieces[0])
    for i, text in enumerate(texts):
        if i:
            pieces.append(np.zeros(round(gap * SAMPLE_RATE), np.float32))
            cursor += len(pieces[-1])
        voice = trim_to_voice(speak(text))
        pieces.append(voice)
        spoken.append(
            SpokenSentence(text, cursor / SAMPLE_RATE, (cursor + len(voice)) / SAMPLE_RATE)
        )
        cursor += len(voice)
    pieces.append(np.zeros(round(tail * SAMPLE_RATE), np.float32))
    return np.concatenate(pieces), tuple(spoken)


def _audio_frames(samples: np.ndarray, start: float = 0.0) -> Iterator[av.AudioFrame]:
    stereo = np.stack([samples, samples]).astype(np.float32)
    first = round(start * SAMPLE_RATE)
    for offset in range(0, stereo.shape[1], AAC_FRAME):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(stereo[:, offset : offset + AAC_FRAME]),
            format="fltp",
            layout="stereo",
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = first + offset
        frame.time_base = Fraction(1, SAMPLE_RATE)
        yield frame


def _video_frames(duration: float) -> Iterator[av.VideoFrame]:
    width, height = VIDEO_SIZE
    for index in range(max(1, round(duration * FPS))):
        image = np.full((height, width, 3), (40, 90 + index % 100, 160), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        yield frame


def write_mp4(
    path: Path,
    samples: np.ndarray | None,
    duration: float,
    video: bool = True,
    audio_start: float = 0.0,
) -> None:
    """Write an MP4 with an optional H.264 track and optional AAC audio holding ``samples``.

    ``audio_start`` delays the first audio sample (seconds), as some recorders do.
    """
    with av.open(str(path), "w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=FPS) if video else None
        if vstream is not None:
            vstream.width, vstream.height = VIDEO_SIZE
            vstream.pix_fmt = "yuv420p"
            vstream.codec_context.options = {"preset": "ultrafast"}
        astream = None
        if samples is not None:
            astream = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        if vstream is not None:
            for vframe in _video_frames(duration):
                container.mux(vstream.encode(vframe))
            container.mux(vstream.encode())
        if astream is not None and samples is not None:
            for aframe in _audio_frames(samples, audio_start):
                container.mux(astream.encode(aframe))
            container.mux(astream.encode())


def _atomic_mp4(target: Path, samples: np.ndarray | None, duration: float, video: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".clip-", suffix=".mp4")
    os.close(fd)
    try:
        write_mp4(Path(tmp), samples, duration, video=video)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cache_key(*parts: object) -> str:
    blob = json.dumps([FORMAT_TAG, *parts], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def speech_clip(texts: tuple[str, ...] = SENTENCES, cache_dir: Path = CACHE_DIR) -> SpeechClip:
    """The MP4 speaking ``texts`` with known silences between them (built once, cached)."""
    key = _cache_key(texts, GAP_S, LEAD_S, TAIL_S, VOICE, WORDS_PER_MINUTE)
    path, truth = cache_dir / f"speech-{key}.mp4", cache_dir / f"speech-{key}.json"
    if not (path.is_file() and truth.is_file()):
        samples, spoken = speech_timeline(texts)
        duration = len(samples) / SAMPLE_RATE
        _atomic_mp4(path, samples, duration, video=True)
        doc = {"duration": duration, "sentences": [asdict(s) for s in spoken]}
        truth.write_text(json.dumps(doc), encoding="utf-8")
    doc = json.loads(truth.read_text(encoding="utf-8"))
    return SpeechClip(
        path=path,
        duration=float(doc["duration"]),
        sentences=tuple(SpokenSentence(**s) for s in doc["sentences"]),
    )


def silent_clip(path: Path, seconds: float = 4.0) -> Path:
    """Write an MP4 with video and an all-zero audio track."""
    _atomic_mp4(path, np.zeros(round(seconds * SAMPLE_RATE), np.float32), seconds, video=True)
    return path


def video_only_clip(path: Path, seconds: float = 1.0) -> Path:
    """Write an MP4 with a video track and no audio stream."""
    _atomic_mp4(path, None, seconds, video=True)
    return path


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes inside words are kept)."""
    cleaned = "".join(ch if ch.isalnum() or ch == "'" else " " for ch in text.lower())
    return [w.strip("'") for w in cleaned.split() if w.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on normalised words."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            substitution = previous[j - 1] + (ref_word != hyp_word)
            current.append(min(previous[j] + 1, current[j - 1] + 1, substitution))
        previous = current
    return previous[-1] / len(ref)


def tone(seconds: float, hz: float = 440.0, level: float = 0.3) -> np.ndarray:
    """A sine tone at :data:`SAMPLE_RATE`, mono float32."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)
