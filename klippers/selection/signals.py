"""The embedded scorer: transcript (and optional loudness) signals, deterministic and offline.

The default profile (:data:`WEIGHTS`) looks for what makes a live audience react. Audiences
laugh and clap during stories and lively exchanges, and speakers wait for them, so a
passage scores by how much more of these it holds per second than the whole transcript:

- **pauses** after sentences, longer than the speaker's usual one (speakers wait for
  laughter; language-neutral; only where the word timings are real: evenly spaced
  synthetic timings carry none and are ignored);
- **rhythm**: sentences per second (short sentences, quick exchanges; language-neutral);
- **story**: first-person singular words (anecdotes; English only);
- **anecdote**: sentence embeddings closer to a personal story than to exposition
  (:mod:`~klippers.selection.embeddings`; English only, with the ``select`` extra). On a
  long transcript only the sentences of the best passages by the other cues are embedded.

Smaller terms keep the passage watchable: **novelty** (sentences said again and again
elsewhere, such as catch-phrases, intros or an ASR loop, make poor shorts),
**self-containedness** (no dangling "and/so" opening, a finished last sentence, cut where
the topic changes), **loudness variation** (when given) and **duration fit**.
:data:`CLASSIC_PROFILE` is the first release's (hook, keyword salience, speech density),
kept as a baseline for the benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from klipmedia.captions import ends_sentence
from klippers.selection.embeddings import SentenceEncoder, load_encoder
from klippers.selection.lexicon import DANGLING, STOPWORDS, is_english, lexicon, tokens
from klippers.selection.titles import headline
from klippers.selection.units import Candidate, FloatArray, Unit

_STRONG = lexicon(
    """never always secret mistake mistakes truth biggest best worst most nobody everyone
    everybody every stop must imagine why how shocking surprising incredible important
    critical huge massive crazy insane simple easy hard wrong right real actually exactly
    key problem fail failed failure success rule rules lesson lessons warning dangerous
    free only first last"""
)
_NUMBER_WORDS = lexicon(
    """one two three four five six seven eight nine ten eleven twelve twenty thirty forty
    fifty hundred thousand million billion trillion percent half double triple"""
)
_FIRST_PERSON = lexicon("i me my mine myself i'm i've i'd i'll")
_CLAIM = re.compile(
    r"^\W*(the (truth|secret|problem|reason|key|thing|point|lesson|rule) (is|was)|here'?s|"
    r"imagine|what if|did you know|nobody|no one|everyone|everybody|never|always|stop|"
    r"you (need|have|should|must|can't|won't)|i (bet|promise|guarantee|believe|learned)|"
    r"the (best|worst|biggest|most|only|first)|if you|most people|this is (why|how|the))\b",
    re.IGNORECASE,
)

PAUSE_FLOOR = 0.3
"""Seconds of silence after a sentence that always count as an ordinary breath."""
PAUSE_CAP = 3.0
"""Seconds of pause beyond the usual that count at most (longer is a break, not a reaction)."""
TOPIC_WINDOW = 2
"""Units either side of a sentence compared to tell which side it belongs to."""
BURST_WINDOW = 60
"""Content words either side of a word within which its repetitions count as a topic."""

CUES = {"pauses": 2.0, "rhythm": 1.0, "story": 0.3, "anecdote": 1.0}
"""Weights of the audience-reaction cues inside the ``reactions`` signal."""
EMBED_ALL_UNITS = 800
"""Transcripts of up to this many units (about an hour of speech) are embedded whole."""
EMBED_BUDGET = 200
"""Units embedded in a longer transcript: those of its best passages by the other cues."""
REPEAT_MIN_WORDS = 4
"""Sentences this long or longer count as repeated when said word for word..."""
REPEAT_MIN_COUNT = 3
"""... this many times or more (a refrain said twice is fine; a jingle or an ASR loop is not)."""

WEIGHTS = {"reactions": 1.0, "novelty": 0.5, "self_contained": 0.05, "energy": 0.1, "fit": 0.1}
"""The default profile: audience-reaction cues first."""
CLASSIC_WEIGHTS = {
    "hook": 0.25,
    "self_contained": 0.25,
    "salience": 0.20,
    "density": 0.15,
    "energy": 0.10,
    "fit": 0.05,
}
"""The first release's profile (hook, salience, density); a baseline for the benchmark."""


@dataclass(frozen=True)
class Profile:
    """Weights of the candidate signals, and of the cues inside ``reactions``."""

    weights: Mapping[str, float]
    cues: Mapping[str, float]


DEFAULT_PROFILE = Profile(WEIGHTS, CUES)
CLASSIC_PROFILE = Profile(CLASSIC_WEIGHTS, {})


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

    @property
    def english(self) -> bool:
        """Whether the English word lists apply."""
        return is_english(self.language)

    def text(self, candidate: Candidate) -> str:
        """The spoken text of ``candidate``."""
        return " ".join(u.text for u in self.units[candidate.first : candidate.last + 1])


class Scorer(Protocol):
    """Rates candidates; one :class:`Assessment` per candidate, in the same order."""

    def score(
        self, candidates: Sequence[Candidate], context: ScoringContext
    ) -> list[Assessment]: ...


@dataclass(frozen=True)
class UnitFeatures:
    """Per-unit signals, as arrays aligned with the units."""

    hook: FloatArray
    question: npt.NDArray[np.bool_]
    claim: npt.NDArray[np.bool_]
    number: npt.NDArray[np.bool_]
    dangling: npt.NDArray[np.bool_]
    finished: npt.NDArray[np.bool_]
    leads_on: npt.NDArray[np.bool_]
    """The unit shares more content words with the next units than with the previous ones:
    it opens what follows (a hook, a new topic) rather than closing what came before."""
    bursts: list[list[tuple[str, float]]]
    salience_sum: FloatArray
    token_count: FloatArray
    repeated: FloatArray
    """Seconds of each unit that repeat, word for word, a sentence said again and again."""
    word_count: FloatArray
    speech_time: FloatArray
    cues: dict[str, FloatArray]
    """Audience-reaction cues per unit (see :data:`CUES`), only those in the transcript."""


class EmbeddedScorer:
    """Deterministic, offline scorer with the weights of ``profile``."""

    def __init__(self, profile: Profile = DEFAULT_PROFILE) -> None:
        self.profile = profile

    def score(self, candidates: Sequence[Candidate], context: ScoringContext) -> list[Assessment]:
        """Score, title and explain every candidate."""
        signals = TranscriptSignals(context, self.profile)
        scores = signals.rate(candidates)
        return [signals.assess(candidates, scores, n) for n in range(len(candidates))]


class TranscriptSignals:
    """Per-unit signals of one transcript, computed once, then rated per candidate.

    :meth:`rate` is vectorised (prefix sums over units), so scoring tens of thousands
    of candidates of a 3-hour transcript takes well under a second; titles and reasons
    are only worded by :meth:`assess` for the candidates that need them.
    """

    def __init__(self, context: ScoringContext, profile: Profile = DEFAULT_PROFILE) -> None:
        self.context = context
        self.profile = profile
        self.weights = profile.weights
        self.features = unit_features(context.units, context.english)
        self.signals: dict[str, FloatArray] = {}

    def rate(self, candidates: Sequence[Candidate]) -> FloatArray:
        """Scores in [0, 100], one per candidate."""
        if not candidates:
            return np.zeros(0)
        self.signals = candidate_signals(candidates, self.features, self.context, self.profile)
        scores = self._combine()
        encoder = load_encoder() if self._wants_anecdote() else None
        if encoder is not None:
            amounts = _anecdote_cue(encoder, self.context.units, candidates, scores)
            self.features = replace(self.features, cues={**self.features.cues, "anecdote": amounts})
            self.signals = candidate_signals(candidates, self.features, self.context, self.profile)
            scores = self._combine()
        return scores

    def _wants_anecdote(self) -> bool:
        return (
            bool(self.profile.cues.get("anecdote"))
            and "reactions" in self.weights
            and (self.context.english)
        )

    def _combine(self) -> FloatArray:
        weights = {k: w for k, w in self.weights.items() if k in self.signals}
        total = sum(weights.values())
        return np.asarray(
            100 * sum(w * self.signals[k] for k, w in weights.items()) / total, np.float64
        )

    def used(self) -> list[str]:
        """Names of the signals that went into the scores (after :meth:`rate`)."""
        names = [k for k in self.weights if k in self.signals and k != "reactions"]
        if "reactions" in self.weights:
            names[:0] = [k for k in self.profile.cues if "cue_" + k in self.signals]
        return names

    def assess(self, candidates: Sequence[Candidate], scores: FloatArray, row: int) -> Assessment:
        """Title and reasons of ``candidates[row]`` (after :meth:`rate` on ``candidates``)."""
        candidate = candidates[row]
        units = self.context.units[candidate.first : candidate.last + 1]
        return Assessment(
            score=float(scores[row]),
            title=headline(units, self.context.language, _keywords(candidate, self.features)),
            reasons=self._reasons(candidate, row),
        )

    def _reasons(self, candidate: Candidate, row: int) -> tuple[str, ...]:
        f, signals, context = self.features, self.signals, self.context
        i, j = candidate.first, candidate.last
        opening = context.units[i].text.strip()
        reasons: list[str] = []
        if "reactions" in self.weights:
            parts = [
                f"{_CUE_NAMES[k]} {signals['cue_' + k][row]:.1f}x"
                for k in self.profile.cues
                if "cue_" + k in signals
            ]
            reasons.append("audience cues vs the whole video: " + ", ".join(parts))
        if f.question[i]:
            reasons.append(f"hook: opens with a question ({_clip(opening)})")
        elif f.claim[i]:
            reasons.append(f"hook: opens with a claim ({_clip(opening)})")
        if f.number[i]:
            reasons.append("hook: opens with a number")
        if signals["novelty"][row] < 1:
            share = 100 * (1 - signals["novelty"][row])
            reasons.append(f"{share:.0f} % of it repeats sentences said elsewhere")
        if f.dangling[i]:
            reasons.append(f"starts mid-thought ('{tokens(opening)[0]} …')")
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
        target = context.target_duration
        reasons.append(f"duration {candidate.duration:.0f} s (target {target:.0f} s)")
        scope = "language-neutral only" if not context.english else "with English word lists"
        reasons.append(f"signals used ({context.language}, {scope}): {', '.join(self.used())}")
        return tuple(reasons)


_CUE_NAMES = {
    "pauses": "pauses",
    "rhythm": "sentences/s",
    "story": "I/me/my",
    "anecdote": "story-like sentences",
}


def unit_features(units: Sequence[Unit], english: bool = True) -> UnitFeatures:
    """Every per-unit signal; the English word lists only when ``english``."""
    words = [tokens(u.text) for u in units]
    content = [
        [t for t in ts if t not in STOPWORDS and len(t) > 2 and not t.isdigit()] for ts in words
    ]
    bursts = _keyword_bursts(content)
    question = np.array([u.text.rstrip().rstrip("\"')»”").endswith("?") for u in units])
    claim = np.array([english and bool(_CLAIM.match(u.text)) for u in units])
    number = np.array(
        [
            any(t.isdigit() or (english and t in _NUMBER_WORDS) for t in ts) or "%" in u.text
            for u, ts in zip(units, words, strict=True)
        ]
    )
    strong = np.array([sum(t in _STRONG for t in ts[:12]) if english else 0 for ts in words])
    hook = np.clip(0.55 * question + 0.4 * claim + 0.3 * number + 0.12 * strong, 0, 1)
    return UnitFeatures(
        hook=hook.astype(np.float64),
        question=question,
        claim=claim,
        number=number,
        dangling=np.array([english and bool(ts) and ts[0] in DANGLING for ts in words]),
        finished=np.array([u.pause_end or ends_sentence(u.text) for u in units]),
        leads_on=_leads_on(content),
        bursts=bursts,
        salience_sum=np.array([sum(b for _, b in unit) for unit in bursts], np.float64),
        token_count=np.array([max(1, len(ts)) for ts in words], np.float64),
        repeated=_repeated(units, words),
        word_count=np.array(
            [len(u.words) or len(ts) for u, ts in zip(units, words, strict=True)], np.float64
        ),
        speech_time=np.array(
            [sum(w.end - w.start for w in u.words) or (u.end - u.start) for u in units]
        ),
        cues=_reaction_cues(units, words, english),
    )


def _reaction_cues(
    units: Sequence[Unit], words: Sequence[Sequence[str]], english: bool
) -> dict[str, FloatArray]:
    """Per-unit amounts of each reaction cue; cues absent from the whole transcript are left
    out (so evenly spaced synthetic timings, which have no pauses, do not count).

    A pause counts from the speaker's usual pause between sentences (the median, at least
    :data:`PAUSE_FLOOR`) up to :data:`PAUSE_CAP` seconds more.
    """
    start = np.array([u.start for u in units], np.float64)
    end = np.array([u.end for u in units], np.float64)
    gap = np.append(start[1:] - end[:-1], 0.0)
    usual = max(PAUSE_FLOOR, float(np.median(gap[:-1]))) if len(units) > 1 else PAUSE_FLOOR
    cues = {
        "pauses": np.clip(np.round(gap - usual, 2), 0.0, PAUSE_CAP),  # centiseconds
        "rhythm": np.ones(len(units)),
    }
    if english:
        cues["story"] = np.array([sum(t in _FIRST_PERSON for t in ts) for ts in words], np.float64)
    return {k: v for k, v in cues.items() if v.sum() > 0}


def _anecdote_cue(
    encoder: SentenceEncoder,
    units: Sequence[Unit],
    candidates: Sequence[Candidate],
    scores: FloatArray,
) -> FloatArray:
    """Per-unit anecdote amounts: the z-score of :meth:`SentenceEncoder.anecdote` among the
    embedded units, from 0 up. All units are embedded up to :data:`EMBED_ALL_UNITS`; beyond,
    those of the best ``candidates`` by ``scores`` up to :data:`EMBED_BUDGET`, the others
    get the embedded units' mean (no effect on relative densities)."""
    if len(units) <= EMBED_ALL_UNITS:
        chosen = list(range(len(units)))
    else:
        picked: set[int] = set()
        for i in np.argsort(-scores, kind="stable"):
            picked.update(range(candidates[i].first, candidates[i].last + 1))
            if len(picked) >= EMBED_BUDGET:
                break
        chosen = sorted(picked)
    raw = encoder.anecdote([units[i].text for i in chosen])
    spread = float(raw.std()) or 1.0
    amounts = np.clip((raw - raw.mean()) / spread, 0.0, None)
    out = np.full(len(units), float(amounts.mean()))
    out[chosen] = amounts
    return out


def _repeated(units: Sequence[Unit], words: Sequence[Sequence[str]]) -> FloatArray:
    """The duration of each unit of :data:`REPEAT_MIN_WORDS` words or more whose words are
    said :data:`REPEAT_MIN_COUNT` times or more; 0 for the others."""
    keys = [" ".join(ts) if len(ts) >= REPEAT_MIN_WORDS else "" for ts in words]
    seen: dict[str, int] = {}
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
    return np.array(
        [
            u.end - u.start if key and seen[key] >= REPEAT_MIN_COUNT else 0.0
            for u, key in zip(units, keys, strict=True)
        ]
    )


def _leads_on(content: Sequence[Sequence[str]]) -> npt.NDArray[np.bool_]:
    """Whether each unit has more content words in common with the :data:`TOPIC_WINDOW`
    units after it than with those before it (lexical cohesion, as in TextTiling)."""
    out = np.zeros(len(content), np.bool_)
    for i, words in enumerate(content):
        own = set(words)
        before = {t for ts in content[max(0, i - TOPIC_WINDOW) : i] for t in ts}
        after = {t for ts in content[i + 1 : i + 1 + TOPIC_WINDOW] for t in ts}
        out[i] = len(own & after) > len(own & before)
    return out


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


def candidate_signals(
    candidates: Sequence[Candidate],
    f: UnitFeatures,
    context: ScoringContext,
    profile: Profile = DEFAULT_PROFILE,
) -> dict[str, FloatArray]:
    """Each signal in [0, 1] for every candidate (plus raw figures for the reasons), from
    prefix sums over units."""
    first = np.fromiter((c.first for c in candidates), np.int64, len(candidates))
    last = np.fromiter((c.last for c in candidates), np.int64, len(candidates))
    start = np.fromiter((c.start for c in candidates), np.float64, len(candidates))
    end = np.fromiter((c.end for c in candidates), np.float64, len(candidates))
    duration = np.maximum(end - start, 1e-6)

    def span(values: FloatArray) -> FloatArray:
        prefix = np.concatenate(([0.0], np.cumsum(values)))
        return prefix[last + 1] - prefix[first]

    continues = np.append(f.dangling[1:], False)[last]
    opened_before = np.concatenate(([False], f.leads_on[:-1]))[first]
    self_contained = (
        1.0
        - 0.35 * f.dangling[first]
        - 0.25 * ~f.finished[last]
        - 0.1 * continues
        - 0.15 * opened_before
        - 0.15 * f.leads_on[last]
    )
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
        "novelty": np.clip(1 - span(f.repeated) / duration, 0, 1),
        "salience": salience,
        "density": density,
        "fit": fit,
        "words_per_second": words_per_second,
    }
    ends_on_pause = np.clip(f.cues["pauses"][last], 0, 1) if "pauses" in f.cues else 0.0
    signals["boundary"] = (
        signals["self_contained"] + 0.1 * (f.hook[first] + ends_on_pause) - 0.5 * opened_before
    )
    signals.update(_reactions(f, profile.cues, context, span, duration))
    if context.loudness is not None and len(context.loudness) > 1:
        signals["loudness_spread"] = _loudness_spread(context.loudness, start, end)
        signals["energy"] = np.clip(signals["loudness_spread"] / 8.0, 0, 1)
    return signals


def _reactions(
    f: UnitFeatures,
    cues: Mapping[str, float],
    context: ScoringContext,
    span: Callable[[FloatArray], FloatArray],
    duration: FloatArray,
) -> dict[str, FloatArray]:
    """``reactions`` in [0, 1): the weighted mean of each cue's density in the passage
    relative to its density in the whole transcript (r), squashed as r / (1 + r); 0.5 is an
    average passage. Repeated sentences (see :func:`_repeated`) carry no cue. ``cue_NAME``
    holds each relative density for the reasons."""
    units = context.units
    fresh = f.repeated == 0
    total_time = max(units[-1].end - units[0].start, 1e-6)
    out: dict[str, FloatArray] = {}
    mixed = np.zeros(len(duration))
    weight = 0.0
    for name, amounts in f.cues.items():
        amounts = amounts * fresh
        if not cues.get(name) or amounts.sum() <= 0:
            continue
        relative = (span(amounts) / duration) / (float(amounts.sum()) / total_time)
        out["cue_" + name] = relative
        mixed += cues[name] * relative
        weight += cues[name]
    if not weight:
        return out
    mixed /= weight
    out["reactions"] = mixed / (1 + mixed)
    return out


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


def _keywords(candidate: Candidate, f: UnitFeatures, limit: int = 3) -> list[str]:
    weight: dict[str, float] = {}
    for unit in f.bursts[candidate.first : candidate.last + 1]:
        for term, burst in unit:
            weight[term] = weight.get(term, 0.0) + burst
    ranked = sorted(weight, key=lambda t: (-weight[t], t))
    return [t for t in ranked[:limit] if weight[t] > 0]


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
