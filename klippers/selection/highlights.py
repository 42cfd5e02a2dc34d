"""Choose the best self-contained passages of a transcript: :func:`select_highlights`.

Candidates start and end on sentence boundaries (word times plus a small padding that
never reaches into a neighbouring word) and last between a minimum and a maximum
duration. A :class:`Scorer` rates them; the default :class:`EmbeddedScorer` is
deterministic and offline. It combines

- **hook**: the opening sentence asks a question, makes a claim, gives a number or
  uses strong words;
- **self-containedness**: no dangling "and/but/so/this..." opening, ends on a finished
  sentence, the next sentence does not continue the thought;
- **keyword salience**: TF-IDF of the passage's words against the whole transcript;
- **speech density**: words per second and the share of time with speech;
- **audio energy variation**: spread of a per-second loudness curve, when given;
- **duration fit**: closeness to the target duration.

The best non-overlapping candidates are kept, in rank order.

Examples
--------
>>> transcript = Transcript.load("original.words.json")  # doctest: +SKIP
>>> result = select_highlights(transcript, count=3, target_duration=60)  # doctest: +SKIP
>>> [(h.rank, round(h.start, 1), h.score, h.title) for h in result.highlights]  # doctest: +SKIP
[(1, 312.4, 83.0, 'Why do most startups fail?'), ...]
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from klipmedia.captions import ends_sentence
from klippers.asr.transcript import Transcript, Word

log = logging.getLogger(__name__)

DEFAULT_TARGET = 60.0
MIN_FACTOR, MAX_FACTOR = 0.5, 1.5
"""Default duration bounds as multiples of the target duration."""
DEFAULT_PADDING = 0.25
"""Seconds added before the first and after the last word (never into a neighbour word)."""
MAX_ENDS_PER_START = 12
"""Candidate ends tried per start sentence: keeps generation linear in the transcript length."""
MAX_AUTO_SEGMENTS = 10
DEFAULT_SHORTLIST = 24
"""Candidates an external scorer (an LLM) is asked to rate."""

FloatArray = npt.NDArray[np.float64]


class HighlightsError(ValueError):
    """Bad parameters for choosing highlights (durations, count)."""


# --- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A sentence (or a piece of a very long one): the atom segments are built from."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]


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
class Assessment:
    """A scorer's verdict on one candidate: score in [0, 100], a short title, the reasons."""

    score: float
    title: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ScoringContext:
    """What a scorer may look at besides the candidates themselves."""

    units: tuple[Unit, ...]
    language: str
    target_duration: float
    loudness: FloatArray | None = None
    """Loudness in dB, one value per second of media (see :mod:`klippers.asr.loudness`)."""

    def text(self, candidate: Candidate) -> str:
        """The spoken text of ``candidate``."""
        return " ".join(u.text for u in self.units[candidate.first : candidate.last + 1])


class Scorer(Protocol):
    """Rates candidates; one :class:`Assessment` per candidate, in the same order."""

    def score(
        self, candidates: Sequence[Candidate], context: ScoringContext
    ) -> list[Assessment]: ...


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
    speech, 1..10). With an external ``scorer`` (an LLM), the embedded scorer first
    picks a diverse shortlist of ``shortlist`` candidates, which the scorer then rates.

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
    signals = TranscriptSignals(context)
    scores = signals.rate(candidates)
    if scorer is None:
        chosen = _choose(candidates, scores, wanted)
        assessments = {i: signals.assess(candidates, scores, i) for i in chosen}
    else:
        candidates = [candidates[i] for i in _shortlist(candidates, scores, shortlist)]
        rated = scorer.score(candidates, context)
        if len(rated) != len(candidates):
            raise HighlightsError(
                f"the scorer returned {len(rated)} assessments for {len(candidates)} candidates"
            )
        chosen = _choose(candidates, np.array([a.score for a in rated]), wanted)
        assessments = dict(enumerate(rated))
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


def _choose(candidates: Sequence[Candidate], scores: FloatArray, count: int) -> list[int]:
    """Greedy: best score first, skipping candidates that overlap one already chosen."""
    chosen: list[int] = []
    for i in _best_first(candidates, scores):
        c = candidates[i]
        if all(c.end <= candidates[j].start or c.start >= candidates[j].end for j in chosen):
            chosen.append(i)
            if len(chosen) == count:
                break
    return chosen


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


# --- sentences and candidates ---------------------------------------------------------------


def sentence_units(transcript: Transcript, max_unit: float) -> tuple[Unit, ...]:
    """Sentences with word timing, in time order; sentences longer than ``max_unit``
    seconds are split at their longest pauses (preferring punctuation)."""
    units: list[Unit] = []
    for sentence in transcript.sentences:
        words = tuple(w for w in sentence.words if w.text.strip() and w.end >= w.start)
        if words:
            units.extend(
                _split(Unit(words[0].start, words[-1].end, sentence.text.strip(), words), max_unit)
            )
        elif sentence.text.strip() and sentence.end > sentence.start:
            units.append(Unit(sentence.start, sentence.end, sentence.text.strip(), ()))
    units.sort(key=lambda u: u.start)
    return tuple(units)


def _split(unit: Unit, max_unit: float) -> list[Unit]:
    if unit.end - unit.start <= max_unit or len(unit.words) < 2:
        return [unit]
    words = unit.words
    gaps = [
        words[k].start
        - words[k - 1].end
        + (0.5 if words[k - 1].text.rstrip()[-1:] in ",;:-" else 0)
        for k in range(1, len(words))
    ]
    k = 1 + max(range(len(gaps)), key=gaps.__getitem__)
    halves = (words[:k], words[k:])
    return [
        piece
        for part in halves
        for piece in _split(Unit(part[0].start, part[-1].end, _join(part), part), max_unit)
    ]


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


# --- the embedded scorer --------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


_DANGLING = _lexicon(
    """and but so or because also then this that these those it they he she which anyway
    plus however therefore though although yeah um uh"""
)
"""Openers that lean on what came before (English)."""
_STRONG = _lexicon(
    """never always secret mistake mistakes truth biggest best worst most nobody everyone
    everybody every stop must imagine why how shocking surprising incredible important
    critical huge massive crazy insane simple easy hard wrong right real actually exactly
    key problem fail failed failure success rule rules lesson lessons warning dangerous
    free only first last"""
)
_NUMBER_WORDS = _lexicon(
    """one two three four five six seven eight nine ten eleven twelve twenty thirty forty
    fifty hundred thousand million billion trillion percent half double triple"""
)
_CLAIM = re.compile(
    r"^\W*(the (truth|secret|problem|reason|key|thing|point|lesson|rule) (is|was)|here'?s|"
    r"imagine|what if|did you know|nobody|no one|everyone|everybody|never|always|stop|"
    r"you (need|have|should|must|can't|won't)|i (bet|promise|guarantee|believe|learned)|"
    r"the (best|worst|biggest|most|only|first)|if you|most people|this is (why|how|the))\b",
    re.IGNORECASE,
)
_STOPWORDS = _lexicon(
    """a an the and or but so of to in on at by for with from as is are was were be been
    being am do does did have has had i you he she it we they me him her us them my your
    his its our their this that these those there here what which who whom whose when
    where why how not no yes all any some just very really about into over than then too
    can could would should will shall may might must let lets get got go going gonna like
    know think mean okay ok yeah um uh oh well right thing things stuff kind sort lot one
    also if because up down out off again more most much many such only own same other
    each few now"""
)

BURST_WINDOW = 60
"""Content words either side of a word within which its repetitions count as a topic."""

WEIGHTS = {
    "hook": 0.25,
    "self_contained": 0.25,
    "salience": 0.20,
    "density": 0.15,
    "energy": 0.10,
    "fit": 0.05,
}


@dataclass(frozen=True)
class _UnitFeatures:
    """Per-unit signals, as arrays aligned with the units."""

    hook: FloatArray
    question: npt.NDArray[np.bool_]
    claim: npt.NDArray[np.bool_]
    number: npt.NDArray[np.bool_]
    dangling: npt.NDArray[np.bool_]
    finished: npt.NDArray[np.bool_]
    bursts: list[list[tuple[str, float]]]
    salience_sum: FloatArray
    token_count: FloatArray
    word_count: FloatArray
    speech_time: FloatArray


class EmbeddedScorer:
    """Deterministic, offline scorer from transcript (and optional loudness) signals."""

    def score(self, candidates: Sequence[Candidate], context: ScoringContext) -> list[Assessment]:
        """Score, title and explain every candidate."""
        signals = TranscriptSignals(context)
        scores = signals.rate(candidates)
        return [signals.assess(candidates, scores, n) for n in range(len(candidates))]


class TranscriptSignals:
    """Per-unit signals of one transcript, computed once, then rated per candidate.

    :meth:`rate` is vectorised (prefix sums over units), so scoring tens of thousands
    of candidates of a 3-hour transcript takes well under a second; titles and reasons
    are only worded by :meth:`assess` for the candidates that need them.
    """

    def __init__(self, context: ScoringContext) -> None:
        self.context = context
        self.features = _unit_features(context.units)
        self.signals: dict[str, FloatArray] = {}

    def rate(self, candidates: Sequence[Candidate]) -> FloatArray:
        """Scores in [0, 100], one per candidate."""
        if not candidates:
            return np.zeros(0)
        self.signals = _candidate_signals(candidates, self.features, self.context)
        weights = {k: w for k, w in WEIGHTS.items() if k in self.signals}
        total = sum(weights.values())
        return np.asarray(
            100 * sum(w * self.signals[k] for k, w in weights.items()) / total, np.float64
        )

    def assess(self, candidates: Sequence[Candidate], scores: FloatArray, row: int) -> Assessment:
        """Title and reasons of ``candidates[row]`` (after :meth:`rate` on ``candidates``)."""
        candidate = candidates[row]
        return Assessment(
            score=float(scores[row]),
            title=_title(candidate, self.features, self.context),
            reasons=_reasons(candidate, self.features, self.signals, row, self.context),
        )


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def _unit_features(units: Sequence[Unit]) -> _UnitFeatures:
    tokens = [_tokens(u.text) for u in units]
    content = [
        [t for t in ts if t not in _STOPWORDS and len(t) > 2 and not t.isdigit()] for ts in tokens
    ]
    bursts = _keyword_bursts(content)
    question = np.array([u.text.rstrip().rstrip("\"')»”").endswith("?") for u in units])
    claim = np.array([bool(_CLAIM.match(u.text)) for u in units])
    number = np.array(
        [
            any(t.isdigit() or t in _NUMBER_WORDS for t in ts) or "%" in u.text
            for u, ts in zip(units, tokens, strict=True)
        ]
    )
    strong = np.array([sum(t in _STRONG for t in ts[:12]) for ts in tokens], np.float64)
    hook = np.clip(0.55 * question + 0.4 * claim + 0.3 * number + 0.12 * strong, 0, 1)
    return _UnitFeatures(
        hook=hook,
        question=question,
        claim=claim,
        number=number,
        dangling=np.array([bool(ts) and ts[0] in _DANGLING for ts in tokens]),
        finished=np.array([ends_sentence(u.text) for u in units]),
        bursts=bursts,
        salience_sum=np.array([sum(b for _, b in unit) for unit in bursts], np.float64),
        token_count=np.array([max(1, len(ts)) for ts in tokens], np.float64),
        word_count=np.array(
            [len(u.words) or len(ts) for u, ts in zip(units, tokens, strict=True)], np.float64
        ),
        speech_time=np.array(
            [sum(w.end - w.start for w in u.words) or (u.end - u.start) for u in units]
        ),
    )


def _keyword_bursts(content: list[list[str]]) -> list[list[tuple[str, float]]]:
    """Each content word with its burstiness: log of how much more often the word occurs
    within :data:`BURST_WINDOW` words around it than its rate in the whole transcript
    predicts (0 unless it recurs nearby). Topic words of a passage score high; words
    spread evenly over the talk (fillers, the talk's general subject) score near 0.
    O(words log words)."""
    flat = [t for ts in content for t in ts]
    total = len(flat)
    positions: dict[str, list[int]] = {}
    for index, term in enumerate(flat):
        positions.setdefault(term, []).append(index)
    burst = np.zeros(total)
    span = 2 * BURST_WINDOW + 1
    for where in positions.values():
        if len(where) < 2:
            continue
        at = np.asarray(where)
        nearby = np.searchsorted(at, at + BURST_WINDOW, "right") - np.searchsorted(
            at, at - BURST_WINDOW, "left"
        )
        expected = span * len(where) / total
        burst[at] = np.where(nearby >= 2, np.log(np.maximum(nearby / expected, 1.0)), 0.0)
    out: list[list[tuple[str, float]]] = []
    index = 0
    for ts in content:
        out.append([(t, float(burst[index + k])) for k, t in enumerate(ts)])
        index += len(ts)
    return out


def _candidate_signals(
    candidates: Sequence[Candidate], f: _UnitFeatures, context: ScoringContext
) -> dict[str, FloatArray]:
    """Each signal in [0, 1] for every candidate, from prefix sums over units."""
    first = np.fromiter((c.first for c in candidates), np.int64, len(candidates))
    last = np.fromiter((c.last for c in candidates), np.int64, len(candidates))
    start = np.fromiter((c.start for c in candidates), np.float64, len(candidates))
    end = np.fromiter((c.end for c in candidates), np.float64, len(candidates))
    duration = np.maximum(end - start, 1e-6)

    def span(values: FloatArray) -> FloatArray:
        prefix = np.concatenate(([0.0], np.cumsum(values)))
        return prefix[last + 1] - prefix[first]

    continues = np.append(f.dangling[1:], False)[last]
    self_contained = 1.0 - 0.5 * f.dangling[first] - 0.35 * ~f.finished[last] - 0.1 * continues
    unit_salience = f.salience_sum / f.token_count
    scale = float(np.percentile(unit_salience, 95)) or 1.0
    salience = np.clip(span(f.salience_sum) / span(f.token_count) / scale, 0, 1)
    words_per_second = span(f.word_count) / duration
    coverage = span(f.speech_time) / duration
    density = 0.5 * np.clip(words_per_second / 3.0, 0, 1) + 0.5 * np.clip(coverage / 0.85, 0, 1)
    spread = max(context.target_duration, 1e-6)
    fit = np.clip(1 - np.abs(duration - context.target_duration) / spread, 0, 1)
    signals = {
        "hook": f.hook[first],
        "self_contained": np.clip(self_contained, 0, 1),
        "salience": salience,
        "density": density,
        "fit": fit,
        "words_per_second": words_per_second,
    }
    if context.loudness is not None and len(context.loudness) > 1:
        signals["loudness_spread"] = _loudness_spread(context.loudness, start, end)
        signals["energy"] = np.clip(signals["loudness_spread"] / 8.0, 0, 1)
    return signals


def _loudness_spread(loudness: FloatArray, start: FloatArray, end: FloatArray) -> FloatArray:
    """Standard deviation (dB) of the per-second loudness over each [start, end)."""
    values = np.asarray(loudness, np.float64)
    prefix = np.concatenate(([0.0], np.cumsum(values)))
    prefix2 = np.concatenate(([0.0], np.cumsum(values**2)))
    lo = np.clip(np.floor(start).astype(np.int64), 0, len(values) - 1)
    hi = np.clip(np.ceil(end).astype(np.int64), lo + 1, len(values))
    n = hi - lo
    mean = (prefix[hi] - prefix[lo]) / n
    var = (prefix2[hi] - prefix2[lo]) / n - mean**2
    return np.asarray(np.sqrt(np.clip(var, 0, None)), np.float64)


def _keywords(candidate: Candidate, f: _UnitFeatures, limit: int = 3) -> list[str]:
    weight: dict[str, float] = {}
    for unit in f.bursts[candidate.first : candidate.last + 1]:
        for term, burst in unit:
            weight[term] = weight.get(term, 0.0) + burst
    ranked = sorted(weight, key=lambda t: (-weight[t], t))
    return [t for t in ranked[:limit] if weight[t] > 0]


def _title(candidate: Candidate, f: _UnitFeatures, context: ScoringContext) -> str:
    """The opening sentence when it is a short question or claim, else the top keywords."""
    opening = context.units[candidate.first].text.strip()
    i = candidate.first
    if (f.question[i] or f.claim[i]) and len(opening.split()) <= 10:
        return opening.rstrip(".!…")
    keywords = _keywords(candidate, f)
    if keywords:
        title = ", ".join(keywords[:-1]) + (" and " if len(keywords) > 1 else "") + keywords[-1]
        return title[:1].upper() + title[1:]
    words = opening.split()
    return " ".join(words[:8]) + ("…" if len(words) > 8 else "")


def _reasons(
    candidate: Candidate,
    f: _UnitFeatures,
    signals: dict[str, FloatArray],
    row: int,
    context: ScoringContext,
) -> tuple[str, ...]:
    i, j = candidate.first, candidate.last
    opening = context.units[i].text.strip()
    reasons: list[str] = []
    if f.question[i]:
        reasons.append(f"hook: opens with a question ({_clip(opening)})")
    elif f.claim[i]:
        reasons.append(f"hook: opens with a claim ({_clip(opening)})")
    if f.number[i]:
        reasons.append("hook: opens with a number")
    strong = sorted({t for t in _tokens(opening)[:12] if t in _STRONG})
    if strong:
        reasons.append("hook: strong words (" + ", ".join(strong) + ")")
    if f.dangling[i]:
        reasons.append(f"starts mid-thought ('{_tokens(opening)[0]} …')")
    reasons.append("ends on a finished sentence" if f.finished[j] else "ends mid-sentence")
    if j + 1 < len(context.units) and f.dangling[j + 1]:
        reasons.append("the next sentence continues the thought")
    keywords = _keywords(candidate, f)
    if keywords:
        share = signals["salience"][row]
        reasons.append(f"keywords: {', '.join(keywords)} (salience {share:.2f})")
    reasons.append(f"speech density {signals['words_per_second'][row]:.1f} words/s")
    if "loudness_spread" in signals:
        reasons.append(f"loudness varies by {signals['loudness_spread'][row]:.1f} dB")
    reasons.append(f"duration {candidate.duration:.0f} s (target {context.target_duration:.0f} s)")
    return tuple(reasons)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
