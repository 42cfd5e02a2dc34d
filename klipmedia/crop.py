"""Crop windows: the largest window of a target aspect ratio, placed by a path over time."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from fractions import Fraction

from klipmedia.errors import KlipmediaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """A crop rectangle in source pixels; all four values are even."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class CropPath:
    """Horizontal centre of the crop window over time.

    ``times`` are seconds from the start of the clip, non-decreasing; ``centers``
    are the window centre as a fraction of the picture's width (0 = left edge,
    1 = right edge), the picture being the content box inside any black bars (see
    :mod:`klipmedia.letterbox`), else the whole source. Between samples the centre
    is interpolated linearly; two samples at the same time make a hard cut. Before
    the first sample and after the last one the centre holds still. A face tracker
    produces one of these; :meth:`center` gives the fixed centred path.

    Examples
    --------
    >>> CropPath.center().center_at(3.0)
    0.5
    >>> CropPath((0.0, 2.0), (0.25, 0.75)).center_at(1.0)
    0.5
    """

    times: tuple[float, ...]
    centers: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.centers):
            raise KlipmediaError("a CropPath needs as many times as centres, at least one")
        if any(b < a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise KlipmediaError("CropPath times must be non-decreasing")
        if any(not 0.0 <= c <= 1.0 for c in self.centers):
            raise KlipmediaError("CropPath centres must lie in [0, 1]")

    @classmethod
    def center(cls) -> CropPath:
        """The fixed path through the middle of the frame."""
        return cls((0.0,), (0.5,))

    @classmethod
    def fixed(cls, center: float) -> CropPath:
        """A path that stays at ``center`` (fraction of the picture's width)."""
        return cls((0.0,), (center,))

    def center_at(self, t: float) -> float:
        """The window centre at ``t`` seconds, as a fraction of the picture's width."""
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.centers[0]
        if i == len(self.times):
            return self.centers[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        c0, c1 = self.centers[i - 1], self.centers[i]
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0)


def _floor_even(value: float | Fraction) -> int:
    """The largest even integer not above ``value`` (for non-negative values)."""
    return int(value) // 2 * 2


def window_size(
    src_width: int, src_height: int, aspect: Fraction, content: Window | None = None
) -> tuple[int, int]:
    """The largest even-sized window of ``aspect`` (width/height) that fits the picture.

    The picture is ``content``, the box inside black bars (default: the whole source).
    When the content is narrower than a window of its full height, and the source is wide
    enough, the window keeps that height and takes in side bars (it is then centred on the
    content, see :func:`place_window`); this is logged.

    Examples
    --------
    >>> window_size(1920, 1080, Fraction(9, 16))
    (606, 1080)
    >>> window_size(1920, 1080, Fraction(9, 16), Window(240, 0, 1440, 1080))
    (606, 1080)
    >>> window_size(1920, 1080, Fraction(9, 8), Window(656, 0, 608, 1080))
    (1214, 1080)
    """
    if content is None:
        return _fit(src_width, src_height, aspect)
    wide = _floor_even(content.height * aspect)
    if wide <= content.width or wide > src_width:
        return _fit(content.width, content.height, aspect)
    log.info(
        "the %dx%d picture is narrower than a %s window of its height: "
        "the %dx%d window is centred on it and takes in side bars",
        content.width,
        content.height,
        aspect,
        wide,
        content.height,
    )
    return wide, content.height


def _fit(width: int, height: int, aspect: Fraction) -> tuple[int, int]:
    """The largest even-sized window of ``aspect`` inside ``width`` x ``height``."""
    if width < 2 or height < 2:
        raise KlipmediaError(f"source {width}x{height} is too small to crop")
    fitted = _floor_even(height * aspect)
    if fitted <= width:
        return max(fitted, 2), _floor_even(height)
    return _floor_even(width), max(_floor_even(width / aspect), 2)


def place_window(
    src_width: int,
    src_height: int,
    size: tuple[int, int],
    center: float,
    content: Window | None = None,
) -> Window:
    """Place a window of ``size`` with its centre at ``center`` (fraction of the picture's width).

    The picture is ``content``, the box inside black bars (default: the whole source). The
    window is clamped inside it and vertically centred on it; a window wider than the
    content is centred on it, inside the source, whatever ``center`` says.
    """
    box = content or Window(0, 0, src_width, src_height)
    width, height = size
    if width > box.width:
        center, low, high = 0.5, 0, src_width - width
    else:
        low, high = box.x, box.x + box.width - width
    x = round(box.x + center * box.width - width / 2)
    x = _floor_even(min(max(x, low), high))
    y = box.y + _floor_even((box.height - height) / 2)
    return Window(x, y, width, height)
