"""Choose the best self-contained passages of a transcript: :func:`select_highlights`.

Candidates start and end on sentence boundaries (word times plus a small padding that
never reaches into a neighbouring word; long unpunctuated runs are cut at pauses) and last
between a minimum and a maximum duration (:mod:`~klippers.selection.units`). A
:class:`~klippers.selection.signals.Scorer` rates them; the default
:class:`~klippers.selection.signals.EmbeddedScorer` is deterministic and offline and
looks for the cues of audience reactions (:mod:`~klippers.selection.signals`). The best
non-overlapping candidates are kept, in rank order, each with a headline title
(:mod:`~klippers.selection.titles`).

Examples
--------
>>> transcript = Transcript.load("original.words.json")  # doctest: +SKIP
>>> result = select_highlights(transcript, count=3, target_duration=60)  # doctest: +SKIP
>>> [(h.rank, round(h.start, 1), h.score, h.title) for h in result.highlights]  # doctest: +SKIP
[(1, 312.4, 83.0, 'Why do most startups fail?'), ...]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from klippers.asr.transcript import Transcript
from klippers.selection.signals import (
    DEFAULT_PROFILE,
    EmbeddedScorer,
    Scorer,
    ScoringContext,
    TranscriptSignals,
)
from klippers.selection.units import (
    Candidate,
    DurationBounds,
    FloatArray,
    HighlightsError,
    Unit,
    generate_candidates,
    sentence_units,
)

__all__ = ["Highlight", "HighlightResult", "HighlightsError", "select_highlights"]

log = logging.getLogger(__name__)

DEFAULT_TARGET = 60.0
DEFAULT_PADDING = 0.25
"""Seconds added before the first and after the last word (never into a neighbour word)."""
MAX_AUTO_SEGMENTS = 10
DEFAULT_SHORTLIST = 24
"""Candidates an external scorer (an LLM) is asked to rate."""

# --- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Highlight:
    """A chosen segment; ``rank`` 1 is the best."""

    rank: int
    start: float
    end: float
    score: float
    title: str
    reasons: tuple[str, ...]
    text: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times rounded to milliseconds)."""
        return {
            "index": self.rank,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "duration": round(self.duration, 3),
            "score": self.score,
            "title": self.title,
            "reasons": list(self.reasons),
            "text": self.text,
        }


@dataclass(frozen=True)
class HighlightResult:
    """The chosen segments and, when fewer than asked (or none), a message saying why."""

    highlights: tuple[Highlight, ...]
    requested: int | None
    message: str | None = None


# --- the pipeline ---------------------------------------------------------------------------


def select_highlights(
    transcript: Transcript,
    *,
    count: int | None = None,
    target_duration: float = DEFAULT_TARGET,
    min_duration: float | None = None,
    max_duration: float | None = None,
    loudness: FloatArray | None = None,
    scorer: Scorer | None = None,
    padding: float = DEFAULT_PADDING,
    shortlist: int = DEFAULT_SHORTLIST,
) -> HighlightResult:
    """Choose up to ``count`` non-overlapping segments of ``transcript``, best first.

    ``count`` None or 0 chooses automatically (about one per four target durations of
    speech, 1..10). ``scorer`` None or an :class:`EmbeddedScorer` rates every candidate;
    with another ``scorer`` (an LLM), the default embedded scorer first picks a diverse
    shortlist of ``shortlist`` candidates, which that scorer then rates.

    Raises
    ------
    HighlightsError
        When the durations or the count are invalid.
    """
    if count is not None and count < 0:
        raise HighlightsError(f"segment count must be >= 0, got {count}")
    bounds = DurationBounds.from_target(target_duration, min_duration, max_duration)
    units = sentence_units(transcript, bounds.maximum / 2)
    context = ScoringContext(units, transcript.language, bounds.target, loudness)
    if not units:
        return _empty(count, "no speech found in the transcript: no segment chosen")
    candidates = generate_candidates(units, bounds, transcript.duration, padding)
    if not candidates:
        speech = units[-1].end - units[0].start
        return _empty(
            count,
            f"the speech lasts {speech:.1f} s, shorter than the minimum segment duration "
            f"({bounds.minimum:.1f} s): no segment chosen",
        )
    wanted = count or _auto_count(units, bounds)
    embedded = scorer if isinstance(scorer, EmbeddedScorer) else None
    signals = TranscriptSignals(context, embedded.profile if embedded else DEFAULT_PROFILE)
    scores = signals.rate(candidates)
    boundary = signals.signals["boundary"]
    if scorer is None or embedded is not None:
        chosen = _choose(candidates, scores, wanted, boundary)
        assessments = {i: signals.assess(candidates, scores, i) for i in chosen}
    else:
        short = _shortlist(candidates, scores, shortlist)
        rated = scorer.score([candidates[i] for i in short], context)
        if len(rated) != len(short):
            raise HighlightsError(
                f"the scorer returned {len(rated)} assessments for {len(short)} candidates"
            )
        order = _choose([candidates[i] for i in short], np.array([a.score for a in rated]), wanted)
        chosen = _snap_all([short[k] for k in order], candidates, scores, boundary)
        assessments = {i: rated[k] for i, k in zip(chosen, order, strict=True)}
    highlights = tuple(
        Highlight(
            rank=rank,
            start=candidates[i].start,
            end=candidates[i].end,
            score=round(assessments[i].score, 1),
            title=assessments[i].title,
            reasons=assessments[i].reasons,
            text=context.text(candidates[i]),
        )
        for rank, i in enumerate(chosen, start=1)
    )
    message = None
    if count and len(highlights) < count:
        message = (
            f"only {len(highlights)} of the {count} requested segments fit without overlap "
            f"in {transcript.duration:.0f} s of media ({bounds.minimum:.0f}-"
            f"{bounds.maximum:.0f} s each)"
        )
        log.warning("%s", message)
    log.info("chose %d segments from %d candidates", len(highlights), len(candidates))
    return HighlightResult(highlights, count or None, message)


def _empty(count: int | None, message: str) -> HighlightResult:
    log.warning("%s", message)
    return HighlightResult((), count or None, message)


def _auto_count(units: Sequence[Unit], bounds: DurationBounds) -> int:
    speech = units[-1].end - units[0].start
    return max(1, min(MAX_AUTO_SEGMENTS, int(speech // (4 * bounds.target))))


def _choose(
    candidates: Sequence[Candidate],
    scores: FloatArray,
    count: int,
    boundary: FloatArray | None = None,
) -> list[int]:
    """Greedy: best score first, skipping candidates that overlap one already chosen.

    With ``boundary`` (how cleanly each candidate starts and ends), each pick moves to the
    nearly as good variant of the same passage with the cleanest cut (:func:`_snap`).
    Returns indices by descending score.
    """
    chosen: list[int] = []
    for i in _best_first(candidates, scores):
        if _free(candidates[i], candidates, chosen):
            if boundary is not None:
                snapped = _snap(i, candidates, scores, boundary)
                i = snapped if _free(candidates[snapped], candidates, chosen) else i
            chosen.append(i)
            if len(chosen) == count:
                break
    return sorted(chosen, key=lambda i: -scores[i])


def _snap_all(
    picks: Sequence[int], candidates: Sequence[Candidate], scores: FloatArray, boundary: FloatArray
) -> list[int]:
    """``picks`` (in rank order, not overlapping), each moved to its cleanest variant
    (:func:`_snap`) where that overlaps no other pick."""
    placed = list(picks)
    for n, i in enumerate(picks):
        snapped = _snap(i, candidates, scores, boundary)
        if _free(candidates[snapped], candidates, placed[:n] + placed[n + 1 :]):
            placed[n] = snapped
    return placed


def _free(c: Candidate, candidates: Sequence[Candidate], chosen: Sequence[int]) -> bool:
    return all(c.end <= candidates[j].start or c.start >= candidates[j].end for j in chosen)


SNAP_TOLERANCE = 1.0
"""Score points a variant of a passage may give up for a cleaner start and end."""
SNAP_OVERLAP = 0.7
"""Share of both passages two variants must have in common."""


def _snap(i: int, candidates: Sequence[Candidate], scores: FloatArray, boundary: FloatArray) -> int:
    """The variant of ``candidates[i]`` (mostly the same passage, at most
    :data:`SNAP_TOLERANCE` points worse) that starts and ends most cleanly."""
    start = np.fromiter((c.start for c in candidates), np.float64, len(candidates))
    end = np.fromiter((c.end for c in candidates), np.float64, len(candidates))
    c = candidates[i]
    shared = np.clip(np.minimum(end, c.end) - np.maximum(start, c.start), 0, None)
    near = (shared >= SNAP_OVERLAP * np.maximum(end - start, c.duration)) & (
        scores >= scores[i] - SNAP_TOLERANCE
    )
    options = np.flatnonzero(near)
    return int(options[np.lexsort((-scores[options], -boundary[options]))[0]])


def _shortlist(candidates: Sequence[Candidate], scores: FloatArray, size: int) -> list[int]:
    """The best candidates, each overlapping any better one by less than half."""
    picked: list[int] = []
    for i in _best_first(candidates, scores):
        c = candidates[i]
        if all(
            _overlap(c, candidates[j]) < 0.5 * min(c.duration, candidates[j].duration)
            for j in picked
        ):
            picked.append(i)
            if len(picked) == size:
                break
    return picked


def _best_first(candidates: Sequence[Candidate], scores: FloatArray) -> list[int]:
    """Indices by descending score, earlier start first among equals."""
    starts = np.fromiter((c.start for c in candidates), np.float64, len(candidates))
    return [int(i) for i in np.lexsort((starts, -scores))]


def _overlap(a: Candidate, b: Candidate) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))
