"""Transcription audio on the media timeline: sample 0 is the first video frame, whatever
the file's own timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from klippers.asr.transcribe import SAMPLE_RATE, decode_audio
from tests.support.remux import shifted
from tests.support.talk import talk_video


def _lag(reference: np.ndarray, moved: np.ndarray) -> int:
    """Samples by which ``moved`` lags ``reference`` (cross-correlation over 4 s of speech)."""
    window = slice(SAMPLE_RATE, 5 * SAMPLE_RATE)
    a, b = reference[window], moved[window]
    spectrum = np.fft.rfft(a, 2 * a.size) * np.conj(np.fft.rfft(b, 2 * b.size))
    correlation = np.fft.irfft(spectrum)
    lag = int(np.argmax(correlation))
    return -(lag if lag < a.size else lag - 2 * a.size)


@pytest.mark.parametrize(
    ("offset", "audio", "fmt"),
    [(15.0, 0.0, "mp4"), (16.4, 0.0, "mpegts"), (2.0, -0.3, "mp4"), (2.0, 0.3, "mp4")],
    ids=["mp4-from-15s", "mpegts-from-16.4s", "audio-before-video", "audio-after-video"],
)
def test_decoded_audio_is_placed_on_the_video_timeline(
    tmp_path: Path, offset: float, audio: float, fmt: str
) -> None:
    original = talk_video()
    moved = shifted(original, tmp_path / f"moved.{fmt}", offset, audio_offset=audio, fmt=fmt)
    reference, samples = decode_audio(original), decode_audio(moved)
    expected = round(audio * SAMPLE_RATE)
    assert abs(_lag(reference, samples) - expected) <= SAMPLE_RATE // 100  # within 10 ms
    assert abs(samples.size - (reference.size + expected)) <= SAMPLE_RATE // 10
