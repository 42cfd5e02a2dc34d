"""Face-following reframe: a smooth horizontal :class:`~klipmedia.crop.CropPath` from faces.

:func:`analyse` decodes the clip once (PyAV, one thread), detects faces a few times a
second and finds hard scene cuts from block-mean luma differences between consecutive
decoded frames. With ``mouths=True`` (for the speaker plan, :mod:`klipmedia.shots`) it
also follows every face with the face mesh at ``mouth_fps``, measuring its mouth's
openness, and measures the audio's loudness. :func:`plan_path` turns the faces into a
path: per shot, the chosen face's centre is gap-filled, median-filtered, held inside a
dead zone, averaged and pan-speed limited; the window jumps only at scene cuts.
:func:`face_path` does both.

The detector is BlazeFace (:class:`~klipmedia.blazeface.BlazeFaceDetector`, LiteRT) when
``ai-edge-litert`` is installed, else OpenCV's Haar cascade (logged).

Examples
--------
>>> from fractions import Fraction
>>> path = face_path("talk.mp4", aspect=Fraction(9, 16))  # doctest: +SKIP
>>> path.center_at(12.5)  # doctest: +SKIP
0.61
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from klipmedia.blazeface import BlazeFaceDetector, litert_available
from klipmedia.crop import CropPath, Window, window_size
from klipmedia.errors import UnreadableMediaError
from klipmedia.faces import Face, FaceDetector, HaarFaceDetector, ReframeError
from klipmedia.frames import decoded_planes, open_video, planes_to_frame
from klipmedia.landmarks import FaceMesh
from klipmedia.letterbox import Content, frame_box, resolve_content
from klipmedia.probe import probe
from klipmedia.speaker import (
    HOP,
    Loudness,
    RecentSpeaker,
    SpeakerSettings,
    loudness,
    speech_near,
)
from klipmedia.tracking import FaceTracker

__all__ = [
    "Analysis",
    "ReframeError",
    "ReframeSettings",
    "Sample",
    "analyse",
    "default_detector",
    "face_path",
    "fill_gaps",
    "follow",
    "plan_path",
    "prominent_faces",
    "shots_between_cuts",
]

log = logging.getLogger(__name__)

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]

# A face within this distance (fraction of width) of the previous target gets this score boost,
# so the window does not flip between two faces of similar size.
_STICKY_RADIUS = 0.1
_STICKY_BOOST = 1.5
# Scene-cut signature: luma block means on a grid of this many rows and columns.
_SIG_ROWS, _SIG_COLS = 18, 32
_EIGHT_BIT_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)


@dataclass(frozen=True)
class ReframeSettings:
    """How the crop window follows faces. Distances are fractions of the source width.

    Parameters
    ----------
    sample_fps
        Face detections per second of video (plus one on the first frame after each cut).
    dead_zone
        How far the face may drift from the window centre before the window moves.
    max_pan_speed
        Fastest pan, in source widths per second.
    smoothing
        Length in seconds of the centred moving average applied to the path.
    median
        Length in seconds of the median filter that drops stray detections.
    hold
        Seconds a lost face is held before the window goes back to the centre.
    cut_threshold
        Mean absolute difference (0-255) of 18x32 luma block means between consecutive
        decoded frames above which a hard scene cut is declared.
    centrality
        0-1; how much a face's distance from the frame centre lowers its rank against
        larger faces (0: largest face wins; 1: a face at the edge counts as nothing).
    rescan
        Seconds between whole-frame face scans; in between, the followed face is
        re-detected only around its last place (a full scan also runs when it is lost).
    skip_non_reference
        Do not decode non-reference frames (about half the decode time with B-frames).
        With mouths, only while the frames left are no further apart than a mouth
        sample (the mouth signal needs evenly spaced samples); after a wider gap every
        frame is decoded.
    mouth_fps
        With mouths: samples per second (face tracks; mouth openness where two or more
        faces are seen and someone speaks within half a speaker window; while the last
        speaker window names a speaker clearly, the others' at every other sample:
        :class:`~klipmedia.speaker.RecentSpeaker`). 7.5 tells the speaker as well as 10 on
        the synthetic conversations for three quarters of the face-mesh runs; 6 names a
        listener where an off-screen voice speaks.
    follow_fps
        With mouths: face-mesh runs per second on faces whose mouths are not measured,
        to keep each track on its face.
    track_rescan
        With mouths: seconds between face detections (the mesh follows faces between;
        a new face is picked up within this time, a departed one dropped within twice it;
        a face smaller than about 7 % of the width appearing while others are followed
        within twice it: BlazeFace's small-face squares run at every other detection).
    min_shot
        Speaker plan: shortest shot in seconds; shorter turns merge into their neighbours.
    speaker
        How the speaker is told from the listeners (:class:`~klipmedia.speaker.SpeakerSettings`).
    """

    sample_fps: float = 3.0
    dead_zone: float = 0.03
    max_pan_speed: float = 0.25
    smoothing: float = 0.6
    median: float = 1.0
    hold: float = 1.5
    cut_threshold: float = 24.0
    centrality: float = 0.5
    rescan: float = 1.0
    skip_non_reference: bool = True
    mouth_fps: float = 7.5
    follow_fps: float = 3.0
    track_rescan: float = 2.0
    min_shot: float = 1.0
    speaker: SpeakerSettings = field(default_factory=SpeakerSettings)

    def __post_init__(self) -> None:
        problems = [
            f"{name}={value} must be {rule}"
            for name, value, ok, rule in (
                ("sample_fps", self.sample_fps, 0 < self.sample_fps <= 60, "in (0, 60]"),
                ("dead_zone", self.dead_zone, 0 <= self.dead_zone < 0.5, "in [0, 0.5)"),
                ("max_pan_speed", self.max_pan_speed, self.max_pan_speed > 0, "> 0"),
                ("smoothing", self.smoothing, self.smoothing >= 0, ">= 0"),
                ("median", self.median, self.median >= 0, ">= 0"),
                ("hold", self.hold, self.hold >= 0, ">= 0"),
                ("cut_threshold", self.cut_threshold, self.cut_threshold > 0, "> 0"),
                ("centrality", self.centrality, 0 <= self.centrality <= 1, "in [0, 1]"),
                ("rescan", self.rescan, self.rescan >= 0, ">= 0"),
                ("mouth_fps", self.mouth_fps, 0 < self.mouth_fps <= 60, "in (0, 60]"),
                ("follow_fps", self.follow_fps, 0 < self.follow_fps <= 60, "in (0, 60]"),
                ("track_rescan", self.track_rescan, self.track_rescan >= 0, ">= 0"),
                ("min_shot", self.min_shot, self.min_shot >= 0, ">= 0"),
            )
            if not ok
        ]
        if problems:
            raise ReframeError("bad reframe settings: " + "; ".join(problems))


@dataclass(frozen=True)
class Sample:
    """Faces found at ``time`` seconds from the start of the analysed range."""

    time: float
    faces: tuple[Face, ...]


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyse` saw: picture size, face samples, and scene-cut times (seconds).

    The picture is the content box inside any black bars; face boxes are in its pixels.
    With mouths, every face has a ``track`` and a ``mouth`` openness, and ``loudness``
    is the audio's level (None without audio, or without mouths).
    """

    width: int
    height: int
    samples: tuple[Sample, ...]
    cuts: tuple[float, ...]
    loudness: Loudness | None = None


def _signature(frame: av.VideoFrame) -> NDArray[np.float32]:
    """Luma block means on an 18x32 grid: blind to grain and small motion, not to a cut."""
    if frame.format.name not in _EIGHT_BIT_LUMA_FIRST or frame.width < 128 or frame.height < 72:
        frame = frame.reformat(width=128, height=72, format="yuv420p")  # e.g. 10-bit sources
    plane = frame.planes[0]
    data = np.frombuffer(memoryview(plane), np.uint8, count=plane.line_size * frame.height)
    luma = data.reshape(frame.height, plane.line_size)[:, : frame.width]
    step = max(1, min(luma.shape[0] // 72, luma.shape[1] // 128))
    small = luma[::step, ::step]
    rows, cols, counts = _blocks(*small.shape)
    sums = np.add.reduceat(np.add.reduceat(small, rows, axis=0, dtype=np.uint32), cols, axis=1)
    return np.asarray(sums / counts, np.float32)


@functools.cache
def _blocks(height: int, width: int) -> tuple[NDArray[np.intp], NDArray[np.intp], Floats]:
    """First row and column of each signature block of a ``height`` x ``width`` picture,
    and each block's pixel count."""
    rows = np.linspace(0, height, _SIG_ROWS + 1).astype(np.intp)
    cols = np.linspace(0, width, _SIG_COLS + 1).astype(np.intp)
    return rows[:-1], cols[:-1], np.outer(np.diff(rows), np.diff(cols)).astype(np.float64)


def _picture(frame: av.VideoFrame, content: Window | None) -> av.VideoFrame:
    """The part of ``frame`` inside ``content`` as a new frame (``frame`` itself for None)."""
    if content is None:
        return frame
    planes = decoded_planes(frame).crop(content.x, content.y, content.width, content.height)
    return planes_to_frame(planes)


class _Scanner:
    """Face mode's sampler: whole-frame scans every ``rescan`` seconds; in between, the
    followed face is re-detected only near where it was (a full scan when it is lost)."""

    def __init__(self, detector: FaceDetector, settings: ReframeSettings) -> None:
        self._detector = detector
        self._settings = settings
        self._tracked: Face | None = None
        self._last_scan = -math.inf

    def reset(self) -> None:
        """Forget the followed face (after a scene cut)."""
        self._tracked = None

    def update(self, time: float, frame: av.VideoFrame) -> tuple[Face, ...]:
        """The faces found at ``time`` seconds in ``frame``."""
        faces: list[Face] = []
        if self._tracked is not None and time - self._last_scan < self._settings.rescan:
            faces = self._detector.detect(frame, near=self._tracked)
        if not faces:
            self._last_scan = time
            faces = self._detector.detect(frame)
        previous_x = math.nan if self._tracked is None else self._tracked.center_x / frame.width
        self._tracked = _best(faces, frame.width, previous_x, self._settings)
        return tuple(faces)


def default_detector() -> FaceDetector:
    """BlazeFace when LiteRT is installed, else OpenCV's Haar cascade (logged).

    Raises
    ------
    ReframeError
        Neither ``ai-edge-litert`` nor OpenCV 4.x is installed.
    """
    if litert_available():
        return BlazeFaceDetector()
    log.warning("ai-edge-litert is not installed: using OpenCV's Haar cascade to find faces")
    return HaarFaceDetector()


def analyse(
    path: str | os.PathLike[str],
    *,
    settings: ReframeSettings | None = None,
    detector: FaceDetector | None = None,
    start: float = 0.0,
    end: float | None = None,
    content: Window | None = None,
    mouths: bool = False,
) -> Analysis:
    """Detect faces a few times a second and find scene cuts in ``[start, end)`` of a video.

    Times are seconds from the video stream's first timestamp; the returned times are
    relative to ``start``. ``detector`` defaults to :func:`default_detector`.
    ``content``: the picture inside black bars (frame pixels; None: the whole frame); only
    it is analysed, and faces are in its pixels. ``mouths``: follow every face with the
    face mesh ``mouth_fps`` times a second (tracks and mouth openness, needs LiteRT) and
    measure the audio's loudness, for :func:`klipmedia.shots.plan_shots`.

    Examples
    --------
    >>> analysis = analyse("talk.mp4", mouths=True)  # doctest: +SKIP
    >>> [(f.track, round(f.mouth, 2)) for f in analysis.samples[30].faces]  # doctest: +SKIP
    [(0, 0.04), (1, 0.31)]
    """
    settings = settings or ReframeSettings()
    if start < 0 or (end is not None and end <= start):
        raise ReframeError(f"bad range: start={start}, end={end}")
    source = Path(path)
    container, stream = open_video(source)
    detector = detector or default_detector()
    level: Loudness | None = None
    wanted: Flags | None = None
    recent: RecentSpeaker | None = None
    follower: FaceTracker | _Scanner
    if mouths:
        follow = 1.0 / settings.follow_fps
        follower = FaceTracker(detector, FaceMesh(), settings.track_rescan, follow)
        level, wanted = _speech(source, stream, start, end, settings.speaker)
        if level is not None:
            recent = RecentSpeaker(level, settings.mouth_fps, settings.speaker)
    else:
        follower = _Scanner(detector, settings)
    interval = 1.0 / (settings.mouth_fps if mouths else settings.sample_fps)
    samples: list[Sample] = []
    cuts: list[float] = []
    size: tuple[int, int] | None = None
    with container:
        skipping = _fast_decoding(stream, settings.skip_non_reference)
        origin = stream.start_time or 0
        time_base = stream.time_base or Fraction(1, 90000)
        if start > 0:
            container.seek(origin + math.floor(start / time_base), stream=stream)
        next_sample = start
        previous: NDArray[np.float32] | None = None
        last = -math.inf
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float((frame.pts - origin) * time_base)
                if skipping and mouths and t - last > interval * 1.01 and last > -math.inf:
                    log.debug("%s: frames %.3f s apart: decoding every frame", source, t - last)
                    stream.codec_context.skip_frame = "DEFAULT"
                    skipping = False
                last = t
                if t < start:
                    continue
                if end is not None and t >= end:
                    break
                picture = _picture(frame, content)
                size = size or (picture.width, picture.height)
                signature = _signature(picture)
                if previous is not None and (
                    float(np.abs(signature - previous).mean()) > settings.cut_threshold
                ):
                    cuts.append(t - start)
                    next_sample = t
                    follower.reset()
                previous = signature
                if t < next_sample:
                    continue
                if isinstance(follower, FaceTracker):
                    resting = () if recent is None else recent.resting()
                    faces = follower.update(t, picture, _flag_at(wanted, t - start), resting)
                    if recent is not None:
                        recent.add(t - start, faces)
                else:
                    faces = follower.update(t, picture)
                samples.append(Sample(t - start, faces))
                while next_sample <= t:
                    next_sample += interval
        except av.FFmpegError as exc:
            raise UnreadableMediaError(f"{source}: decoding failed ({exc})") from exc
    if size is None:
        raise ReframeError(f"{source}: no video frames between {start} s and {end} s")
    found = sum(1 for s in samples if s.faces)
    log.debug("%s: faces in %d of %d samples, %d cuts", source, found, len(samples), len(cuts))
    return Analysis(size[0], size[1], tuple(samples), tuple(cuts), level)


def _fast_decoding(stream: av.video.stream.VideoStream, skip_non_reference: bool) -> bool:
    """Make ``stream``'s decoder cheap for analysis; whether it skips non-reference frames.

    One decoding thread (frame threads cost about a fifth more CPU time for no wall time
    on 2 cores: the models, not the decoder, set the pace). The deblocking filter is
    skipped (the models do not mind a little blocking), and with ``skip_non_reference``
    so are the frames that no other frame refers to.
    """
    stream.thread_count = 1
    stream.codec_context.options = {"skip_loop_filter": "all"}
    if skip_non_reference:
        stream.codec_context.skip_frame = "NONREF"
    return skip_non_reference


def _speech(
    source: Path,
    stream: av.video.stream.VideoStream,
    start: float,
    end: float | None,
    settings: SpeakerSettings,
) -> tuple[Loudness | None, Flags | None]:
    """The loudness of ``[start, end)`` (seconds from the video's first timestamp) and
    where mouths are wanted: within half a speaker window of speech (None: no audio)."""
    first = float((stream.start_time or 0) * (stream.time_base or Fraction(1, 90000)))
    level = loudness(source, start=first + start, end=None if end is None else first + end)
    if level is None:
        return None, None
    return level, speech_near(level, settings.window / 2, settings)


def _flag_at(flags: Flags | None, t: float) -> bool:
    """``flags`` (one every :data:`~klipmedia.speaker.HOP`) at ``t`` seconds; False for None
    or past the end."""
    if flags is None:
        return False
    index = round(t / HOP)
    return bool(flags[index]) if 0 <= index < len(flags) else False


def _window(seconds: float, fps: float) -> int:
    """An odd number of samples covering about ``seconds``."""
    return 2 * round(seconds * fps / 2) + 1


def _sliding(values: Floats, size: int) -> NDArray[np.float64]:
    pad = size // 2
    padded = np.pad(values, pad, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, size)


def _rank(face: Face, frame_width: int, previous: float, settings: ReframeSettings) -> float:
    """Larger and more central is better; a face near the previous choice gets a boost."""
    cx = face.center_x / frame_width
    score = face.area * (1.0 - settings.centrality * min(abs(cx - 0.5) * 2, 1.0))
    return score * _STICKY_BOOST if abs(cx - previous) < _STICKY_RADIUS else score


def _best(
    faces: Sequence[Face], frame_width: int, previous: float, settings: ReframeSettings
) -> Face | None:
    """The face to follow, or None; ``previous`` is the last choice's centre (NaN: none)."""
    if not faces:
        return None
    return max(faces, key=lambda face: _rank(face, frame_width, previous, settings))


def prominent_faces(
    samples: Sequence[Sample], frame_width: int, settings: ReframeSettings | None = None
) -> Floats:
    """Centre (fraction of the width) of the face face mode follows at each sample (NaN: none).

    The largest and most central face wins; one near the previous choice gets a boost.
    """
    settings = settings or ReframeSettings()
    targets = np.full(len(samples), math.nan)
    previous = math.nan
    for i, sample in enumerate(samples):
        best = _best(sample.faces, frame_width, previous, settings)
        if best is not None:
            targets[i] = previous = best.center_x / frame_width
    return targets


def fill_gaps(times: Floats, targets: Floats, hold: float, default: Floats | float = 0.5) -> Floats:
    """Hold the nearest detection through gaps up to ``hold`` seconds; ``default`` beyond.

    ``targets`` has NaN where nothing was found; ``default`` is one value or one per sample.
    """
    found = ~np.isnan(targets)
    fallback = np.broadcast_to(np.asarray(default, np.float64), targets.shape)
    if not found.any():
        return fallback.copy()
    seen_times, seen = times[found], targets[found]
    filled = targets.copy()
    for i in np.flatnonzero(~found):
        nearest = int(np.argmin(np.abs(seen_times - times[i])))
        close = abs(seen_times[nearest] - times[i]) <= hold
        filled[i] = seen[nearest] if close else fallback[i]
    return filled


def _dead_zone(values: Floats, zone: float) -> Floats:
    """Move only when the value leaves ``±zone`` around the current position (a leash)."""
    out = values.copy()
    for i in range(1, len(values)):
        offset = values[i] - out[i - 1]
        out[i] = out[i - 1] if abs(offset) <= zone else values[i] - math.copysign(zone, offset)
    return out


def _rate_limit(times: Floats, values: Floats, speed: float) -> Floats:
    out = values.copy()
    for i in range(1, len(values)):
        step = speed * (times[i] - times[i - 1])
        out[i] = min(max(values[i], out[i - 1] - step), out[i - 1] + step)
    return out


def follow(times: Floats, targets: Floats, half: float, settings: ReframeSettings) -> Floats:
    """Window centres that follow ``targets`` (fractions of the width, no NaN) smoothly.

    The targets are median-filtered, held inside the dead zone, averaged and pan-speed
    limited; centres stay at least ``half`` (half the window's width) from either edge.
    """
    span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else settings.sample_fps
    median = np.median(_sliding(targets, _window(settings.median, rate)), axis=-1)
    held = _dead_zone(np.clip(median, half, 1.0 - half), settings.dead_zone)
    smooth = _sliding(held, _window(settings.smoothing, rate)).mean(axis=-1)
    return np.clip(_rate_limit(times, smooth, settings.max_pan_speed), half, 1.0 - half)


def _shot_track(
    samples: Sequence[Sample], frame_width: int, half: float, settings: ReframeSettings
) -> Floats:
    """Window centres for the samples of one shot."""
    times = np.array([s.time for s in samples])
    targets = prominent_faces(samples, frame_width, settings)
    if np.isnan(targets).all():
        return np.full(len(samples), 0.5)
    return follow(times, fill_gaps(times, targets, settings.hold), half, settings)


def shots_between_cuts(
    samples: Sequence[Sample], cuts: Sequence[float]
) -> list[tuple[float, list[Sample]]]:
    """Samples grouped by scene (between cuts), each with its start time (0 for the first)."""
    bounds = [0.0, *sorted(cuts)]
    shots: list[tuple[float, list[Sample]]] = [(b, []) for b in bounds]
    index = 0
    for sample in samples:
        while index + 1 < len(bounds) and sample.time >= bounds[index + 1]:
            index += 1
        shots[index][1].append(sample)
    return [(begin, group) for begin, group in shots if group]


def plan_path(
    analysis: Analysis, *, aspect: Fraction, settings: ReframeSettings | None = None
) -> CropPath:
    """Turn an :class:`Analysis` into a smooth crop path for windows of ``aspect`` (w/h).

    The window holds still while the face stays within the dead zone, pans at most
    ``max_pan_speed`` and jumps only at scene cuts; it stays wholly inside the picture.
    """
    settings = settings or ReframeSettings()
    win_width, _ = window_size(analysis.width, analysis.height, aspect)
    half = win_width / analysis.width / 2
    if half >= 0.5 or not analysis.samples:
        return CropPath.center()
    times: list[float] = []
    centers: list[float] = []
    for begin, shot in shots_between_cuts(analysis.samples, analysis.cuts):
        track = [float(c) for c in _shot_track(shot, analysis.width, half, settings)]
        if times and begin > times[-1]:
            times.append(begin)  # hold the last shot's position up to the cut
            centers.append(centers[-1])
        if times and shot[0].time > begin:
            times.append(begin)  # jump at the cut itself, not at the shot's first sample
            centers.append(track[0])
        times.extend(s.time for s in shot)
        centers.extend(track)
    return CropPath(tuple(times), tuple(centers))


def face_path(
    path: str | os.PathLike[str],
    *,
    aspect: Fraction,
    settings: ReframeSettings | None = None,
    detector: FaceDetector | None = None,
    start: float = 0.0,
    end: float | None = None,
    content: Content = "detect",
) -> CropPath:
    """Speaker-following crop path for ``[start, end)`` of a video (times relative to start).

    Faces are looked for in the picture inside any black bars (``content``: "detect",
    "frame" or a known box, as for :func:`~klipmedia.render.render_short`); the path's
    centres are fractions of that picture's width.

    Examples
    --------
    >>> face_path("talk.mp4", aspect=Fraction(9, 16), start=60.0, end=90.0)  # doctest: +SKIP
    CropPath(times=(0.0, 0.33, ...), centers=(0.41, 0.41, ...))
    """
    settings = settings or ReframeSettings()
    info = probe(path)
    if info.rotation:
        log.warning(
            "%s carries %d-degree rotation metadata; face following is not supported "
            "for rotated sources yet, using the centre crop",
            path,
            info.rotation,
        )
        return CropPath.center()
    box = resolve_content(info, content, start=start, end=end)
    if window_size(box.width, box.height, aspect)[0] >= box.width:
        return CropPath.center()  # the window spans the whole picture: nothing to follow
    whole = box == frame_box(info.width, info.height)
    analysis = analyse(
        path,
        settings=settings,
        detector=detector,
        start=start,
        end=end,
        content=None if whole else box,
    )
    return plan_path(analysis, aspect=aspect, settings=settings)
