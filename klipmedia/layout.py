"""Layouts of the vertical frame: stacked, full, blurred and split panels built from YUV planes."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import numpy as np

from klipmedia.crop import CropPath, Window, place_window, window_size
from klipmedia.errors import KlipmediaError
from klipmedia.frames import Planes, frame_planes, planes_to_frame, reformat

LayoutKind = Literal["stacked", "full", "blurred", "split"]
LAYOUT_KINDS: tuple[LayoutKind, ...] = ("stacked", "full", "blurred", "split")

_UPSCALE = av.video.reformatter.Interpolation.BICUBIC
_DOWNSCALE = av.video.reformatter.Interpolation.AREA  # the right filter, and half the cost
_SOFT = av.video.reformatter.Interpolation.BILINEAR
_BLUR_FACTOR = 12
_BLUR_DIM = 0.6


@dataclass(frozen=True)
class FramedPath(CropPath):
    """A crop path that also places the window vertically and zooms in: a person framed.

    ``rows``: the window's vertical centre as a fraction of the picture's height;
    ``scales``: the window's size as a fraction of the largest window of its aspect
    (1: full height). Both are given at ``times`` and interpolated like ``centers``.

    Examples
    --------
    >>> path = FramedPath((0.0,), (0.3,), rows=(0.4,), scales=(0.5,))
    >>> path.row_at(2.0), path.scale_at(2.0)
    (0.4, 0.5)
    """

    rows: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.rows) != len(self.times) or len(self.scales) != len(self.times):
            raise KlipmediaError("a FramedPath needs a row and a scale at each time")
        if any(not 0.0 <= r <= 1.0 for r in self.rows):
            raise KlipmediaError("FramedPath rows must lie in [0, 1]")
        if any(not 0.0 < z <= 1.0 for z in self.scales):
            raise KlipmediaError("FramedPath scales must lie in (0, 1]")

    def row_at(self, t: float) -> float:
        """The window's vertical centre at ``t``, as a fraction of the picture's height."""
        return CropPath(self.times, self.rows).center_at(t)

    def scale_at(self, t: float) -> float:
        """The window's size at ``t``, as a fraction of the largest window."""
        return CropPath(self.times, self.scales).center_at(t)


def panel_window(
    path: CropPath, t: float, src_width: int, src_height: int, size: tuple[int, int], box: Window
) -> Window:
    """The crop window of a panel at ``t`` seconds in a source of ``src_width`` x ``src_height``.

    ``size``: the largest window of the panel's aspect; ``box``: the picture inside any
    black bars. A plain :class:`~klipmedia.crop.CropPath` gives that window at full height
    (:func:`~klipmedia.crop.place_window`); a :class:`FramedPath` a smaller one centred on
    its row too, both clamped inside the picture.
    """
    if not isinstance(path, FramedPath) or size[0] > box.width:
        return place_window(src_width, src_height, size, path.center_at(t), box)
    scale = path.scale_at(t)
    width, height = _round_even(size[0] * scale), _round_even(size[1] * scale)
    x = round(box.x + path.center_at(t) * box.width - width / 2)
    y = round(box.y + path.row_at(t) * box.height - height / 2)
    x = min(max(x, box.x), box.x + box.width - width) // 2 * 2
    y = min(max(y, box.y), box.y + box.height - height) // 2 * 2
    return Window(x, y, width, height)


def _round_even(value: float) -> int:
    """The even integer nearest to ``value``, at least 2."""
    return max(2, round(value) // 2 * 2)


@dataclass(frozen=True)
class Layout:
    """How the vertical frame is filled.

    ``stacked``: the speaker crop on top (``split`` of the height), the
    background video below. ``full``: the crop fills the frame. ``blurred``: the
    whole source frame fit to the width over a blurred, zoomed copy of itself.
    ``split`` (the kind): two crops, each half the height, one person in each (two crop
    paths; the ``split`` share is not used).

    Examples
    --------
    >>> Layout("stacked", split=0.6).top_height
    1152
    >>> Layout("split").crop_aspect
    Fraction(9, 8)
    """

    kind: LayoutKind = "stacked"
    split: float = 0.5
    width: int = 1080
    height: int = 1920

    def __post_init__(self) -> None:
        if self.kind not in LAYOUT_KINDS:
            raise KlipmediaError(f"unknown layout {self.kind!r}; choose one of {LAYOUT_KINDS}")
        if not 0.1 <= self.split <= 0.9:
            raise KlipmediaError(f"layout split must be within [0.1, 0.9], got {self.split}")
        if self.width % 2 or self.height % 2 or self.width < 16 or self.height < 16:
            raise KlipmediaError(
                f"output size must be even and >= 16, got {self.width}x{self.height}"
            )

    @property
    def top_height(self) -> int:
        """Height of the speaker panel (the whole height unless stacked or split)."""
        if self.kind == "split":
            return _round_even(self.height / 2)
        return _round_even(self.height * self.split) if self.kind == "stacked" else self.height

    @property
    def crop_aspect(self) -> Fraction:
        """Aspect ratio (width/height) of the speaker crop window."""
        return Fraction(self.width, self.top_height)


def scale(planes: Planes, width: int, height: int, sharp: bool = True) -> Planes:
    """Scale planes to ``width`` x ``height`` with libswscale.

    ``sharp``: bicubic when enlarging, area averaging when shrinking; otherwise
    bilinear (for backgrounds and blurs, where detail does not matter).
    """
    if not sharp:
        interpolation = _SOFT
    elif width * height > planes.width * planes.height:
        interpolation = _UPSCALE
    else:
        interpolation = _DOWNSCALE
    scaled = reformat(planes_to_frame(planes), width, height, interpolation=interpolation)
    return frame_planes(scaled)


def cover(planes: Planes, width: int, height: int, sharp: bool = True) -> Planes:
    """Scale to cover ``width`` x ``height`` without distortion, cropping the centre."""
    size = window_size(planes.width, planes.height, Fraction(width, height))
    window = place_window(planes.width, planes.height, size, 0.5)
    return scale(planes.crop(window.x, window.y, window.width, window.height), width, height, sharp)


def blurred(planes: Planes, width: int, height: int) -> Planes:
    """A dimmed, blurred copy covering ``width`` x ``height`` (downscale then upscale)."""
    small_w, small_h = _round_even(width / _BLUR_FACTOR), _round_even(height / _BLUR_FACTOR)
    small = cover(planes, small_w, small_h, sharp=False)
    dim = Planes(
        (16 + (small.y.astype(np.float32) - 16) * _BLUR_DIM).astype(np.uint8),
        small.u.copy(),
        small.v.copy(),
    )
    return scale(dim, width, height, sharp=False)


def fit_width(planes: Planes, width: int) -> Planes:
    """Scale to ``width`` keeping the aspect ratio (even height)."""
    return scale(planes, width, _round_even(planes.height * width / planes.width))


def speaker_panel(planes: Planes, window: Window, width: int, height: int) -> Planes:
    """The crop window scaled to a speaker panel of ``width`` x ``height``."""
    crop = planes.crop(window.x, window.y, window.width, window.height)
    return scale(crop, width, height)


def paste(target: Planes, panel: Planes, top: int) -> None:
    """Copy ``panel`` into ``target`` with its top edge at row ``top`` (even)."""
    target.y[top : top + panel.height, : panel.width] = panel.y
    half = top // 2
    target.u[half : half + panel.height // 2, : panel.width // 2] = panel.u
    target.v[half : half + panel.height // 2, : panel.width // 2] = panel.v
