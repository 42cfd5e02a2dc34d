"""Synthetic clips with a real face photo moving over a textured canvas, encoded with PyAV.

The face is the one in :func:`skimage.data.astronaut` (or its mirror image); its centre in
every frame is known exactly, so tests can compare a crop path with the true face position.
Its mouth can be opened (the jaw dropped, the gap between the lips dark) and the clip can
carry an audio track.
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
# The mouth in the head cut (face mesh points 78/308 and 13/14 of the photo): centre
# column, the row between the inner lips, half its width; the chin's row.
_MOUTH_X, _LIP_Y, _MOUTH_HALF, _CHIN_Y = 102.0, 136.0, 24.0, 165.0
MAX_JAW_DROP = 14.0
"""Pixels (at ``scale=1``) the jaw drops with ``mouth=1``: inner-lip gap over mouth width
goes from about 0.18 (the photo's smile) to about 0.5."""
_MOUTH_INSIDE = np.array([70, 25, 30], np.float32)
_AUDIO_RATE = 48_000


@dataclass(frozen=True)
class Placement:
    """One face in one frame: centre of the face box in canvas pixels, and size factor.

    ``mouth``: how far the mouth is open, 0 (as in the photo) to 1 (wide); ``mirror``:
    the photo's mirror image (a second person).
    """

    cx: float
    cy: float
    scale: float = 1.0
    mouth: float = 0.0
    mirror: bool = False


Layout = Callable[[float], Sequence[Placement]]
"""Faces present at ``t`` seconds."""


@functools.cache
def _photo() -> NDArray[np.uint8]:
    from skimage import data

    return np.asarray(data.astronaut()[_HEAD_ROWS, _HEAD_COLS])


def _open_mouth(head: NDArray[np.uint8], drop: float) -> NDArray[np.uint8]:
    """``head`` with the jaw dropped by ``drop`` pixels below the lips, the gap dark."""
    if drop <= 0:
        return head
    rows, cols = np.mgrid[0 : head.shape[0], 0 : head.shape[1]].astype(np.float32)
    across = np.sqrt(np.clip(1 - ((cols - _MOUTH_X) / _MOUTH_HALF) ** 2, 0, 1))
    below = np.clip(1 - (rows - _CHIN_Y - 5) / 40, 0, 1) * (rows >= _LIP_Y)
    source = rows - drop * across * below
    low = np.clip(np.floor(source).astype(np.intp), 0, head.shape[0] - 1)
    high = np.clip(low + 1, 0, head.shape[0] - 1)
    frac = (source - np.floor(source))[..., None]
    picture = head.astype(np.float32)
    cols_i = cols.astype(np.intp)
    out = picture[low, cols_i] * (1 - frac) + picture[high, cols_i] * frac
    inside = (source < _LIP_Y) & (rows >= _LIP_Y)
    out[inside] = _MOUTH_INSIDE
    return np.clip(out, 0, 255).astype(np.uint8)


@functools.cache
def _head(scale: float, mouth: float = 0.0, mirror: bool = False) -> NDArray[np.uint8]:
    head = _open_mouth(_photo(), MAX_JAW_DROP * mouth)
    if mirror:
        head = head[:, ::-1]
    h, w = head.shape[:2]
    size = (round(w * scale), round(h * scale))
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(head)).resize(size, Image.Resampling.BILINEAR)
    )


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
    mouth = round(min(max(placement.mouth, 0.0), 1.0) * 20) / 20  # 21 cached shapes
    head = _head(placement.scale, mouth, placement.mirror)
    face_x = _photo().shape[1] - _FACE_IN_HEAD[0] if placement.mirror else _FACE_IN_HEAD[0]
    fx, fy = face_x * placement.scale, _FACE_IN_HEAD[1] * placement.scale
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
    audio: NDArray[np.float32] | None = None,
) -> Path:
    """Encode an H.264 clip of faces placed by ``layout`` over the background of ``scene(t)``.

    ``drift`` moves the background by that many pixels per frame (camera shake that makes
    the clip costlier to decode, as real footage is). ``audio``: mono samples at 48 kHz
    (-1 to 1), encoded as AAC beside the video.
    """
    width, height = size
    backgrounds: dict[int, NDArray[np.uint8]] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": preset, "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        if audio is not None:
            _write_audio(out, audio)
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


def _write_audio(out: av.container.OutputContainer, samples: NDArray[np.float32]) -> None:
    """Encode mono ``samples`` at 48 kHz as AAC into ``out`` (all of it, before the video)."""
    stream = out.add_stream("aac", rate=_AUDIO_RATE, layout="mono")
    block = 1024
    for begin in range(0, len(samples), block):
        chunk = np.ascontiguousarray(samples[None, begin : begin + block], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate = _AUDIO_RATE
        frame.pts = begin
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
