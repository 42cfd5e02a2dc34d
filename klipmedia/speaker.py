"""Who is speaking: the audio's loudness against each face's mouth openness.

:func:`loudness` measures the audio every 10 ms; :func:`voice_activity` marks where
someone is audibly speaking (loud enough above the clip's quiet parts, gaps between
syllables bridged). :func:`active_speakers` then scores every face track over a window
of about 1.5 s around each face sample: the correlation of its mouth openness with the
loudness, at the best of a few small audio-video offsets. A track is the speaker only
while someone speaks, when it correlates clearly (``min_correlation``) and beats every
other track by ``margin``; otherwise nobody is named. A voice whose mouth is not on
screen moves no mouth in time with it, so it names nobody. A listener who chews, laughs
or nods moves out of time with the voice and scores low. While the analysis runs,
:class:`RecentSpeaker` scores the window that ends at the latest sample, so that the
listeners of a clear speaker are measured at every other sample only.

Examples
--------
>>> analysis = analyse("talk.mp4", mouths=True)  # doctest: +SKIP
>>> active_speakers(analysis.samples, analysis.loudness)[:5]  # doctest: +SKIP
(None, None, 1, 1, 1)
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from klipmedia.audio import RATE, source_samples
from klipmedia.faces import Face, ReframeError

if TYPE_CHECKING:
    from klipmedia.reframe import Sample

__all__ = [
    "Loudness",
    "RecentSpeaker",
    "SpeakerSettings",
    "active_speakers",
    "loudness",
    "speaker_scores",
    "speech_at",
    "speech_near",
    "voice_activity",
]

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]

HOP = 0.01
"""Seconds between loudness values."""
_SILENCE_DB = -90.0
_HOP_SAMPLES = round(RATE * HOP)


@dataclass(frozen=True)
class Loudness:
    """Audio level in dBFS every :data:`HOP` seconds from the start of the analysed range.

    Examples
    --------
    >>> level = Loudness((-60.0, -20.0, -22.0))
    >>> level.duration
    0.03
    """

    db: tuple[float, ...]

    @property
    def duration(self) -> float:
        """Seconds covered."""
        return round(len(self.db) * HOP, 6)

    def values(self) -> Floats:
        """The levels as an array."""
        return np.asarray(self.db, np.float64)


@dataclass(frozen=True)
class SpeakerSettings:
    """How a speaker is told from the listeners.

    Parameters
    ----------
    window
        Seconds of mouth and audio compared around each face sample.
    min_correlation
        Lowest correlation of mouth openness with loudness that names a speaker.
    margin
        How much the speaker's correlation must beat every other face's.
    max_lag
        Largest audio-video offset tried, in seconds (lip sync is rarely exact).
    min_motion
        Smallest standard deviation of mouth openness over the window for a face to
        count as talking (a still mouth's correlation is noise).
    min_presence
        Share of the window's samples in which a face must be seen to be scored.
    speech_range
        dB above the clip's quiet level (10th percentile) where speech starts, as a
        share of the range from that level to its loud level (98th percentile).
    min_speech_db
        Audio quieter than this (dBFS) is never speech.
    bridge
        Seconds of quiet between loud parts still counted as speech (syllable gaps).
    """

    window: float = 1.5
    min_correlation: float = 0.35
    margin: float = 0.2
    max_lag: float = 0.07
    min_motion: float = 0.01
    min_presence: float = 0.7
    speech_range: float = 0.4
    min_speech_db: float = -55.0
    bridge: float = 0.3

    def __post_init__(self) -> None:
        problems = [
            f"{name}={value} must be {rule}"
            for name, value, ok, rule in (
                ("window", self.window, self.window > 0, "> 0"),
                (
                    "min_correlation",
                    self.min_correlation,
                    -1 < self.min_correlation < 1,
                    "in (-1, 1)",
                ),
                ("margin", self.margin, self.margin >= 0, ">= 0"),
                ("max_lag", self.max_lag, self.max_lag >= 0, ">= 0"),
                ("min_motion", self.min_motion, self.min_motion >= 0, ">= 0"),
                ("min_presence", self.min_presence, 0 < self.min_presence <= 1, "in (0, 1]"),
                ("speech_range", self.speech_range, 0 < self.speech_range < 1, "in (0, 1)"),
                ("bridge", self.bridge, self.bridge >= 0, ">= 0"),
            )
            if not ok
        ]
        if problems:
            raise ReframeError("bad speaker settings: " + "; ".join(problems))


def loudness(
    path: str | os.PathLike[str], *, start: float = 0.0, end: float | None = None
) -> Loudness | None:
    """The first audio track's level every 10 ms of ``[start, end)`` (file seconds).

    ``start`` and ``end`` are in the file's own timeline, as for
    :func:`~klipmedia.audio.source_samples`. None for a file without audio.
    """
    levels: list[Floats] = []
    pending = np.zeros(0, np.float64)
    limit = None if end is None else round((end - start) * RATE)
    taken = 0
    for chunk in source_samples(Path(path), start):
        mono = chunk.mean(axis=0, dtype=np.float64)
        if limit is not None:
            mono = mono[: max(0, limit - taken)]
        taken += len(mono)
        pending = np.concatenate([pending, mono])
        whole = len(pending) // _HOP_SAMPLES * _HOP_SAMPLES
        if whole:
            levels.append(_db(pending[:whole]))
            pending = pending[whole:]
        if limit is not None and taken >= limit:
            break
    if not levels and not len(pending):
        return None
    if len(pending):
        levels.append(_db(pending))
    return Loudness(tuple(float(v) for v in np.concatenate(levels)))


def _db(samples: Floats) -> Floats:
    """Level in dBFS of each :data:`HOP` of ``samples`` (the last one may be short)."""
    count = math.ceil(len(samples) / _HOP_SAMPLES)
    padded = np.zeros(count * _HOP_SAMPLES)
    padded[: len(samples)] = samples
    power = (padded.reshape(count, _HOP_SAMPLES) ** 2).mean(axis=1)
    return np.asarray(np.maximum(10 * np.log10(np.maximum(power, 1e-12)), _SILENCE_DB))


def voice_activity(level: Loudness, settings: SpeakerSettings | None = None) -> Flags:
    """Whether someone is audibly speaking, every :data:`HOP` seconds.

    Speech is audio more than ``speech_range`` of the way from the clip's quiet level to
    its loud level, and above ``min_speech_db``; gaps up to ``bridge`` seconds between
    loud parts count as speech. A clip with no quiet part has its quiet level set by the
    loud one, 30 dB down.
    """
    settings = settings or SpeakerSettings()
    db = level.values()
    if not len(db):
        return np.zeros(0, np.bool_)
    loud = float(np.percentile(db, 98))
    quiet = min(float(np.percentile(db, 10)), loud - 30.0)
    threshold = max(quiet + settings.speech_range * (loud - quiet), settings.min_speech_db)
    active = db > threshold
    reach = round(settings.bridge / HOP)
    return _close_gaps(active, reach)


def _close_gaps(active: Flags, reach: int) -> Flags:
    """``active`` with runs of False up to ``reach`` long between two True runs filled."""
    out = active.copy()
    on = np.flatnonzero(active)
    if not len(on):
        return out
    gaps = np.flatnonzero(np.diff(on) > 1)
    for index in gaps:
        begin, stop = on[index] + 1, on[index + 1]
        if stop - begin <= reach:
            out[begin:stop] = True
    return out


def _at(values: Floats, times: Floats) -> Floats:
    """``values`` (one every :data:`HOP`) at ``times``: the mean of the hops around each."""
    if not len(values):
        return np.full(len(times), _SILENCE_DB)
    centre = np.clip(np.round(times / HOP).astype(np.intp), 0, len(values) - 1)
    spread = [np.clip(centre + k, 0, len(values) - 1) for k in (-2, -1, 0, 1, 2)]
    return np.asarray(np.mean([values[index] for index in spread], axis=0), np.float64)


def speech_at(level: Loudness, times: Floats, settings: SpeakerSettings | None = None) -> Flags:
    """Whether someone is audibly speaking at each of ``times`` (seconds)."""
    active = voice_activity(level, settings).astype(np.float64)
    return np.asarray(_at(active, times) > 0.5, np.bool_)


def speech_near(level: Loudness, reach: float, settings: SpeakerSettings | None = None) -> Flags:
    """Whether someone speaks within ``reach`` seconds, every :data:`HOP` seconds.

    Where this is False no speaker can be named, so mouths need not be measured: a
    speaker is scored over a window of samples around each moment of speech.

    Examples
    --------
    >>> level = Loudness((-90.0,) * 100 + (-20.0,) * 10 + (-90.0,) * 100)
    >>> near = speech_near(level, 0.5)
    >>> bool(near[40]), bool(near[60]), bool(near[170])
    (False, True, False)
    """
    active = voice_activity(level, settings)
    size = 2 * round(reach / HOP) + 1
    return np.asarray(np.convolve(active, np.ones(size), mode="same") > 0, np.bool_)


def _mouths(samples: Sequence[Sample]) -> dict[int, Floats]:
    """Mouth openness of each face track at every sample (NaN where it is not seen).

    A single sample missed between two measured ones (a listener resting, see
    :class:`RecentSpeaker`) takes their mean.
    """
    tracks: dict[int, Floats] = {}
    for index, sample in enumerate(samples):
        for face in sample.faces:
            if face.track is None or face.mouth is None:
                continue
            series = tracks.setdefault(face.track, np.full(len(samples), math.nan))
            series[index] = face.mouth
    for series in tracks.values():
        missed = np.flatnonzero(np.isnan(series[1:-1]) & ~np.isnan(series[:-2] + series[2:])) + 1
        series[missed] = (series[missed - 1] + series[missed + 1]) / 2
    return tracks


def _correlation(mouth: Floats, audio: Floats, lags: int) -> float:
    """Best Pearson correlation of ``mouth`` with ``audio`` shifted up to ``lags`` samples.

    Plain Python: the windows are a dozen samples, too few for numpy to pay.
    """
    mouths, levels = mouth.tolist(), audio.tolist()
    count = len(mouths)
    best = -1.0
    for lag in range(-lags, lags + 1):
        pairs = [
            (m, a)
            for m, a in zip(
                mouths[max(0, lag) : count + min(0, lag)],
                levels[max(0, -lag) : count + min(0, -lag)],
                strict=True,
            )
            if not math.isnan(m)
        ]
        if len(pairs) < 4:
            continue
        mean_m = sum(m for m, _ in pairs) / len(pairs)
        mean_a = sum(a for _, a in pairs) / len(pairs)
        both = sum((m - mean_m) * (a - mean_a) for m, a in pairs)
        spread = math.sqrt(
            sum((m - mean_m) ** 2 for m, _ in pairs) * sum((a - mean_a) ** 2 for _, a in pairs)
        )
        if spread > 0:
            best = max(best, both / spread)
    return best


def speaker_scores(
    samples: Sequence[Sample], level: Loudness, settings: SpeakerSettings | None = None
) -> tuple[Flags, dict[int, Floats]]:
    """Whether someone speaks at each sample, and each track's score there (NaN: unscored).

    The score is the correlation of the track's mouth openness with the loudness over
    ``window`` seconds around the sample; a track seen in too few of those samples, or
    whose mouth hardly moves, is not scored.
    """
    settings = settings or SpeakerSettings()
    times = np.array([s.time for s in samples], np.float64)
    speech = speech_at(level, times, settings)
    audio = _at(level.values(), times)
    mouths = _mouths(samples)
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 1.0
    lags = round(settings.max_lag * rate)
    scores = {track: np.full(len(times), math.nan) for track in mouths}
    for index in np.flatnonzero(speech):
        window = np.abs(times - times[index]) <= settings.window / 2
        audio_part = np.maximum(audio[window], audio[window].max() - 40.0)
        for track, mouth in mouths.items():
            part = mouth[window]
            seen = ~np.isnan(part)
            if seen.mean() < settings.min_presence or np.nanstd(part) < settings.min_motion:
                continue
            scores[track][index] = _correlation(part, audio_part, lags)
    return speech, scores


def active_speakers(
    samples: Sequence[Sample], level: Loudness | None, settings: SpeakerSettings | None = None
) -> tuple[int | None, ...]:
    """The face track speaking at each sample, or None where nobody on screen clearly is.

    Samples are face samples with tracks and mouth openness (``analyse(..., mouths=True)``).

    Examples
    --------
    >>> active_speakers([], None)
    ()
    """
    settings = settings or SpeakerSettings()
    if level is None or not samples:
        return (None,) * len(samples)
    speech, scores = speaker_scores(samples, level, settings)
    named: list[int | None] = []
    for index in range(len(samples)):
        at = {track: float(s[index]) for track, s in scores.items() if not math.isnan(s[index])}
        named.append(_clear_winner(at, settings) if speech[index] else None)
    return tuple(named)


def _clear_winner(scores: dict[int, float], settings: SpeakerSettings) -> int | None:
    """The track whose score is at least ``min_correlation`` and beats every other (and 0)
    by ``margin``, if any."""
    ranked = sorted(((score, track) for track, score in scores.items()), reverse=True)
    if not ranked:
        return None
    best, track = ranked[0]
    runner_up = max(ranked[1][0], 0.0) if len(ranked) > 1 else 0.0
    clear = best >= settings.min_correlation and best - runner_up >= settings.margin
    return track if clear else None


class RecentSpeaker:
    """Who the face samples of the last ``window`` seconds name as the speaker, sample by
    sample as the analysis goes: the faces whose mouths need not be measured every time.

    Scored as :func:`active_speakers` scores (correlation of each track's mouth openness
    with the loudness, the winner clear by ``margin``), but over the window that ends at
    the latest sample. While a track is clearly speaking there, every other track's mouth
    is measured only at every other sample (:meth:`resting`; :func:`active_speakers`
    takes a skipped sample as the mean of its neighbours). The listeners are still scored
    here, so one who starts to speak in time with the voice is measured at every sample
    again within a window.

    Parameters
    ----------
    level
        The loudness, from the start of the analysed range.
    rate
        Face samples per second (for the audio-video offsets tried).
    """

    def __init__(
        self, level: Loudness, rate: float, settings: SpeakerSettings | None = None
    ) -> None:
        self._settings = settings or SpeakerSettings()
        db = level.values()
        self._level = _at(db, np.arange(max(len(db), 1), dtype=np.float64) * HOP)
        self._lags = round(self._settings.max_lag * rate)
        self._times: list[float] = []
        self._audio: list[float] = []
        self._mouths: dict[int, list[float]] = {}
        self._last: set[int] = set()
        self._speaker: int | None = None

    def add(self, time: float, faces: Sequence[Face]) -> None:
        """The faces of the sample at ``time`` seconds (those with a track and a mouth
        count)."""
        self._times.append(time)
        self._audio.append(float(self._level[min(max(round(time / HOP), 0), len(self._level) - 1)]))
        measured = {f.track: f.mouth for f in faces if f.track is not None and f.mouth is not None}
        for track in measured.keys() - self._mouths.keys():
            self._mouths[track] = [math.nan] * (len(self._times) - 1)
        for track, series in self._mouths.items():
            series.append(measured.get(track, math.nan))
        self._last = set(measured)
        old = bisect.bisect_right(self._times, time - self._settings.window)
        del self._times[:old], self._audio[:old]
        for track, series in list(self._mouths.items()):
            del series[:old]
            if all(math.isnan(value) for value in series):
                del self._mouths[track]  # gone (or unmeasured) for a whole window
        audio = np.asarray(self._audio)
        audio = np.maximum(audio, audio.max() - 40.0)
        scores: dict[int, float] = {}
        for track, series in self._mouths.items():
            mouth = np.asarray(series)
            seen = ~np.isnan(mouth)
            if seen.sum() >= 4 and float(mouth[seen].std()) >= self._settings.min_motion:
                scores[track] = _correlation(mouth, audio, self._lags)
        self._speaker = _clear_winner(scores, self._settings)

    def resting(self) -> frozenset[int]:
        """Tracks whose mouths may skip the next sample: while a track is clearly speaking,
        every other one measured at the latest sample."""
        if self._speaker is None:
            return frozenset()
        return frozenset(self._last - {self._speaker})
