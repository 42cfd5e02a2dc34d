"""Transcription windows: how a long video's audio is cut, the plan, and merging the windows.

:mod:`klippers.jobs.shard` writes the plan (``transcript-shards/plan.json``) and the
windows' words; the parent merges them (:func:`merged_transcript`) when the plan and every
window are current for the transcript it needs. Each join is cut in the widest pause of
the overlap (:func:`join_point`), so a word spoken there is taken once, from one side.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from klippers.asr.transcribe import (
    clean_words,
    group_sentences,
)
from klippers.asr.transcript import Sentence, Transcript, TranscriptError, Word
from klippers.contract import (
    MAX_SHARD_COUNT,
    MIN_SHARDED_SECONDS,
    SHARD_OVERLAP_SECONDS,
    SHARD_SECONDS,
    VideoRef,
    recipe_digest,
)
from klippers.jobs.runner import JobInputError, read_recipe
from klippers.storage import Storage, read_if_exists

log = logging.getLogger(__name__)

PLAN_VERSION = 1


# --- windows and merging (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One transcription window: its share ``[share_start, share_end)`` of the timeline and
    the audio it reads, ``[start, end)``, the share plus the overlap on either side."""

    share_start: float
    share_end: float
    start: float
    end: float


def shard_count_for(duration: float, shard_seconds: float = SHARD_SECONDS) -> int:
    """Windows for ``duration`` seconds: 1 below ``MIN_SHARDED_SECONDS``, else one per
    ``shard_seconds`` (rounded up), at most ``MAX_SHARD_COUNT``.

    Examples
    --------
    >>> shard_count_for(3600), shard_count_for(2 * 3600), shard_count_for(10 * 3600)
    (1, 8, 10)
    """
    if duration < MIN_SHARDED_SECONDS:
        return 1
    return min(MAX_SHARD_COUNT, math.ceil(duration / shard_seconds))


def shard_windows(
    duration: float, count: int, overlap: float = SHARD_OVERLAP_SECONDS
) -> tuple[Window, ...]:
    """``count`` equal shares of ``duration`` seconds, each read with ``overlap`` around it.

    Examples
    --------
    >>> [(w.start, w.end) for w in shard_windows(100, 2, overlap=5)]
    [(0.0, 55.0), (45.0, 100.0)]
    """
    bounds = [round(duration * k / count, 3) for k in range(count + 1)]
    return tuple(
        Window(lo, hi, max(0.0, round(lo - overlap, 3)), min(bounds[-1], round(hi + overlap, 3)))
        for lo, hi in pairwise(bounds)
    )


def join_point(
    before: Sequence[Word], after: Sequence[Word], boundary: float, reach: float
) -> float:
    """Where to cut between two windows that meet at ``boundary``: the middle of the widest
    stretch of ``[boundary - reach, boundary + reach]`` in which neither window heard a word.

    No word of either side spans the cut, so each word lies wholly on one side of it.
    """
    lo, hi = boundary - reach, boundary + reach
    spans = sorted(
        (max(w.start, lo), min(w.end, hi)) for w in (*before, *after) if w.end > lo and w.start < hi
    )
    widest, cut, edge = -1.0, boundary, lo
    for start, end in [*spans, (hi, hi)]:
        if start - edge > widest:
            widest, cut = start - edge, (edge + start) / 2
        edge = max(edge, end)
    return cut


def merge_words(parts: Sequence[Sequence[Word]], windows: Sequence[Window]) -> list[Word]:
    """The words of consecutive windows as one sequence: each join cut at its
    :func:`join_point` (reach: half the overlap), each word taken from the window whose side
    of the cuts holds its middle."""
    if len(parts) != len(windows):
        raise ValueError(f"{len(parts)} word lists for {len(windows)} windows")
    cuts = [
        join_point(parts[k], parts[k + 1], windows[k].share_end, _reach(windows[k], windows[k + 1]))
        for k in range(len(parts) - 1)
    ]
    bounds = [-math.inf, *cuts, math.inf]
    return [
        word
        for k, words in enumerate(parts)
        for word in words
        if bounds[k] <= (word.start + word.end) / 2 < bounds[k + 1]
    ]


def merge_shards(
    parts: Sequence[Sequence[Word]], windows: Sequence[Window], language: str, duration: float
) -> Transcript:
    """One transcript from the windows' words (times on the whole timeline): merged, put in
    order within ``duration`` and grouped into sentences."""
    words = clean_words(merge_words(parts, windows), duration)
    return Transcript(language, round(duration, 3), group_sentences(words, language))


def _reach(before: Window, after: Window) -> float:
    """A quarter of the audio both windows heard around their join: the cut stays at least
    half the overlap away from each window's edge, where words are cut off."""
    return max(0.0, before.end - after.start) / 4


def shifted(transcript: Transcript, offset: float, duration: float) -> Transcript:
    """``transcript`` of audio that starts ``offset`` seconds into a ``duration``-second
    timeline, with its times on that timeline."""

    def move(word: Word) -> Word:
        return Word(
            round(word.start + offset, 3), round(word.end + offset, 3), word.text, word.probability
        )

    sentences = tuple(
        Sentence(
            round(s.start + offset, 3),
            round(s.end + offset, 3),
            s.text,
            tuple(move(w) for w in s.words),
        )
        for s in transcript.sentences
    )
    return Transcript(transcript.language, round(duration, 3), sentences)


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardPlan:
    """``transcript-shards/plan.json``: how many windows, over which duration, made from what.

    ``inputs`` are the parent's transcript inputs (the original's identity, the ASR
    settings); ``duration`` is None when the plan is one pass without probing.
    """

    shard_count: int
    duration: float | None
    overlap: float
    inputs: Mapping[str, Any]

    def __post_init__(self) -> None:
        count = self.shard_count
        if isinstance(count, bool) or not isinstance(count, int):
            raise JobInputError(f"shard plan: shard_count must be an integer (got {count!r})")
        if not 1 <= count <= MAX_SHARD_COUNT:
            raise JobInputError(f"shard plan: shard_count must be from 1 to {MAX_SHARD_COUNT}")
        if count > 1 and not (self.duration is not None and self.duration > 0):
            raise JobInputError("shard plan: several windows need a positive duration")

    @property
    def windows(self) -> tuple[Window, ...]:
        """The windows of a sharded plan (none for one pass)."""
        if self.shard_count < 2 or self.duration is None:
            return ()
        return shard_windows(self.duration, self.shard_count, self.overlap)

    def shard_inputs(self, n: int) -> dict[str, Any]:
        """What window ``n`` (from 1) is made from: the plan's inputs and its audio span."""
        window = self.windows[n - 1]
        return {**self.inputs, "window": [window.start, window.end]}

    def to_json(self) -> str:
        """The document."""
        doc = {
            "version": PLAN_VERSION,
            "shard_count": self.shard_count,
            "duration": self.duration,
            "overlap": self.overlap,
            "inputs": dict(self.inputs),
        }
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ShardPlan:
        """Parse a plan; :class:`JobInputError` when it is not one."""
        try:
            doc = json.loads(text)
            if doc["version"] != PLAN_VERSION:
                raise ValueError(f"version {doc['version']!r}")
            duration = doc["duration"]
            return cls(
                doc["shard_count"],
                None if duration is None else float(duration),
                float(doc["overlap"]),
                dict(doc["inputs"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JobInputError(f"shard plan: not a plan ({exc})") from None


def read_plan(storage: Storage, ref: VideoRef) -> ShardPlan | None:
    """The video's shard plan, or None when there is none."""
    data = read_if_exists(storage, ref.shard_plan)
    return None if data is None else ShardPlan.from_json(data)


def merged_transcript(
    storage: Storage, ref: VideoRef, inputs: Mapping[str, Any], duration: float
) -> Transcript | None:
    """The transcript merged from the windows when the plan and every window were made
    from ``inputs`` (the parent's transcript inputs); None otherwise."""
    plan = read_plan(storage, ref)
    if plan is None or plan.shard_count < 2:
        return None
    if recipe_digest(plan.inputs) != recipe_digest(inputs):
        log.info("the shard plan is stale: transcribing in one pass")
        return None
    parts: list[Transcript] = []
    for n in range(1, plan.shard_count + 1):
        if read_recipe(storage, ref.shard_recipe(n)) != recipe_digest(plan.shard_inputs(n)):
            log.info("window %d is missing or stale: transcribing in one pass", n)
            return None
        try:
            parts.append(Transcript.from_json(storage.read_bytes(ref.shard_words(n)).decode()))
        except TranscriptError as exc:
            log.warning("window %d is unreadable (%s): transcribing in one pass", n, exc)
            return None
    language = next((p.language for p in parts if p.language != "und"), parts[0].language)
    log.info("merging %d transcription windows", len(parts))
    return merge_shards([p.words for p in parts], plan.windows, language, duration)
