"""Per-second loudness of a real encoded file's audio, as the parent measures it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from klippers.asr.loudness import SILENCE_DB, loudness_of_samples
from klippers.asr.transcribe import SAMPLE_RATE, decode_audio

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
    """Measured from the audio the parent decodes for speech, as the parent does."""
    amplitudes = [0.5, 0.01, 0.0, 0.5, 0.1]
    audio = decode_audio(_write(tmp_path / "talk.mp4", amplitudes, video=True))
    levels = loudness_of_samples(audio, SAMPLE_RATE)
    assert 5 <= levels.size <= 6  # AAC frame padding may add a partial last second
    # a sine of amplitude a has RMS a/sqrt(2); the mono downmix of two equal channels adds 3 dB
    expected = {i: 20 * np.log10(a) for i, a in enumerate(amplitudes) if a}
    assert levels[0] == pytest.approx(expected[0], abs=1.0)
    assert levels[1] == pytest.approx(expected[1], abs=2.0)
    assert levels[2] < -60
    assert levels[3] == pytest.approx(expected[3], abs=1.0)
    assert levels[4] == pytest.approx(expected[4], abs=1.0)


def test_silence_is_floored_and_no_samples_give_no_levels() -> None:
    assert loudness_of_samples(np.zeros(SAMPLE_RATE * 2), SAMPLE_RATE).tolist() == [
        SILENCE_DB,
        SILENCE_DB,
    ]
    assert loudness_of_samples(np.zeros(0), SAMPLE_RATE).size == 0
