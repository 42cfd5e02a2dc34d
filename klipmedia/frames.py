"""Decoding: frames as YUV 4:2:0 planes in the output's colour, constant-rate resampling,
looping backgrounds."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import numpy as np
import numpy.typing as npt
from av.video.reformatter import Interpolation

from klipmedia.colour import OUTPUT, Colour, colour_of, tag_output
from klipmedia.errors import NoVideoStreamError, UnreadableMediaError
from klipmedia.probe import open_media
from klipmedia.timing import frame_count

log = logging.getLogger(__name__)

Plane = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Planes:
    """One picture as 4:2:0 planes (``y`` full size, ``u``/``v`` half size).

    The arrays may be views into a decoded frame; copy before keeping them.
    """

    y: Plane
    u: Plane
    v: Plane

    @property
    def width(self) -> int:
        """Luma width in pixels."""
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        """Luma height in pixels."""
        return int(self.y.shape[0])

    def rotated(self, degrees: int) -> Planes:
        """The picture turned counter-clockwise by ``degrees`` (a multiple of 90)."""
        k = (degrees // 90) % 4
        if k == 0:
            return self
        return Planes(np.rot90(self.y, k), np.rot90(self.u, k), np.rot90(self.v, k))

    def crop(self, x: int, y: int, width: int, height: int) -> Planes:
        """A view of the even-aligned rectangle (no copy)."""
        cx, cy, cw, ch = x // 2, y // 2, width // 2, height // 2
        return Planes(
            self.y[y : y + height, x : x + width],
            self.u[cy : cy + ch, cx : cx + cw],
            self.v[cy : cy + ch, cx : cx + cw],
        )


def plane_view(frame: av.VideoFrame, index: int) -> Plane:
    """A writable numpy view of one plane of ``frame``, without line padding."""
    plane = frame.planes[index]
    rows: Plane = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(
        plane.height, plane.line_size
    )
    return rows[:, : plane.width]


def frame_planes(frame: av.VideoFrame) -> Planes:
    """Views of the planes of a yuv420p frame, its values as they are."""
    return Planes(plane_view(frame, 0), plane_view(frame, 1), plane_view(frame, 2))


_MATRIX_CHANGE = (
    Interpolation.BILINEAR
    | Interpolation.ACCURATE_RND
    | Interpolation.FULL_CHR_H_INT
    | Interpolation.FULL_CHR_H_INP
)
"""Flags for a change of matrix, which libswscale makes through RGB: without them,
luma comes out up to 2.6 levels dark (grey too); with them, within rounding."""


def decoded_planes(frame: av.VideoFrame) -> Planes:
    """The planes of a decoded frame in the output's colour: 8-bit 4:2:0, limited BT.709.

    A frame already in it (the common case) is only viewed; any other (full range,
    BT.601, 10-bit, other subsampling or RGB) is converted by a reused scaler.
    """
    colour = colour_of(frame)
    if frame.format.name != "yuv420p" or colour != OUTPUT:
        exact = _MATRIX_CHANGE if colour.matrix != OUTPUT.matrix else None
        frame = reformat(frame, frame.width, frame.height, interpolation=exact, source=colour)
    return frame_planes(frame)


_SCALERS_PER_THREAD = 8
_scalers = threading.local()


def reformat(
    frame: av.VideoFrame,
    width: int,
    height: int,
    format: str = "yuv420p",
    interpolation: Interpolation | None = None,
    source: Colour | None = None,
) -> av.VideoFrame:
    """``frame`` scaled to ``width`` x ``height`` in ``format``, by a reused scaler.

    ``source``: the frame's colour, converted to the output's (limited BT.709);
    None keeps the values as they are.

    ``VideoFrame.reformat`` builds a new libswscale context on every call, which
    costs more than the scaling itself; contexts are kept here per thread (they
    are not thread-safe) and per geometry and colour.
    """
    cache: OrderedDict[tuple[object, ...], av.video.reformatter.VideoReformatter]
    cache = getattr(_scalers, "cache", None) or OrderedDict()
    _scalers.cache = cache
    key = (
        frame.width,
        frame.height,
        frame.format.name,
        width,
        height,
        format,
        interpolation,
        source,
    )
    scaler = cache.pop(key, None) or av.video.reformatter.VideoReformatter()
    cache[key] = scaler
    if len(cache) > _SCALERS_PER_THREAD:
        cache.popitem(last=False)
    if source is None:
        return scaler.reformat(
            frame, width=width, height=height, format=format, interpolation=interpolation
        )
    return scaler.reformat(
        frame,
        width=width,
        height=height,
        format=format,
        interpolation=interpolation,
        src_colorspace=source.matrix,
        dst_colorspace=OUTPUT.matrix,
        src_color_range=source.range,
        dst_color_range=OUTPUT.range,
    )


def planes_to_frame(planes: Planes) -> av.VideoFrame:
    """Copy planes (even width and height) into a new yuv420p frame tagged limited BT.709."""
    frame = av.VideoFrame(planes.width, planes.height, "yuv420p")
    tag_output(frame)
    for index, src in enumerate((planes.y, planes.u, planes.v)):
        plane_view(frame, index)[...] = src
    return frame


def open_video(path: str | Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and its first video stream with threaded decoding."""
    container = open_media(path)
    if not container.streams.video:
        container.close()
        raise NoVideoStreamError(f"{path}: the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def timed_frames(path: str | Path) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decode every frame of the first video stream with its time in seconds.

    Times are relative to the first frame, so the clip starts at 0.
    """
    container, stream = open_video(path)
    with container:
        start: float | None = None
        try:
            for frame in container.decode(stream):
                time: float | None = frame.time
                if time is None:
                    continue
                if start is None:
                    start = time
                yield time - start, frame
        except av.FFmpegError as exc:
            raise UnreadableMediaError(f"{path}: decoding failed ({exc})") from exc


def constant_rate(
    frames: Iterator[tuple[float, av.VideoFrame]], fps: Fraction, count: int
) -> Iterator[av.VideoFrame]:
    """Resample timed frames to ``count`` frames at ``fps`` (hold or drop as needed).

    Output frame ``i`` is the latest input frame shown at ``i / fps``; this turns
    variable-rate input into constant-rate output without drift. When input ends
    early, the last frame is held.
    """
    half_tick = 0.5 / float(fps)
    current: av.VideoFrame | None = None
    pending = next(frames, None)
    for index in range(count):
        t = index / fps
        while pending is not None and pending[0] <= t + half_tick:
            current = pending[1]
            pending = next(frames, None)
        if current is None:
            raise UnreadableMediaError("the video stream holds no decodable frame")
        yield current


def looped_frames(path: str | Path, duration: float, fps: Fraction) -> Iterator[av.VideoFrame]:
    """Frames of a clip of ``duration`` seconds at ``fps``, forever: it restarts when it ends."""
    count = frame_count(duration, fps)
    while True:
        yield from constant_rate(timed_frames(path), fps, count)
