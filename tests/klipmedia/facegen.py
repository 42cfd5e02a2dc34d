"""Synthetic clips with a real face photo moving over a textured canvas, encoded with PyAV.

The face is the one in :func:`skimage.data.astronaut`; its centre in every frame is known
exactly, so tests can compare a crop path with the true face position.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

# Head-and-shoulders cut of astronaut() (rows, columns) and the face centre inside it;
# OpenCV's frontal cascade boxes the face at x 177..272, y 66..161 of the photo.
_HEAD_ROWS = slice(10, 250)
_HEAD_COLS = slice(120, 330)
_FACE_IN_HEAD = (224.5 - 120, 113.5 - 10)
FACE_WIDTH = 95
"""Width in pixels of the face box in the photo, at ``scale=1``."""


@dataclass(frozen=True)
class Placement:
    """One face in one frame: centre of the face box in canvas pixels, and size factor."""

    cx: float
    cy: float
    scale: float = 1.0


Layout = Callable[[float], Sequence[Placement]]
"""Faces present at ``t`` seconds."""


@functools.cache
def _head(scale: float) -> NDArray[np.uint8]:
    from skimage import data

    head = data.astronaut()[_HEAD_ROWS, _HEAD_COLS]
    h, w = head.shape[:2]
    size = (round(w * scale), round(h * scale))
    return np.asarray(Image.fromarray(head).resize(size, Image.Resampling.BILINEAR))


def _background(width: int, height: int, seed: int) -> NDArray[np.uint8]:
    """A smooth, colourful, face-free texture (low-frequency noise plus a gradient)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 216, size=(9, 16, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    out = np.asarray(img).astype(np.int16)
    out += np.linspace(-20, 20, width, dtype=np.int16)[None, :, None]
    out += rng.integers(-6, 7, size=out.shape, dtype=np.int16)  # sensor-like grain
    return np.clip(out, 0, 255).astype(np.uint8)


def _paste(canvas: NDArray[np.uint8], placement: Placement) -> None:
    head = _head(placement.scale)
    fx, fy = (v * placement.scale for v in _FACE_IN_HEAD)
    x0 = round(placement.cx - fx)
    y0 = round(placement.cy - fy)
    h, w = head.shape[:2]
    ch, cw = canvas.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, cw), min(y0 + h, ch)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    canvas[cy0:cy1, cx0:cx1] = head[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


def write_clip(
    path: Path,
    *,
    layout: Layout,
    duration: float,
    size: tuple[int, int] = (1920, 1080),
    fps: int = 30,
    scene: Callable[[float], int] = lambda t: 0,
    drift: float = 0.0,
    preset: str = "ultrafast",
) -> Path:
    """Encode an H.264 clip of faces placed by ``layout`` over the background of ``scene(t)``.

    ``drift`` moves the background by that many pixels per frame (camera shake that makes
    the clip costlier to decode, as real footage is).
    """
    width, height = size
    backgrounds: dict[int, NDArray[np.uint8]] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": preset, "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(round(duration * fps)):
            t = index / fps
            key = scene(t)
            if key not in backgrounds:
                backgrounds[key] = _background(width, height, seed=key)
            canvas = backgrounds[key]
            if drift:
                canvas = np.roll(canvas, round(drift * index) % width, axis=1)
            canvas = canvas.copy()
            for placement in layout(t):
                _paste(canvas, placement)
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    tmp.replace(path)
    return path
