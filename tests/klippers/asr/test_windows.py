"""Concurrent windows, silero VAD and the device option of the faster-whisper backend."""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any, ClassVar

import numpy as np
import pytest

from klippers.asr.transcribe import (
    FASTER_WHISPER,
    MIN_WINDOW_S,
    SAMPLE_RATE,
    WHISPER_TIMESTAMPED,
    ConfigurationError,
    decode_audio,
    load_transcriber,
    resolve_device,
    resolve_workers,
    window_bounds,
    window_length,
)
from klippers.asr.transcript import Transcript
from tests.support.speech import SpeechClip, normalise_words, speech_clip, word_error_rate
from tests.support.whisper_models import ct2_tiny_en_path

GAP_S = 60.0
TIMING_TOLERANCE_S = 0.3


@pytest.fixture(scope="module")
def clip() -> SpeechClip:
    return speech_clip()


@pytest.fixture(scope="module")
def audio(clip: SpeechClip) -> np.ndarray:
    return decode_audio(clip.path)


# --- configuration (no model) ------------------------------------------------------------------


def test_workers_come_from_argument_then_environment_then_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KLIPPERS_ASR_WORKERS", raising=False)
    assert resolve_workers(3) == 3
    assert resolve_workers(None, threads=4) == 4
    assert resolve_workers(0, "cuda") == 1
    monkeypatch.setenv("KLIPPERS_ASR_WORKERS", "2")
    assert resolve_workers(None, threads=8) == 2
    assert resolve_workers(5) == 5


@pytest.mark.parametrize("bad", ["two", "-1"])
def test_a_bad_worker_count_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("KLIPPERS_ASR_WORKERS", bad)
    with pytest.raises(ConfigurationError, match=re.escape(bad)):
        resolve_workers()


def test_device_comes_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLIPPERS_ASR_DEVICE", raising=False)
    assert resolve_device() == "cpu"
    monkeypatch.setenv("KLIPPERS_ASR_DEVICE", "cuda")
    assert resolve_device() == "cuda"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigurationError, match="'tpu'"):
        resolve_device("tpu")


def test_windows_are_shared_between_workers_but_never_very_short() -> None:
    assert window_length(3600.0, 1) == 300.0
    assert window_length(3600.0, 4) == 300.0
    assert window_length(400.0, 4) == 100.0
    assert window_length(100.0, 4) == MIN_WINDOW_S
    assert window_length(100.0, 4, window=12.0) == 12.0


class _FakeWhisperModel:
    """Stands in for ``faster_whisper.WhisperModel``: records how it was built."""

    built: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: str, **options: Any) -> None:
        type(self).built = {"model": model, **options}


@pytest.mark.parametrize(
    ("device", "workers", "compute_type", "threads", "num_workers"),
    [("cuda", None, "float16", 4, 1), ("cpu", 2, "int8", 2, 2), ("cpu", 3, "int8", 1, 3)],
)
def test_the_device_picks_the_compute_type_and_threads_are_split(
    monkeypatch: pytest.MonkeyPatch,
    device: str,
    workers: int | None,
    compute_type: str,
    threads: int,
    num_workers: int,
) -> None:
    import faster_whisper  # type: ignore[import-untyped]

    monkeypatch.setattr(faster_whisper, "WhisperModel", _FakeWhisperModel)
    monkeypatch.delenv("KLIPPERS_ASR_WORKERS", raising=False)
    load_transcriber(FASTER_WHISPER, "tiny.en", threads=4, device=device, workers=workers)
    assert _FakeWhisperModel.built == {
        "model": "tiny.en",
        "device": device,
        "compute_type": compute_type,
        "cpu_threads": threads,
        "num_workers": num_workers,
    }


def test_an_unknown_device_fails_before_loading_a_model() -> None:
    with pytest.raises(ConfigurationError, match="'gpu'"):
        load_transcriber(WHISPER_TIMESTAMPED, "never-loaded", device="gpu")


# --- tiny.en on the espeak clip --------------------------------------------------------------


def _check_joins(transcript: Transcript, cuts: list[float]) -> None:
    """Words are ordered, and none straddles or repeats across a window cut."""
    words = transcript.words
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    for cut in cuts:
        before = [w for w in words if w.end <= cut]
        after = [w for w in words if w.start >= cut]
        assert len(before) + len(after) == len(words)
        if before and after:
            assert normalise_words(before[-1].text) != normalise_words(after[0].text)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_windows_keep_every_word_once_and_in_order(
    clip: SpeechClip, audio: np.ndarray, workers: int
) -> None:
    transcriber = load_transcriber(
        FASTER_WHISPER, str(ct2_tiny_en_path()), threads=2, window_s=8.0, workers=workers
    )
    reports: list[tuple[float, float]] = []
    transcript = transcriber.transcribe(audio, progress=lambda *r: reports.append(r))
    bounds = window_bounds(audio, 8.0)
    assert len(bounds) >= 4  # the joins are exercised
    total = audio.size / SAMPLE_RATE
    assert len(reports) == len(bounds) + 1  # at the start, then as each window is done
    assert {t for _, t in reports} == {total}
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    assert reports[-1][0] == pytest.approx(total)
    _check_joins(transcript, [lo / SAMPLE_RATE for lo, _ in bounds[1:]])
    reference = normalise_words(clip.text)
    assert len(normalise_words(transcript.text)) == len(reference)
    assert word_error_rate(clip.text, transcript.text) <= 0.1


@pytest.mark.slow
def test_a_long_silence_is_skipped_and_later_words_keep_their_time(
    clip: SpeechClip, audio: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    split = round((clip.sentences[1].end + 0.6) * SAMPLE_RATE)
    quiet = np.random.default_rng(5).normal(0.0, 2e-4, round(GAP_S * SAMPLE_RATE))
    padded = np.concatenate([audio[:split], quiet.astype(np.float32), audio[split:]])
    transcriber = load_transcriber(FASTER_WHISPER, str(ct2_tiny_en_path()), workers=1)
    with caplog.at_level(logging.INFO, logger="faster_whisper"):
        transcript = transcriber.transcribe(padded)
    removed = [
        float(m[1]) * 60 + float(m[2])
        for m in re.finditer(r"VAD filter removed (\d+):([\d.]+)", caplog.text)
    ]
    assert sum(removed) >= GAP_S - 1.0  # the silence never reached the decoder
    assert len(transcript.sentences) == len(clip.sentences)
    for found, truth in zip(transcript.sentences, clip.sentences, strict=True):
        shift = GAP_S if truth.start * SAMPLE_RATE >= split else 0.0
        assert found.start == pytest.approx(truth.start + shift, abs=TIMING_TOLERANCE_S)
        assert found.end == pytest.approx(truth.end + shift, abs=TIMING_TOLERANCE_S)
    assert word_error_rate(clip.text, transcript.text) <= 0.1
