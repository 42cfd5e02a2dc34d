"""MediaPipe's 468-point face mesh, run with LiteRT, for how open a mouth is.

The model (``klipmedia/models/face_landmark.tflite``, Apache-2.0) sees a 192x192 upright
crop of one face: a square 1.5 times the face's size around its centre, turned so that
the eyes are level. The turned square is sampled straight from the decoded planes and
converted to RGB in numpy (:func:`upright`). A face is followed from frame to frame
by taking the next crop from the previous frame's points (:meth:`Mesh.roi`).

Mouth openness is the inner-lip gap over the mouth's width: points 13-14 over 78-308
(about 0 closed, 0.3-0.6 wide open), blind to the face's size, turn and position.

Examples
--------
>>> mesh = FaceMesh()  # doctest: +SKIP
>>> points = mesh.landmarks(decoded_planes(frame), Roi.from_face(face))  # doctest: +SKIP
>>> round(points.mouth_openness, 2)  # doctest: +SKIP
0.31
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from klipmedia.blazeface import interpreter
from klipmedia.faces import Face
from klipmedia.frames import Planes

__all__ = ["FaceMesh", "Mesh", "Roi", "upright"]

MESH_MODEL = "face_landmark.tflite"
_SIZE = 192
_ROI_SCALE = 1.5
# Mesh points: inner upper and lower lip, mouth corners, outer eye corners (picture's left
# eye first), chin and forehead.
_LIP_TOP, _LIP_BOTTOM, _MOUTH_LEFT, _MOUTH_RIGHT = 13, 14, 78, 308
_EYE_LEFT, _EYE_RIGHT = 33, 263

Points = NDArray[np.float32]
Floats = NDArray[np.float32]
Coords = NDArray[np.floating[Any]]


@dataclass(frozen=True)
class Roi:
    """A square around a face: centre and side in frame pixels, and its turn in radians.

    ``angle`` is the direction of the line from the picture's left eye to its right eye
    (0: level; positive: turned clockwise on screen).
    """

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    @classmethod
    def from_face(cls, face: Face) -> Roi:
        """The crop for a detected face: its box 1.5 times larger, turned by its eyes."""
        angle = 0.0
        if len(face.keypoints) >= 2:
            (x0, y0), (x1, y1) = face.keypoints[0], face.keypoints[1]
            angle = math.atan2(y1 - y0, x1 - x0)
        side = _ROI_SCALE * max(face.width, face.height)
        return cls(face.center_x, face.y + face.height / 2, side, angle)


@dataclass(frozen=True)
class Mesh:
    """The 468 face-mesh points of one face, (x, y) in frame pixels."""

    points: Points

    @property
    def mouth_openness(self) -> float:
        """Inner-lip gap over mouth width (points 13-14 over 78-308)."""
        p = self.points
        gap = float(np.hypot(*(p[_LIP_TOP] - p[_LIP_BOTTOM])))
        width = float(np.hypot(*(p[_MOUTH_LEFT] - p[_MOUTH_RIGHT])))
        return gap / width if width > 0 else 0.0

    def box(self) -> tuple[float, float, float, float]:
        """The points' bounding box: x, y, width, height."""
        low, high = self.points.min(axis=0), self.points.max(axis=0)
        return float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])

    def roi(self) -> Roi:
        """The crop for the next frame: the points' box 1.5 times larger, eyes level."""
        x, y, width, height = self.box()
        (x0, y0), (x1, y1) = self.points[_EYE_LEFT], self.points[_EYE_RIGHT]
        angle = math.atan2(float(y1 - y0), float(x1 - x0))
        return Roi(x + width / 2, y + height / 2, _ROI_SCALE * max(width, height), angle)


class FaceMesh:
    """The face-mesh model in a LiteRT interpreter (``ai-edge-litert``).

    Examples
    --------
    >>> FaceMesh().landmarks(planes, Roi(640.0, 360.0, 300.0)).box()  # doctest: +SKIP
    (552.1, 268.4, 176.0, 190.3)
    """

    def __init__(self, threads: int = 1) -> None:
        self._model = interpreter(MESH_MODEL, threads)
        self._input = self._model.get_input_details()[0]["index"]
        self._output = self._model.get_output_details()[0]["index"]

    def landmarks(self, planes: Planes, roi: Roi) -> Mesh:
        """The mesh of the face inside ``roi`` of a picture (points in its pixels).

        ``planes``: the picture as limited BT.709 planes
        (:func:`~klipmedia.frames.decoded_planes`).
        """
        self._model.set_tensor(self._input, upright(planes, roi)[None])
        self._model.invoke()
        raw = self._model.get_tensor(self._output).reshape(-1, 3)[:, :2]
        half = _SIZE / 2
        u, v = raw[:, 0] - half, raw[:, 1] - half
        cos, sin = math.cos(roi.angle), math.sin(roi.angle)
        step = roi.side / _SIZE
        points = np.stack(
            [roi.cx + (cos * u - sin * v) * step, roi.cy + (sin * u + cos * v) * step], axis=1
        )
        return Mesh(points.astype(np.float32))


@functools.cache
def _grid() -> tuple[Floats, Floats]:
    """Offsets (u, v) of the model input's pixel centres from its centre."""
    offsets = np.arange(_SIZE, dtype=np.float32) + 0.5 - _SIZE / 2
    u, v = np.meshgrid(offsets, offsets)
    return u, v


def _flat(plane: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], int]:
    """A 1-D view of a plane's rows (line padding included) and its row stride."""
    if plane.strides[1] != 1 or plane.strides[0] < plane.shape[1]:
        plane = np.ascontiguousarray(plane)
    h, w = plane.shape
    row = plane.strides[0]
    size = (h - 1) * row + w
    return np.lib.stride_tricks.as_strided(plane, (size,), (1,), writeable=False), row


def _bilinear(plane: NDArray[np.uint8], x: Coords, y: Coords) -> Floats:
    """``plane`` sampled at pixel coordinates ``x``, ``y`` (edges repeated outside)."""
    h, w = plane.shape
    x = np.clip(x - np.float32(0.5), 0, w - 1.001, dtype=np.float32)
    y = np.clip(y - np.float32(0.5), 0, h - 1.001, dtype=np.float32)
    left, top = np.floor(x), np.floor(y)
    fx, fy = x - left, y - top
    flat, row = _flat(plane)
    index = top.astype(np.intp) * row + left.astype(np.intp)
    upper = flat[index] + fx * (flat[index + 1] - flat[index].astype(np.float32))
    index += row
    lower = flat[index] + fx * (flat[index + 1] - flat[index].astype(np.float32))
    return np.asarray(upper + fy * (lower - upper), np.float32)


def _nearest(plane: NDArray[np.uint8], x: Coords, y: Coords) -> Floats:
    """``plane`` at the pixels nearest to coordinates ``x``, ``y`` (clamped to its edges)."""
    h, w = plane.shape
    flat, row = _flat(plane)
    column = np.clip(x, 0, w - 1, dtype=np.float32).astype(np.intp)
    line = np.clip(y, 0, h - 1, dtype=np.float32).astype(np.intp)
    return np.asarray(flat[line * row + column], np.float32)


def upright(planes: Planes, roi: Roi) -> Floats:
    """The model's input: ``roi``'s square turned upright, 192x192 RGB in [0, 1].

    Sampled straight from the limited BT.709 planes (luma bilinear, chroma nearest) and
    converted to RGB in numpy: nothing outside the square is converted.
    """
    u, v = _grid()
    cos, sin = math.cos(roi.angle), math.sin(roi.angle)
    step = roi.side / _SIZE
    x = roi.cx + (cos * u - sin * v) * step
    y = roi.cy + (sin * u + cos * v) * step
    luma = (_bilinear(planes.y, x, y) - 16.0) * (1 / 219)
    half_x, half_y = x * 0.5, y * 0.5
    cb = (_nearest(planes.u, half_x, half_y) - 128.0) * (1 / 224)
    cr = (_nearest(planes.v, half_x, half_y) - 128.0) * (1 / 224)
    rgb = np.stack([luma + 1.5748 * cr, luma - 0.1873 * cb - 0.4681 * cr, luma + 1.8556 * cb], -1)
    return np.asarray(np.clip(rgb, 0.0, 1.0, out=rgb), np.float32)
