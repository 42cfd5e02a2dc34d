"""Choosing segments: planted content wins, boundaries, bounds, overlaps, counts, scale."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.selection.highlights import HighlightsError, select_highlights
from klippers.selection.signals import Assessment, EmbeddedScorer, ScoringContext
from klippers.selection.units import Candidate, DurationBounds, sentence_units

WORD, GAP, PAUSE = 0.3, 0.05, 0.5

FILLER = [
    "and then we went over to the other room and looked around for a bit.",
    "so yeah it was kind of like that, you know.",
    "we talked about the weather for a while.",
    "I mean the room was okay I guess.",
    "but anyway the coffee there was fine.",
    "this is something we kind of did every week.",
    "what was I saying?",
    "it was a normal day like any other day.",
    "then my friend came by and we chatted about nothing much.",
    "the chairs were blue and the walls were white.",
]

PLANTED = [
    "Why do most startups fail in their first year?",
    "The truth is that ninety percent of founders never track their cash flow.",
    "Cash flow is the oxygen of a startup.",
    "When founders ignore their burn rate, the runway quietly disappears.",
    "I watched 3 startups run out of cash with a great product and happy customers.",
    "Every founder should review the burn rate and the runway every single Monday.",
    "If the runway drops below six months, cut costs before you raise.",
    "Investors fund founders who know their burn rate by heart.",
    "Track your cash flow weekly and your startup will outlive its competitors.",
]


def _timed(texts: list[str], start: float = 0.0) -> tuple[list[Sentence], float]:
    """Sentences of evenly spoken words starting at ``start``; returns them and the end time."""
    sentences = []
    t = start
    for text in texts:
        words = []
        for token in text.split():
            words.append(Word(round(t, 3), round(t + WORD, 3), token))
            t += WORD + GAP
        sentences.append(Sentence(words[0].start, words[-1].end, text, tuple(words)))
        t += PAUSE
    return sentences, t


def _filler(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(FILLER).capitalize() for _ in range(count)]


def _transcript(*parts: list[str]) -> tuple[Transcript, list[tuple[float, float]]]:
    """A transcript of consecutive parts; also each part's (first word, last word) span."""
    sentences: list[Sentence] = []
    spans = []
    t = 0.0
    for part in parts:
        timed, t = _timed(part, t)
        sentences.extend(timed)
        spans.append((timed[0].start, timed[-1].end))
    return Transcript("en", t + 1.0, tuple(sentences)), spans


@pytest.fixture(scope="module")
def planted() -> tuple[Transcript, tuple[float, float]]:
    transcript, spans = _transcript(_filler(80, 1), PLANTED, _filler(80, 2))
    return transcript, spans[1]


def _sentence_edges(transcript: Transcript) -> tuple[set[float], set[float]]:
    return {s.words[0].start for s in transcript.sentences}, {
        s.words[-1].end for s in transcript.sentences
    }


def test_planted_passage_ranks_first(planted: tuple[Transcript, tuple[float, float]]) -> None:
    transcript, (begin, finish) = planted
    result = select_highlights(transcript, count=3, target_duration=45)
    best = result.highlights[0]
    assert best.rank == 1
    assert begin - 0.3 <= best.start <= begin
    covered = min(best.end, finish) - max(best.start, begin)
    assert covered >= 0.9 * min(finish - begin, best.duration)
    assert best.text.startswith("Why do most startups fail")
    assert 0 <= result.highlights[-1].score <= best.score <= 100
    assert best.title == "Why do most startups fail in their first year?"
    assert any("question" in r for r in best.reasons)
    assert any(r.startswith("keywords:") and "cash" in r for r in best.reasons)
    assert result.message is None


def test_segments_are_whole_sentences_within_bounds_without_overlap(
    planted: tuple[Transcript, tuple[float, float]],
) -> None:
    transcript, _ = planted
    result = select_highlights(transcript, count=6, target_duration=30, min_duration=20)
    starts, ends = _sentence_edges(transcript)
    assert len(result.highlights) == 6
    for h in result.highlights:
        first_word = min(s for s in starts if s >= h.start)
        last_word = max(e for e in ends if e <= h.end)
        assert first_word - h.start <= 0.25 + 1e-9  # padding only, never a word cut in half
        assert h.end - last_word <= 0.25 + 1e-9
        assert not any(s < h.start < e for s, e in _word_spans(transcript))
        assert not any(s < h.end < e for s, e in _word_spans(transcript))
        assert 20 <= h.duration <= 45
    ordered = sorted(result.highlights, key=lambda h: h.start)
    for a, b in itertools.pairwise(ordered):
        assert a.end <= b.start
    assert [h.rank for h in result.highlights] == [1, 2, 3, 4, 5, 6]
    assert [h.score for h in result.highlights] == sorted(
        (h.score for h in result.highlights), reverse=True
    )


def _word_spans(transcript: Transcript) -> list[tuple[float, float]]:
    return [(w.start, w.end) for w in transcript.words]


def test_too_short_video_gives_fewer_segments_and_says_so() -> None:
    transcript, _ = _transcript(PLANTED + PLANTED[1:4])  # about 70 s of speech
    result = select_highlights(transcript, count=5, target_duration=30)
    assert 1 <= len(result.highlights) < 5
    assert result.requested == 5
    assert result.message is not None
    assert f"only {len(result.highlights)} of the 5 requested" in result.message


def test_speech_shorter_than_minimum_gives_no_segment_with_reason() -> None:
    transcript, _ = _transcript(PLANTED[:2])
    result = select_highlights(transcript, count=2, target_duration=60)
    assert result.highlights == ()
    assert result.message is not None
    assert "shorter than the minimum" in result.message


@pytest.mark.parametrize(
    "sentences",
    [(), (Sentence(0.0, 5.0, "", ()),), (Sentence(0.0, 5.0, "  ", (Word(1.0, 2.0, " "),)),)],
)
def test_no_speech_gives_no_segment_and_a_clear_message(sentences: tuple[Sentence, ...]) -> None:
    result = select_highlights(Transcript("en", 600.0, sentences), count=3)
    assert result.highlights == ()
    assert result.message == "no speech found in the transcript: no segment chosen"


def test_automatic_count_scales_with_length(
    planted: tuple[Transcript, tuple[float, float]],
) -> None:
    transcript, _ = planted
    speech = transcript.sentences[-1].end
    result = select_highlights(transcript, count=0, target_duration=30)
    assert len(result.highlights) == int(speech // 120)
    assert result.requested is None
    assert result.message is None


def test_long_run_on_sentence_is_split_between_words() -> None:
    """An unpunctuated 3-minute 'sentence' still yields candidates, cut at pauses."""
    words = []
    t = 0.0
    for i in range(500):
        words.append(Word(round(t, 3), round(t + WORD, 3), f"word{i % 37}"))
        t += WORD + (0.9 if i % 25 == 24 else GAP)
    transcript = Transcript(
        "en", t, (Sentence(0.0, t, " ".join(w.text for w in words), tuple(words)),)
    )
    units = sentence_units(transcript, 45)
    assert len(units) > 1
    assert all(u.end - u.start <= 45 for u in units)
    result = select_highlights(transcript, count=2, target_duration=60)
    assert len(result.highlights) == 2
    edges = {w.start for w in words} | {w.end for w in words}
    for h in result.highlights:
        assert min(abs(h.start - e) for e in edges) <= 0.25 + 1e-9


def test_loudness_variation_is_a_signal(planted: tuple[Transcript, tuple[float, float]]) -> None:
    transcript, _ = planted
    seconds = int(transcript.duration) + 1
    flat = np.full(seconds, -20.0)
    lively = flat.copy()
    lively[200:260] = np.where(np.arange(60) % 2 == 0, -8.0, -32.0)
    units = sentence_units(transcript, 45)
    context_flat = ScoringContext(units, "en", 45, flat)
    context_lively = ScoringContext(units, "en", 45, lively)
    inside = [Candidate(i, i + 6, units[i].start, units[i + 6].end) for i in range(40, 80)]
    inside = [c for c in inside if c.start >= 200 and c.end <= 260]
    assert inside
    flat_scores = [a.score for a in EmbeddedScorer().score(inside, context_flat)]
    lively_scores = EmbeddedScorer().score(inside, context_lively)
    assert all(b.score > a for a, b in zip(flat_scores, lively_scores, strict=True))
    assert any("loudness varies" in r for r in lively_scores[0].reasons)


class _ReverseScorer:
    """A scorer that prefers later passages: shows an external scorer decides the ranking."""

    def __init__(self) -> None:
        self.seen = 0

    def score(self, candidates: list[Candidate], context: ScoringContext) -> list[Assessment]:
        self.seen = len(candidates)
        return [Assessment(c.start / 100, f"at {c.start:.0f}", ("late",)) for c in candidates]


def test_external_scorer_rates_a_diverse_shortlist(
    planted: tuple[Transcript, tuple[float, float]],
) -> None:
    transcript, _ = planted
    scorer = _ReverseScorer()
    result = select_highlights(transcript, count=2, target_duration=45, scorer=scorer, shortlist=8)
    assert scorer.seen == 8
    assert result.highlights[0].start > result.highlights[1].start
    assert result.highlights[0].reasons == ("late",)


@pytest.mark.parametrize(
    ("target", "low", "high"), [(0, None, None), (60, 50, 40), (60, -1, None), (float("nan"), 1, 2)]
)
def test_bad_durations_are_refused(target: float, low: float | None, high: float | None) -> None:
    with pytest.raises(HighlightsError):
        DurationBounds.from_target(target, low, high)


def test_negative_count_is_refused(planted: tuple[Transcript, tuple[float, float]]) -> None:
    with pytest.raises(HighlightsError, match="count"):
        select_highlights(planted[0], count=-1)


@pytest.mark.slow
def test_three_hour_transcript_is_scored() -> None:
    """Scale check (timing is measured by benchmarks/bench_selection.py, not asserted here)."""
    transcript, _ = _transcript(_filler(3000, 3) + PLANTED + _filler(2000, 4))
    assert transcript.duration > 3 * 3600
    result = select_highlights(transcript, count=5, target_duration=60)
    assert len(result.highlights) == 5
    assert result.highlights[0].text.startswith("Why do most startups fail")


def test_cli_prints_ranked_segments_as_json_and_table(
    planted: tuple[Transcript, tuple[float, float]], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from klippers.cli import cli

    transcript, _ = planted
    words = tmp_path / "original.words.json"
    words.write_text(transcript.to_json(), encoding="utf-8")
    runner = CliRunner()
    args = ["highlights", str(words), "--count", "2", "--duration", "45"]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [s["index"] for s in document["segments"]] == [1, 2]
    assert document["segments"][0]["title"] == "Why do most startups fail in their first year?"
    table = runner.invoke(cli, args, env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "Why do most startups fail" in table.output
    bad = runner.invoke(
        cli, ["highlights", str(words), "--min-duration", "50", "--max-duration", "40"]
    )
    assert bad.exit_code == 2
    assert "min duration" in bad.output
