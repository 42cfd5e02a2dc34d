"""Crop windows: the largest window of a target aspect ratio, placed by a path over time."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction

from klipmedia.errors import KlipmediaError


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
    are the window centre as a fraction of the source width (0 = left edge,
    1 = right edge). Between samples the centre is interpolated linearly; two
    samples at the same time make a hard cut. Before the first sample and after
    the last one the centre holds still. A face tracker produces one of these;
    :meth:`center` gives the fixed centred path.

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
        """A path that stays at ``center`` (fraction of the source width)."""
        return cls((0.0,), (center,))

    def center_at(self, t: float) -> float:
        """The window centre at ``t`` seconds, as a fraction of the source width."""
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


def window_size(src_width: int, src_height: int, aspect: Fraction) -> tuple[int, int]:
    """The largest even-sized window of ``aspect`` (width/height) that fits the source."""
    if src_width < 2 or src_height < 2:
        raise KlipmediaError(f"source {src_width}x{src_height} is too small to crop")
    width = _floor_even(src_height * aspect)
    if width <= src_width:
        return max(width, 2), _floor_even(src_height)
    return _floor_even(src_width), max(_floor_even(src_width / aspect), 2)


def place_window(src_width: int, src_height: int, size: tuple[int, int], center: float) -> Window:
    """Place a window of ``size`` with its centre at ``center`` (fraction of the width).

    The window is clamped inside the frame and vertically centred.
    """
    width, height = size
    x = round(center * src_width - width / 2)
    x = _floor_even(min(max(x, 0), src_width - width))
    y = _floor_even((src_height - height) / 2)
    return Window(x, y, width, height)
