"""Audio that lost packets (a stream recording's dropout) keeps its timeline: the words
after the dropout are at the times of the picture, not pulled earlier by the lost length."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from klippers.asr import transcribe
from klippers.asr.transcribe import SAMPLE_RATE, decode_audio

RATE = 48_000
FRAME = 1024
GAP_AT_S, GAP_S = 3, 2


def _tone_bursts(n: int) -> np.ndarray:
    """One frame of 440 Hz bursts, one second on, one off, from input sample ``n``."""
    t = np.arange(n, n + FRAME) / RATE
    return (0.5 * np.sin(2 * np.pi * 440 * t) * ((t % 2) < 1)).astype(np.float32)


@pytest.fixture(scope="module")
def dropout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of AAC in MPEG-TS whose timestamps jump 2 s ahead at 3 s: the audio of those
    2 s was lost, what follows plays 2 s later than its samples' count says."""
    path = tmp_path_factory.mktemp("gaps") / "dropout.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("aac", rate=RATE, layout="mono")
        stream.time_base = Fraction(1, RATE)
        for n in range(0, 8 * RATE, FRAME):
            frame = av.AudioFrame.from_ndarray(
                _tone_bursts(n).reshape(1, -1), format="fltp", layout="mono"
            )
            frame.sample_rate = RATE
            frame.time_base = Fraction(1, RATE)
            frame.pts = n + (GAP_S * RATE if n >= GAP_AT_S * RATE else 0)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _onsets(audio: np.ndarray) -> list[float]:
    """Seconds where a burst starts (10 ms resolution)."""
    frames = audio[: audio.size // 160 * 160].reshape(-1, 160)
    loud = np.abs(frames).max(axis=1) > 0.1
    starts = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    return [round(float(s) / 100, 2) for s in ([0] if loud[0] else []) + list(starts)]


def test_audio_after_a_dropout_is_at_its_timestamps(dropout: Path) -> None:
    audio = decode_audio(dropout)
    # bursts at samples 0, 2, 4, 6 s; those after 3 s play 2 s later
    assert _onsets(audio) == pytest.approx([0.0, 2.0, 6.0, 8.0], abs=0.03)
    assert audio.size / SAMPLE_RATE == pytest.approx(8 + GAP_S, abs=0.05)
    assert np.abs(audio[round(3.3 * SAMPLE_RATE) : round(5.9 * SAMPLE_RATE)]).max() < 0.01


def test_a_window_after_a_dropout_is_the_whole_decode_s(dropout: Path) -> None:
    whole = decode_audio(dropout)
    window = decode_audio(dropout, 5.5, 9.0)
    part = whole[round(5.5 * SAMPLE_RATE) : round(9.0 * SAMPLE_RATE)]
    assert window.size == part.size
    assert _onsets(window) == pytest.approx([0.5, 2.5], abs=0.03)
    assert np.sqrt(np.mean((window - part) ** 2)) < 0.02 * np.sqrt(np.mean(part**2))


UNIT = RATE // 10
"""Frames of the placement tests: 0.1 s."""


def _frames(pts: list[int | None]) -> list[av.AudioFrame]:
    """Frames of ``UNIT`` samples numbered 1, 2, 3... (every sample = its frame's number)."""
    frames = []
    for number, stamp in enumerate(pts, start=1):
        samples = np.full((1, UNIT), number, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = RATE
        if stamp is not None:
            frame.time_base = Fraction(1, RATE)
            frame.pts = stamp
        frames.append(frame)
    return frames


def _placed(pts: list[int | None]) -> np.ndarray:
    first = pts[0] or 0
    placed = transcribe._placed(_frames(pts), first, Fraction(0), RATE)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in placed])


def _runs(*parts: tuple[float, float]) -> np.ndarray:
    """Samples: ``(value, frames)`` runs of ``UNIT``-sample frames."""
    return np.concatenate([np.full(round(n * UNIT), value) for value, n in parts])


def test_frames_are_placed_by_their_timestamps() -> None:
    f = UNIT
    # jitter within the tolerance: the frames follow each other
    assert np.array_equal(_placed([0, f + 300, 2 * f - 300]), _runs((1, 1), (2, 1), (3, 1)))
    # a dropout: silence, then the frame where its timestamp says
    assert np.array_equal(_placed([0, 3 * f]), _runs((1, 1), (0, 2), (2, 1)))
    # a frame sent twice is played once; a partial overlap loses its repeated samples
    assert np.array_equal(_placed([0, f, f, 2 * f]), _runs((1, 1), (2, 1), (4, 1)))
    assert np.array_equal(_placed([0, f // 2]), _runs((1, 1), (2, 0.5)))
    # frames without timestamps follow each other
    assert np.array_equal(_placed([0, None, None]), _runs((1, 1), (2, 1), (3, 1)))


def test_broken_timestamps_lose_no_audio() -> None:
    """A jump back over a second or forward over ``MAX_GAP_S`` (recordings joined, a clock
    reset) is not taken for repeated or lost audio: every frame is kept, in order."""
    f = UNIT
    back = _placed([10 * RATE, 10 * RATE + f, 0, f])
    assert np.array_equal(back, _runs((1, 1), (2, 1), (3, 1), (4, 1)))
    far = _placed([0, (transcribe.MAX_GAP_S + 1) * RATE])
    assert np.array_equal(far, _runs((1, 1), (2, 1)))
