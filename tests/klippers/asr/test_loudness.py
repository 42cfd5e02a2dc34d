"""Per-second loudness from a real encoded file's audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from klipmedia.errors import UnreadableMediaError
from klippers.asr.loudness import SILENCE_DB, loudness_per_second

RATE = 44_100


def _write(path: Path, amplitudes: list[float], video: bool) -> Path:
    """One second per amplitude of a 440 Hz stereo sine (plus a tiny video stream)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10) if video else None
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        if stream is not None:
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            for i in range(10 * len(amplitudes)):
                frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 10)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        t = np.arange(RATE) / RATE
        signal = np.concatenate([a * np.sin(2 * np.pi * 440 * t) for a in amplitudes])
        for first in range(0, signal.size, 1024):
            chunk = np.tile(signal[first : first + 1024].astype(np.float32), (2, 1))
            sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = RATE, first, Fraction(1, RATE)
            out.mux(audio.encode(sound))
        out.mux(audio.encode(None))
    return path


def test_levels_follow_the_loudness_of_each_second(tmp_path: Path) -> None:
    amplitudes = [0.5, 0.01, 0.0, 0.5, 0.1]
    levels = loudness_per_second(_write(tmp_path / "talk.mp4", amplitudes, video=True))
    assert 5 <= levels.size <= 6  # AAC frame padding may add a partial last second
    expected = [20 * np.log10(0.5 / np.sqrt(2)), 20 * np.log10(0.01 / np.sqrt(2)), SILENCE_DB]
    assert levels[0] == pytest.approx(expected[0], abs=1.0)
    assert levels[1] == pytest.approx(expected[1], abs=2.0)
    assert levels[2] < -60
    assert levels[3] == pytest.approx(expected[0], abs=1.0)
    assert levels[4] == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=1.0)


def test_no_audio_gives_an_empty_curve(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert loudness_per_second(path).size == 0


def test_garbage_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(UnreadableMediaError):
        loudness_per_second(path)
