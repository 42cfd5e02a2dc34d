"""Sentences with word timing (:class:`Unit`) and the passages built from them (:class:`Candidate`).

A unit is a transcript sentence, or a piece of one: a sentence that runs on (small ASR models
on spontaneous speech often punctuate little) is cut at its pauses, which then act as sentence
ends. Candidates are runs of whole units whose padded duration lies within
:class:`DurationBounds`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from klippers.asr.transcript import Transcript, Word

FloatArray = npt.NDArray[np.float64]

MIN_FACTOR, MAX_FACTOR = 0.5, 1.5
"""Default duration bounds as multiples of the target duration."""
MAX_ENDS_PER_START = 12
"""Candidate ends tried per start unit: keeps generation linear in the transcript length."""
RUN_ON_WORDS = 30
"""A sentence of more words is a run-on: it is cut at its pauses of :data:`PAUSE_END`."""
PAUSE_END = 0.5
"""Seconds of silence that end a sentence inside a run-on."""


class HighlightsError(ValueError):
    """Bad parameters for choosing highlights (durations, count)."""


@dataclass(frozen=True)
class Unit:
    """A sentence (or a piece of a run-on one): the atom segments are built from."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    pause_end: bool = False
    """Cut from a run-on sentence at a pause, which ends it as punctuation would."""


@dataclass(frozen=True)
class Candidate:
    """Units ``first..last`` (inclusive) played from ``start`` to ``end`` (padded, seconds)."""

    first: int
    last: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


@dataclass(frozen=True)
class DurationBounds:
    """Target, minimum and maximum segment duration in seconds."""

    target: float
    minimum: float
    maximum: float

    @classmethod
    def from_target(
        cls, target: float, minimum: float | None = None, maximum: float | None = None
    ) -> DurationBounds:
        """Bounds around ``target`` (defaults 0.5x and 1.5x); raises :class:`HighlightsError`."""
        if not (math.isfinite(target) and target > 0):
            raise HighlightsError(f"target duration must be a positive number, got {target!r}")
        low = MIN_FACTOR * target if minimum is None else minimum
        high = MAX_FACTOR * target if maximum is None else maximum
        if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high < low:
            raise HighlightsError(
                f"need 0 < min duration <= max duration, got min={low!r} max={high!r}"
            )
        return cls(target=min(max(target, low), high), minimum=low, maximum=high)


def sentence_units(transcript: Transcript, max_unit: float) -> tuple[Unit, ...]:
    """Sentences with word timing, in time order.

    A sentence of more than :data:`RUN_ON_WORDS` words (a run-on: little punctuation) is
    cut at every pause of at least :data:`PAUSE_END` seconds; a piece still longer than
    ``max_unit`` seconds is split at its longest pauses (preferring punctuation).
    """
    units: list[Unit] = []
    for sentence in transcript.sentences:
        words = tuple(w for w in sentence.words if w.text.strip() and w.end >= w.start)
        if words:
            pieces = _at_pauses(words) if len(words) > RUN_ON_WORDS else [words]
            for n, piece in enumerate(pieces, start=1):
                text = sentence.text.strip() if len(pieces) == 1 else _join(piece)
                unit = Unit(piece[0].start, piece[-1].end, text, piece, n < len(pieces))
                units.extend(_split(unit, max_unit))
        elif sentence.text.strip() and sentence.end > sentence.start:
            units.append(Unit(sentence.start, sentence.end, sentence.text.strip(), ()))
    units.sort(key=lambda u: u.start)
    return tuple(units)


def _at_pauses(words: tuple[Word, ...]) -> list[tuple[Word, ...]]:
    """``words`` cut wherever the silence between two words lasts :data:`PAUSE_END` or more."""
    cuts = [k for k in range(1, len(words)) if words[k].start - words[k - 1].end >= PAUSE_END]
    return [words[a:b] for a, b in itertools.pairwise([0, *cuts, len(words)])]


def _split(unit: Unit, max_unit: float) -> list[Unit]:
    """``unit`` split at its longest pause (a comma adds 0.5 s) until no piece lasts more
    than ``max_unit`` seconds."""
    words = unit.words
    if unit.end - unit.start <= max_unit or len(words) < 2:
        return [unit]
    gaps = [words[k].start - words[k - 1].end for k in range(1, len(words))]
    weighted = [g + 0.5 * (words[k].text.rstrip()[-1:] in ",;:-") for k, g in enumerate(gaps)]
    k = 1 + max(range(len(gaps)), key=weighted.__getitem__)
    head = Unit(words[0].start, words[k - 1].end, _join(words[:k]), words[:k])
    tail = Unit(words[k].start, words[-1].end, _join(words[k:]), words[k:], unit.pause_end)
    return [*_split(head, max_unit), *_split(tail, max_unit)]


def _join(words: Sequence[Word]) -> str:
    return " ".join(w.text.strip() for w in words)


def generate_candidates(
    units: Sequence[Unit], bounds: DurationBounds, media_duration: float, padding: float
) -> list[Candidate]:
    """Every run of whole units lasting within ``bounds`` (at most a dozen ends per start).

    Padded boundaries stay in the middle of the pause to a neighbouring unit at most.
    """
    starts, ends = padded_bounds(units, media_duration, padding)
    low = np.searchsorted(ends, starts + bounds.minimum, side="left")
    high = np.searchsorted(ends, starts + bounds.maximum, side="right") - 1
    candidates: list[Candidate] = []
    for i in range(len(units)):
        first_end, last_end = max(int(low[i]), i), int(high[i])
        if first_end > last_end:
            continue
        for j in _spread(first_end, last_end, starts[i] + bounds.target, ends):
            candidates.append(Candidate(i, j, float(starts[i]), float(ends[j])))
    return candidates


def padded_bounds(
    units: Sequence[Unit], media_duration: float, padding: float
) -> tuple[FloatArray, FloatArray]:
    """Start and end of each unit with ``padding``, never past the middle of a pause."""
    start = np.array([u.start for u in units], np.float64)
    end = np.array([u.end for u in units], np.float64)
    before = np.concatenate(([2 * start[0]], start[1:] - end[:-1])) / 2
    after = np.concatenate((start[1:] - end[:-1], [2 * (media_duration - end[-1])])) / 2
    pad_before = np.clip(np.minimum(padding, before), 0, None)
    pad_after = np.clip(np.minimum(padding, after), 0, None)
    return np.maximum(start - pad_before, 0.0), np.maximum.accumulate(end + pad_after)


def _spread(first: int, last: int, target_end: float, ends: FloatArray) -> list[int]:
    """Up to :data:`MAX_ENDS_PER_START` ends from ``first..last``, evenly spread, plus the
    one closest to the target duration."""
    if last - first < MAX_ENDS_PER_START:
        return list(range(first, last + 1))
    picks = set(np.linspace(first, last, MAX_ENDS_PER_START - 1).round().astype(int).tolist())
    closest = first + int(np.argmin(np.abs(ends[first : last + 1] - target_end)))
    return sorted(picks | {closest})
