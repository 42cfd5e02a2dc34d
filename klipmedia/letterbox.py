"""Black bars baked into the picture (letterbox, pillarbox): find the picture inside them.

:func:`detect_content` decodes up to ten keyframes spread over a clip (seeking to each)
and measures the luma of each row and column. A bar is a run of rows or columns from an
edge of the frame that are near-black (mean luma <= 24, black being 16) and flat
(standard deviation <= 5) in every sampled frame that shows anything; it must be at
least 1 % of the frame and end at a clear edge of the picture (a line within that
distance reaching mean luma 32 in some sample). Bars come in pairs: one more than twice
as long as the bar on the opposite edge is cut to that one's length.

What is left is the content box, in upright (display) pixels, with even values: the
whole frame when there are no bars, when fewer than three samples show anything, or
when the box would be under a quarter of the frame either way.

Examples
--------
>>> detect_content("talk_4x3_in_16x9.mp4")  # doctest: +SKIP
Window(x=240, y=0, width=1440, height=1080)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Literal

import av
import av.container
import numpy as np
import numpy.typing as npt

from klipmedia.crop import Window
from klipmedia.errors import KlipmediaError, UnreadableMediaError
from klipmedia.frames import Plane, decoded_planes, open_video
from klipmedia.probe import MediaInfo, probe

log = logging.getLogger(__name__)

Content = Window | Literal["detect", "frame"]
"""Where the picture is: "detect" finds it (:func:`detect_content`), "frame" takes the
whole frame, and a :class:`~klipmedia.crop.Window` (upright pixels) gives it."""

SAMPLES = 10
"""Frames sampled per clip."""

_DARK_MEAN = 24.0
"""Mean luma (limited range, black is 16) up to which a row or column is near-black."""
_DARK_STD = 5.0
"""Luma standard deviation up to which a near-black row or column is flat (noise, not detail)."""
_EDGE = 32.0
"""Mean luma that a row or column just inside a bar reaches in some sample: the picture's edge."""
_MIN_BAR = 0.01
"""Bars thinner than this fraction of the frame are ignored (dark edges, scaler borders)."""
_PAIRED = 0.5
"""Opposite bars at least this fraction of each other are taken as found; otherwise the
longer is cut to the shorter: a dark band along one edge only is part of the picture (a
dark stage, a black sky)."""
_MIN_SHOWING = 3
"""Samples that must show something (not all black) before bars are believed."""
_MIN_PICTURE = 0.25
"""A picture narrower or shorter than this fraction of the frame is not believed: more
likely a lit detail of a dark scene than a picture between bars."""
_SEEK_GAP = 2.0
"""Seconds ahead (about a keyframe interval) beyond which the next sample is sought, not
decoded to (when keyframes are too few to sample)."""
_LINE_PIXELS = 360
"""About this many pixels of each row or column are measured."""

Floats = npt.NDArray[np.float32]
Flags = npt.NDArray[np.bool_]
Line = tuple[Flags, Floats]
"""Rows (or columns) of one frame: whether each is near-black and flat, and its mean luma."""


def frame_box(width: int, height: int) -> Window:
    """The whole frame as a content box (even values)."""
    return Window(0, 0, width // 2 * 2, height // 2 * 2)


def detect_content(
    path: str | os.PathLike[str],
    *,
    start: float = 0.0,
    end: float | None = None,
    samples: int = SAMPLES,
) -> Window:
    """The picture inside any black bars of ``[start, end)`` of a video (seconds).

    Returns the content box in upright pixels: the whole frame when there are no bars,
    or when the sampled frames show too little to tell (a black or nearly black clip).

    Examples
    --------
    >>> detect_content("film_2.39_in_16x9.mp4")  # doctest: +SKIP
    Window(x=0, y=138, width=1920, height=804)
    """
    return _detect(probe(path), start, end, samples)


def resolve_content(
    info: MediaInfo, content: Content, *, start: float = 0.0, end: float | None = None
) -> Window:
    """The content box that ``content`` names for the probed video (see :data:`Content`).

    Raises
    ------
    KlipmediaError
        A given box is not even or not inside the upright frame.
    """
    frame = frame_box(info.display_width, info.display_height)
    if isinstance(content, Window):
        if not _fits(content, frame):
            raise KlipmediaError(
                f"content box {content} must be even, at least 2x2 and inside "
                f"the {frame.width}x{frame.height} picture"
            )
        return content
    if content == "frame":
        return frame
    if content != "detect":
        raise KlipmediaError(f"content must be a Window, 'detect' or 'frame', not {content!r}")
    return _detect(info, start, end, SAMPLES)


def _fits(box: Window, frame: Window) -> bool:
    """Whether ``box`` has even values, is at least 2x2 and lies inside ``frame``."""
    values = (box.x, box.y, box.width, box.height)
    return (
        all(v % 2 == 0 and v >= 0 for v in values)
        and min(box.width, box.height) >= 2
        and box.x + box.width <= frame.width
        and box.y + box.height <= frame.height
    )


def _detect(info: MediaInfo, start: float, end: float | None, samples: int) -> Window:
    """The content box of ``[start, end)`` of the probed video, from ``samples`` frames."""
    frame = frame_box(info.display_width, info.display_height)
    if samples < 1 or (end is not None and end <= start):
        raise KlipmediaError(f"bad detection range or samples: {start}-{end} s, {samples}")
    rows: list[Line] = []
    cols: list[Line] = []
    for luma in _sampled_lumas(info, start, end, samples):
        row = _measure(luma[:, :: max(1, luma.shape[1] // _LINE_PIXELS)])
        col = _measure(luma[:: max(1, luma.shape[0] // _LINE_PIXELS)].T)
        if not (row[0].all() and col[0].all()):  # a black frame cannot tell bars from picture
            rows.append(row)
            cols.append(col)
    if len(rows) < _MIN_SHOWING:
        log.debug("%s: %d sampled frames show something; no bars assumed", info.path, len(rows))
        return frame
    top, bottom = _bars(rows)
    left, right = _bars(cols)
    x, y = _ceil_even(left), _ceil_even(top)
    box = Window(
        x, y, (info.display_width - right) // 2 * 2 - x, (info.display_height - bottom) // 2 * 2 - y
    )
    if box.width < frame.width * _MIN_PICTURE or box.height < frame.height * _MIN_PICTURE:
        log.debug("%s: %s is too small for a picture between bars; none assumed", info.path, box)
        return frame
    log.debug("%s: content %s of %dx%d", info.path, box, info.display_width, info.display_height)
    return box


def _sampled_lumas(
    info: MediaInfo, start: float, end: float | None, samples: int
) -> Iterator[Plane]:
    """Upright luma planes (limited range) of frames spread over ``[start, end)``: the
    keyframes before the middles of ``samples`` equal slots, or, where keyframes are too
    sparse for that (fewer than three), the first frame of each slot."""
    slot = ((info.duration if end is None else end) - start) / samples
    try:
        frames = _frames(info, _keyframes, start, slot, samples)
        if len(frames) < _MIN_SHOWING:
            frames = _frames(info, _slot_frames, start, slot, samples)
    except av.FFmpegError as exc:
        raise UnreadableMediaError(f"{info.path}: decoding failed ({exc})") from exc
    for frame in frames:
        yield decoded_planes(frame).rotated(info.rotation).y


Sampler = Callable[
    [av.container.InputContainer, av.video.stream.VideoStream, float, float, int],
    Iterator[av.VideoFrame],
]


def _frames(
    info: MediaInfo, sampler: Sampler, start: float, slot: float, samples: int
) -> list[av.VideoFrame]:
    """What ``sampler`` picks from a freshly opened video."""
    container, stream = open_video(info.path)
    with container:
        return list(sampler(container, stream, start, slot, samples))


def _keyframes(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    start: float,
    slot: float,
    count: int,
) -> Iterator[av.VideoFrame]:
    """The keyframe at or before the middle of each of ``count`` slots from ``start``
    (seconds from the stream's first timestamp), each keyframe once.

    A seek lands on a keyframe, and its picture comes out after a packet or two (so no
    frame threads, and no skipping of the frames after it, which the decoder waits for):
    about one picture per sample whatever the keyframe interval. Slots sharing a
    keyframe give one sample.
    """
    stream.thread_type = "SLICE"  # frame threads hold a picture back for those after it
    origin = stream.start_time or 0
    time_base = stream.time_base or Fraction(1, 90000)
    last: int | None = None
    for index in range(count):
        middle = start + (index + 0.5) * slot
        container.seek(origin + math.floor(middle / time_base), stream=stream)
        frame = next((f for f in container.decode(stream) if f.pts is not None), None)
        if frame is not None and frame.pts != last:
            last = frame.pts
            yield frame


def _slot_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    start: float,
    slot: float,
    count: int,
) -> Iterator[av.VideoFrame]:
    """The first frame at or after the start of each of ``count`` slots from ``start``
    (seconds from the stream's first timestamp); non-reference frames are skipped.

    A slot more than :data:`_SEEK_GAP` ahead is sought (from the keyframe before its
    middle); a nearer one is decoded to. Once a seek lands no further than decoding had
    got, keyframes are too sparse to gain anything and decoding just carries on: the cost
    is at most about a keyframe interval per slot, or one pass over the reference frames.
    """
    stream.codec_context.skip_frame = "NONREF"
    origin = stream.start_time or 0
    time_base = stream.time_base or Fraction(1, 90000)
    frames: Iterator[av.VideoFrame] = iter(())
    last, seeking = -math.inf, True
    for index in range(count):
        begin = start + index * slot
        before: float | None = None
        if seeking and begin + slot / 2 - last > _SEEK_GAP:
            container.seek(origin + math.floor((begin + slot / 2) / time_base), stream=stream)
            frames, before = container.decode(stream), last
        for frame in frames:
            if frame.pts is None:
                continue
            t = float((frame.pts - origin) * time_base)
            if before is not None:
                seeking, before = t > before, None
            last = t
            if t >= begin:
                yield frame
                break


def _measure(lines: Plane) -> Line:
    """For each row of ``lines``: whether it is near-black and flat, and its mean luma."""
    values = lines.astype(np.float32)
    mean = values.mean(axis=1)
    dark = (mean <= _DARK_MEAN) & (values.std(axis=1) <= _DARK_STD)
    return dark, mean


def _bars(samples: list[Line]) -> tuple[int, int]:
    """Length of the bar at the start and at the end of one axis (0: none), from the
    lines of every sample that shows something."""
    dark = np.logical_and.reduce([dark for dark, _ in samples])
    peak = np.maximum.reduce([mean for _, mean in samples])
    first, last = _bar(dark, peak), _bar(dark[::-1], peak[::-1])
    if min(first, last) < max(first, last) * _PAIRED:
        return min(first, last), min(first, last)
    return first, last


def _bar(dark: Flags, peak: Floats) -> int:
    """Length of the bar at the start of ``dark``: the run of dark lines from the edge.

    No bar when the run is under :data:`_MIN_BAR` of the axis, or when the picture does
    not start sharply after it (no line within that distance reaches :data:`_EDGE` in
    any sample): a dark scene fading into the edge is not a bar.
    """
    length = int(np.argmin(dark)) if not dark.all() else len(dark)
    reach = max(2, math.ceil(len(dark) * _MIN_BAR))
    edge = peak[length : length + reach]
    if length < len(dark) * _MIN_BAR or edge.size == 0 or float(edge.max()) < _EDGE:
        return 0
    return length


def _ceil_even(value: int) -> int:
    return (value + 1) // 2 * 2
