"""Plan the whole clip, then crop: shots framing whoever speaks, and the two-person split.

:func:`plan_shots` turns an :class:`~klipmedia.reframe.Analysis` (with mouths) into shots.
Each face sample names the speaking face track or nobody
(:func:`~klipmedia.speaker.active_speakers`), and a vote over the speech within
``min_shot`` seconds around it keeps only a speaker named in a good share of it. Nobody
keeps the last speaker (silence, an off-screen voice); before the first one, the first
speaker is framed (or the most prominent face, in a scene where nobody is named). A change
of speaker is a hard cut where the new voice starts (the onset after the longest pause
around the change); turns shorter than ``min_shot`` merge into their neighbours; scene
cuts always cut. Each shot holds one still window centred on its face, unless the face
moves more than the middle third of the window allows: then the window follows it
smoothly (:func:`~klipmedia.reframe.follow`). A face lost for up to ``hold`` seconds is
held; after that, a cut to the most prominent face on screen (or the centre) starts a
new shot.

:func:`split_paths` frames the left and right person for the ``split`` layout;
:func:`wants_split` says whether a clip suits it. :func:`plan_reframe` does everything
for one clip and a layout, with a mode: ``speaker``, ``face`` (the most prominent face,
no audio) or ``center``.

Examples
--------
>>> plan = plan_reframe("interview.mp4", layout="auto")  # doctest: +SKIP
>>> plan.layout.kind, [(s.start, s.track) for s in plan.shots]  # doctest: +SKIP
('full', [(0.0, 0), (3.1, 1), (7.4, 0)])
>>> render_short("interview.mp4", "short.mp4", layout=plan.layout,
...              crop_path=plan.crop_path, content=plan.content)  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from klipmedia.blazeface import litert_available
from klipmedia.crop import CropPath, Window, window_size
from klipmedia.faces import Face, ReframeError
from klipmedia.layout import FramedPath, Layout, LayoutKind
from klipmedia.letterbox import Content, frame_box, resolve_content
from klipmedia.probe import probe
from klipmedia.reframe import (
    Analysis,
    ReframeSettings,
    Sample,
    analyse,
    default_detector,
    fill_gaps,
    follow,
    prominent_faces,
    shots_between_cuts,
)
from klipmedia.speaker import HOP, active_speakers, speech_at, voice_activity

__all__ = [
    "REFRAME_MODES",
    "CropPaths",
    "ReframeMode",
    "ReframePlan",
    "Shot",
    "Turn",
    "plan_reframe",
    "plan_shots",
    "split_paths",
    "wants_split",
]

log = logging.getLogger(__name__)

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]

ReframeMode = Literal["speaker", "face", "center"]
"""How the crop is placed: on whoever speaks, on the most prominent face, or centred."""
REFRAME_MODES: tuple[ReframeMode, ...] = get_args(ReframeMode)

CropPaths = CropPath | tuple[CropPath, CropPath]
"""One path, or the top and bottom panels' paths of the ``split`` layout."""

_STILL = 0.8
"""A face that stays within this share of the middle third's half-width around one
centre gets a still window."""
_VOTE = 0.4
"""Share of the speech samples within ``min_shot`` around a sample that must name one
speaker for it to win the vote there..."""
_MIN_VOTES = 3
"""...and the fewest samples that must name it."""
SPLIT_TOGETHER = 0.6
"""``auto`` splits only when two faces are seen together in this share of the samples..."""
SPLIT_SHARE = 0.2
"""...and each of them speaks at least this share of the time someone is named."""
SPLIT_FACE = 0.4
"""In the split layout, a face box fills this share of its panel's height..."""
SPLIT_MIN_SCALE = 0.45
"""...unless that would zoom in further than this share of the full height (the
picture would be enlarged too much)."""
_EYES = 0.4
"""The eyes' row in a face box, as a share of its height from the top."""


@dataclass(frozen=True)
class Turn:
    """A stretch in which one face track speaks (seconds from the clip's start)."""

    start: float
    end: float
    track: int


@dataclass(frozen=True)
class Shot:
    """A stretch of the short framed one way.

    ``track``: the face track framed (None: no face seen, or faces without tracks as in
    face mode); ``speaker``: whether it is framed because it speaks (otherwise it is the
    most prominent face, or the centre);
    ``center``: the still window's centre (fraction of the picture's width), or None
    where the window follows a moving face.
    """

    start: float
    end: float
    track: int | None
    speaker: bool
    center: float | None


@dataclass(frozen=True)
class ReframePlan:
    """How a clip is reframed: what :func:`plan_reframe` decided and why.

    ``mode`` is the mode used (``face`` or ``center`` when the requested one could not
    run, see the log); ``layout`` the layout to render (``auto`` resolved); ``crop_path``
    what :func:`~klipmedia.render.render_short` takes; ``content`` the picture inside
    black bars that the paths refer to; ``shots`` and ``turns`` (who speaks when) for
    inspection; ``analysis`` the faces and audio they come from.

    Examples
    --------
    >>> plan = ReframePlan("center", Layout("full"), CropPath.center(), Window(0, 0, 640, 360))
    >>> plan.speaker_at(1.0) is None
    True
    """

    mode: ReframeMode
    layout: Layout
    crop_path: CropPaths
    content: Window
    shots: tuple[Shot, ...] = ()
    turns: tuple[Turn, ...] = ()
    analysis: Analysis | None = None

    def speaker_at(self, t: float) -> int | None:
        """The face track speaking at ``t`` seconds, if any."""
        return next((turn.track for turn in self.turns if turn.start <= t < turn.end), None)

    def shot_at(self, t: float) -> Shot | None:
        """The shot showing at ``t`` seconds, if any."""
        return next((shot for shot in self.shots if shot.start <= t < shot.end), None)


@dataclass(frozen=True)
class _Run:
    """Samples ``begin``-``stop`` (indices) of one scene under one label, from ``start`` s."""

    begin: int
    stop: int
    start: float
    label: int | None


def _track_centres(samples: Sequence[Sample], track: int, width: int) -> Floats:
    """Centre (fraction of the width) of ``track``'s face at each sample (NaN: not seen)."""
    centres = np.full(len(samples), math.nan)
    for index, sample in enumerate(samples):
        for face in sample.faces:
            if face.track == track:
                centres[index] = face.center_x / width
    return centres


def _voted(
    labels: Sequence[int | None], times: Floats, speech: Flags, span: float
) -> list[int | None]:
    """Each sample's label by vote over the speech within ``span`` seconds around it.

    A track wins when it is named in at least :data:`_VOTE` of those speech samples (and
    in :data:`_MIN_VOTES` at least), more often than any other; otherwise nobody does.
    A stray naming (a listener's chance correlation) wins no vote.
    """
    out: list[int | None] = []
    for index in range(len(labels)):
        near = np.flatnonzero((np.abs(times - times[index]) <= span / 2) & speech)
        counts: dict[int, int] = {}
        for label in (labels[int(i)] for i in near):
            if label is not None:
                counts[label] = counts.get(label, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        votes = [count for _, count in ranked] + [0, 0]
        enough = votes[0] >= max(_VOTE * len(near), _MIN_VOTES) and votes[0] > votes[1]
        out.append(ranked[0][0] if enough else None)
    return out


def _filled(labels: Sequence[int | None]) -> list[int | None]:
    """Labels with each None replaced by the last name before it (the first one at the start)."""
    first = next((label for label in labels if label is not None), None)
    out: list[int | None] = []
    last = first
    for label in labels:
        last = label if label is not None else last
        out.append(last)
    return out


def _runs(labels: Sequence[int | None], times: Floats, offset: int) -> list[_Run]:
    """Runs of equal labels (sample indices shifted by ``offset``)."""
    runs: list[_Run] = []
    for index, label in enumerate(labels):
        if runs and runs[-1].label == label:
            continue
        if runs:
            runs[-1] = _Run(runs[-1].begin, offset + index, runs[-1].start, runs[-1].label)
        runs.append(_Run(offset + index, offset + len(labels), float(times[index]), label))
    return runs


def _merged(runs: list[_Run], end: float, min_shot: float) -> list[_Run]:
    """Runs with those shorter than ``min_shot`` seconds merged into a neighbour."""
    runs = list(runs)
    while len(runs) > 1:
        lengths = [
            (runs[i + 1].start if i + 1 < len(runs) else end) - run.start
            for i, run in enumerate(runs)
        ]
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= min_shot:
            break
        keep = shortest - 1 if shortest > 0 else 1  # the previous run holds; else the next
        a, b = sorted((keep, shortest))
        joined = _Run(runs[a].begin, runs[b].stop, runs[a].start, runs[keep].label)
        runs[a : b + 1] = [joined]
        if a > 0 and runs[a - 1].label == joined.label:
            runs[a - 1 : a + 1] = [
                _Run(runs[a - 1].begin, joined.stop, runs[a - 1].start, joined.label)
            ]
        elif a + 1 < len(runs) and runs[a + 1].label == joined.label:
            runs[a : a + 2] = [_Run(joined.begin, runs[a + 1].stop, joined.start, joined.label)]
    return runs


def _onsets(analysis: Analysis, settings: ReframeSettings) -> tuple[Floats, Floats]:
    """Times (seconds) at which a voice starts after a pause, and each pause's length."""
    if analysis.loudness is None:
        return np.zeros(0), np.zeros(0)
    active = voice_activity(analysis.loudness, settings.speaker)
    starts = np.flatnonzero(active[1:] & ~active[:-1]) + 1
    stops = np.flatnonzero(active[:-1] & ~active[1:]) + 1
    previous_stop = np.concatenate([[0], stops])[np.searchsorted(stops, starts)]
    pauses = starts - previous_stop
    return starts.astype(np.float64) * HOP, pauses.astype(np.float64) * HOP


def _cut(onsets: tuple[Floats, Floats], low: float, high: float) -> float:
    """Where a new speaker's shot starts: the voice onset in ``(low, high]`` after the
    longest pause (the later of equals), else ``high``. ``low`` is about when the old
    speaker stopped, ``high`` when the new one was first named: the cut falls where the
    new voice starts."""
    times, pauses = onsets
    inside = np.flatnonzero((times > low) & (times <= high))
    if not len(inside):
        return high
    longest = inside[pauses[inside] >= pauses[inside].max()]
    return float(times[longest[-1]])


def _named(labels: Sequence[int | None], times: Floats, run: _Run, last: bool) -> float:
    """When ``run``'s speaker was first (or last) named in its samples (its start if never)."""
    hits = [float(times[i]) for i in range(run.begin, run.stop) if labels[i] == run.label]
    if not hits:
        return run.start
    return hits[-1] if last else hits[0]


def _pieces(times: Floats, targets: Floats, hold: float) -> list[tuple[int, int, bool]]:
    """Index ranges of a run where its face is seen or held (True), or lost for longer
    than ``hold`` seconds (False)."""
    held = ~np.isnan(fill_gaps(times, targets, hold, math.nan))
    edges = [0, *(np.flatnonzero(np.diff(held)) + 1).tolist(), len(held)]
    return [(a, b, bool(held[a])) for a, b in itertools.pairwise(edges)]


def _framing(
    times: Floats, targets: Floats, half: float, settings: ReframeSettings
) -> tuple[Floats, float | None]:
    """Window centres for one shot's samples, and the still centre when one suits it.

    ``targets`` may have gaps (NaN) shorter than ``hold``; they are held.
    """
    filled = np.clip(fill_gaps(times, targets, settings.hold), half, 1.0 - half)
    low, high = (float(v) for v in np.percentile(filled, [5, 95]))
    if high - low <= 2 * _STILL * half / 3:  # the window's width is 2 * half
        centre = (low + high) / 2
        return np.full(len(times), centre), centre
    return follow(times, filled, half, settings), None


def plan_shots(
    analysis: Analysis,
    *,
    aspect: Fraction,
    settings: ReframeSettings | None = None,
    speakers: bool = True,
) -> tuple[CropPath, tuple[Shot, ...], tuple[Turn, ...]]:
    """Shots for windows of ``aspect`` (w/h): the crop path, the shots and who speaks when.

    ``speakers``: frame whoever speaks (needs an analysis with mouths); otherwise every
    shot frames the most prominent face. Times are seconds from the clip's start.

    Examples
    --------
    >>> path, shots, turns = plan_shots(analysis, aspect=Fraction(9, 16))  # doctest: +SKIP
    >>> [(round(t.start, 1), t.track) for t in turns]  # doctest: +SKIP
    [(0.3, 0), (2.9, 1), (5.7, 0)]
    """
    settings = settings or ReframeSettings()
    win_width, _ = window_size(analysis.width, analysis.height, aspect)
    half = win_width / analysis.width / 2
    samples = analysis.samples
    if half >= 0.5 or not samples:
        return CropPath.center(), (), ()
    times = np.array([s.time for s in samples], np.float64)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / settings.sample_fps
    labels = (
        active_speakers(samples, analysis.loudness, settings.speaker)
        if speakers
        else (None,) * len(samples)
    )
    onsets = _onsets(analysis, settings)
    speech = (
        speech_at(analysis.loudness, times, settings.speaker)
        if analysis.loudness is not None
        else np.zeros(len(times), np.bool_)
    )
    default = fill_gaps(times, prominent_faces(samples, analysis.width, settings), settings.hold)
    shots: list[Shot] = []
    turns: list[Turn] = []
    points: list[tuple[float, float]] = []
    scenes = shots_between_cuts(samples, analysis.cuts)
    offset = 0
    for number, (begin, scene) in enumerate(scenes):
        end = scenes[number + 1][0] if number + 1 < len(scenes) else float(times[-1]) + step
        indices = slice(offset, offset + len(scene))
        voted = _voted(labels[indices], times[indices], speech[indices], settings.min_shot)
        runs = _merged(_runs(_filled(voted), times[indices], offset), end, settings.min_shot)
        offset += len(scene)
        starts = [begin]
        for prev, run in itertools.pairwise(runs):
            # a speaker is still named up to half a window after they stop
            low = _named(labels, times, prev, True) - settings.speaker.window / 2
            high = _named(labels, times, run, False)
            starts.append(_cut(onsets, max(low, starts[-1] + settings.min_shot), high))
        for run, start, stop in zip(runs, starts, [*starts[1:], end], strict=True):
            part = slice(run.begin, run.stop)
            targets = (
                default[part]
                if run.label is None
                else _track_centres(samples[part], run.label, analysis.width)
            )
            for first, last, seen in _pieces(times[part], targets, settings.hold):
                piece = slice(run.begin + first, run.begin + last)
                begin_at = start if first == 0 else float(times[piece.start])
                stop_at = stop if piece.stop == run.stop else float(times[piece.stop])
                centres, still = _framing(
                    times[piece], targets[first:last] if seen else default[piece], half, settings
                )
                speaker = seen and run.label is not None
                track = run.label if speaker else _prominent_track(samples[piece])
                shots.append(Shot(begin_at, stop_at, track, speaker, still))
                if points:
                    points.append((begin_at, points[-1][1]))  # hold up to the cut, then jump
                points.append((begin_at, float(centres[0])))
                if still is None:
                    points.extend(
                        (float(t), float(c))
                        for t, c in zip(times[piece], centres, strict=True)
                        if t > begin_at
                    )
            if run.label is not None:
                turns.append(Turn(start, stop, run.label))
    path = CropPath(tuple(t for t, _ in points), tuple(c for _, c in points))
    return path, tuple(shots), tuple(turns)


def _prominent_track(samples: Sequence[Sample]) -> int | None:
    """The track most often the largest face in ``samples`` (None without tracks)."""
    counts: dict[int, int] = {}
    for sample in samples:
        largest = max(sample.faces, key=lambda face: face.area, default=None)
        if largest is not None and largest.track is not None:
            counts[largest.track] = counts.get(largest.track, 0) + 1
    return max(counts, key=lambda track: counts[track]) if counts else None


def _pair(faces: Sequence[Face]) -> tuple[Face, Face] | None:
    """The two largest faces, left one first (None with fewer than two)."""
    if len(faces) < 2:
        return None
    first, second = sorted(faces, key=lambda face: -face.area)[:2]
    return (first, second) if first.center_x <= second.center_x else (second, first)


def split_paths(
    analysis: Analysis, *, aspect: Fraction, settings: ReframeSettings | None = None
) -> tuple[FramedPath, FramedPath]:
    """Still windows of ``aspect`` framing the left and the right person, scene by scene.

    In each scene, the left and right of the two largest faces are framed head and
    shoulders: the window is sized so that the face (median box) fills
    :data:`SPLIT_FACE` of its height (zooming in at most to :data:`SPLIT_MIN_SCALE` of
    the full height), with the eyes a third of the way down, clamped inside the picture.
    A scene without two faces frames its most prominent face (or the centre) in both
    panels at full height.

    Examples
    --------
    >>> top, bottom = split_paths(analysis, aspect=Fraction(9, 8))  # doctest: +SKIP
    >>> top.center_at(0.0), top.row_at(0.0), top.scale_at(0.0)  # doctest: +SKIP
    (0.28, 0.52, 0.62)
    """
    settings = settings or ReframeSettings()
    win_width, win_height = window_size(analysis.width, analysis.height, aspect)
    points: tuple[list[tuple[float, float, float, float]], ...] = ([], [])
    for begin, scene in shots_between_cuts(analysis.samples, analysis.cuts):
        pairs = [pair for pair in (_pair(s.faces) for s in scene) if pair is not None]
        if pairs:
            framings = [_head_and_shoulders([p[side] for p in pairs], analysis) for side in (0, 1)]
        else:
            prominent = prominent_faces(scene, analysis.width, settings)
            seen = prominent[~np.isnan(prominent)]
            framings = [(float(np.median(seen)) if len(seen) else 0.5, 0.5, 1.0)] * 2
        for path, (centre, row, scale) in zip(points, framings, strict=True):
            half_w = min(win_width * scale / analysis.width / 2, 0.5)
            half_h = win_height * scale / analysis.height / 2
            clipped = (
                min(max(centre, half_w), 1.0 - half_w),
                min(max(row, half_h), 1.0 - half_h),
                scale,
            )
            if path:
                path.append((begin, *path[-1][1:]))
            path.append((begin, *clipped))
    if not points[0]:
        return _framed([(0.0, 0.5, 0.5, 1.0)]), _framed([(0.0, 0.5, 0.5, 1.0)])
    return _framed(points[0]), _framed(points[1])


def _head_and_shoulders(faces: Sequence[Face], analysis: Analysis) -> tuple[float, float, float]:
    """Centre (fraction of the width), row (of the height) and scale of a window framing
    the median of ``faces`` with its eyes a third of the way down."""
    height = float(np.median([face.height for face in faces]))
    centre = float(np.median([face.center_x for face in faces])) / analysis.width
    eyes = float(np.median([face.y + _EYES * face.height for face in faces]))
    scale = min(max(height / SPLIT_FACE / analysis.height, SPLIT_MIN_SCALE), 1.0)
    window = scale * analysis.height
    return centre, (eyes - window / 3 + window / 2) / analysis.height, scale


def _framed(points: Sequence[tuple[float, float, float, float]]) -> FramedPath:
    """A framed path from (time, centre, row, scale) points."""
    times, centres, rows, scales = (tuple(values) for values in zip(*points, strict=True))
    return FramedPath(times, centres, rows=rows, scales=scales)


def wants_split(
    analysis: Analysis,
    turns: Sequence[Turn],
    *,
    together: float = SPLIT_TOGETHER,
    share: float = SPLIT_SHARE,
) -> bool:
    """Whether the clip suits the split layout: two faces seen together in ``together`` of
    the samples, and the left and the right one each speaking ``share`` of the turns' time.
    """
    samples = analysis.samples
    if not samples or not turns:
        return False
    pairs = [_pair(s.faces) for s in samples]
    if sum(pair is not None for pair in pairs) < together * len(samples):
        return False
    spoken = [0.0, 0.0]
    for turn in turns:
        for sample, pair in zip(samples, pairs, strict=True):
            if pair is None or not turn.start <= sample.time < turn.end:
                continue
            for side in (0, 1):
                if pair[side].track == turn.track:
                    spoken[side] += 1
    total = sum(spoken)
    return total > 0 and min(spoken) >= share * total


def _layouts(
    layout: Layout | LayoutKind | Literal["auto"], fallback: Layout | LayoutKind
) -> tuple[Layout | None, Layout]:
    """The layout asked for (None: auto) and the one-window layout that shots are for."""
    chosen = layout if isinstance(layout, Layout) else None if layout == "auto" else Layout(layout)
    backup = fallback if isinstance(fallback, Layout) else Layout(fallback)
    if backup.kind == "split":
        raise ReframeError("the fallback of layout auto must have one window, not split")
    return chosen, chosen if chosen is not None and chosen.kind != "split" else backup


def _usable_mode(mode: ReframeMode) -> ReframeMode:
    """``mode``, or the best one that the installed packages allow (logged)."""
    if mode not in REFRAME_MODES:
        raise ReframeError(f"unknown reframe mode {mode!r}; choose one of {REFRAME_MODES}")
    if mode == "speaker" and not litert_available():
        log.warning("speaker framing needs ai-edge-litert (the reframe extra): framing faces")
        mode = "face"
    if mode == "face":
        try:
            default_detector()
        except ReframeError as exc:
            log.warning("no face detector (%s): the crop stays centred", exc)
            return "center"
    return mode


def plan_reframe(
    path: str | os.PathLike[str],
    *,
    mode: ReframeMode = "speaker",
    layout: Layout | LayoutKind | Literal["auto"] = "stacked",
    fallback: Layout | LayoutKind = "stacked",
    content: Content = "detect",
    settings: ReframeSettings | None = None,
    start: float = 0.0,
    end: float | None = None,
) -> ReframePlan:
    """Decide the layout and crop of ``[start, end)`` of a clip (times relative to start).

    ``layout="auto"`` gives ``split`` when two people are on screen together most of the
    time and both speak a real share (speaker mode only), else ``fallback``. A layout
    that uses no crop (``blurred``) is not analysed. A mode that the installed packages
    cannot run falls back (speaker -> face without LiteRT, face -> center without any
    detector), logged.

    Examples
    --------
    >>> plan = plan_reframe("seg.mp4", mode="speaker", layout="auto")  # doctest: +SKIP
    >>> plan.turns[:2]  # doctest: +SKIP
    (Turn(start=0.0, end=3.1, track=0), Turn(start=3.1, end=7.4, track=1))
    """
    settings = settings or ReframeSettings()
    chosen, single = _layouts(layout, fallback)
    info = probe(path)
    box = resolve_content(info, content, start=start, end=end)
    used = _usable_mode(mode)
    if info.rotation:
        log.warning("%s carries rotation metadata; the crop stays centred", path)
        used = "center"
    if chosen is not None and chosen.kind == "blurred":
        return ReframePlan(used, chosen, CropPath.center(), box)
    if used == "center" or window_size(box.width, box.height, single.crop_aspect)[0] >= box.width:
        final = chosen or single
        return ReframePlan(used, final, _centred(final), box)
    whole = box == frame_box(info.width, info.height)
    analysis = analyse(
        path,
        settings=settings,
        start=start,
        end=end,
        content=None if whole else box,
        mouths=used == "speaker",
    )
    crop, shots, turns = plan_shots(
        analysis, aspect=single.crop_aspect, settings=settings, speakers=used == "speaker"
    )
    if chosen is None:
        split = used == "speaker" and wants_split(analysis, turns)
        log.info("%s: layout auto -> %s", path, "split" if split else single.kind)
    else:
        split = chosen.kind == "split"
    if not split:
        return ReframePlan(used, single, crop, box, shots, turns, analysis)
    final = chosen or replace(single, kind="split")
    paths = split_paths(analysis, aspect=final.crop_aspect, settings=settings)
    return ReframePlan(used, final, paths, box, shots, turns, analysis)


def _centred(layout: Layout) -> CropPaths:
    """Centred paths for ``layout`` (both panels for split)."""
    if layout.kind == "split":
        return CropPath.fixed(0.25), CropPath.fixed(0.75)
    return CropPath.center()
