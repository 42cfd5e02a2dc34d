"""MediaPipe's 468-point face mesh, run with LiteRT, for how open a mouth is.

The model (``klipmedia/models/face_landmark.tflite``, Apache-2.0) sees a 192x192 upright
crop of one face: a square 1.5 times the face's size around its centre, turned so that
the eyes are level. The turned square is sampled straight from the decoded planes and
converted to RGB by OpenCV (:func:`upright`). A face is followed from frame to frame
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

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from klipmedia.blazeface import interpreter
from klipmedia.faces import Face, _import_cv2
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

# Limited BT.709 Y'CbCr (0-255) to RGB in [0, 1], with the offsets as a fourth column.
_YUV_TO_RGB = np.array(
    [
        [1 / 219, 0.0, 1.5748 / 224],
        [1 / 219, -0.1873 / 224, -0.4681 / 224],
        [1 / 219, 1.8556 / 224, 0.0],
    ]
)
_TO_RGB = np.column_stack([_YUV_TO_RGB, -_YUV_TO_RGB @ [16.0, 128.0, 128.0]])


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


def upright(planes: Planes, roi: Roi) -> Floats:
    """The model's input: ``roi``'s square turned upright, 192x192 RGB in [0, 1].

    Sampled straight from the limited BT.709 planes by OpenCV (luma bilinear, chroma
    nearest, edges repeated) and converted to RGB with one matrix: nothing outside the
    square is converted.

    Raises
    ------
    ReframeError
        OpenCV is not installed.
    """
    cv2 = _import_cv2()
    cos, sin = math.cos(roi.angle), math.sin(roi.angle)
    step = roi.side / _SIZE
    # Input pixel (0, 0)'s centre in frame pixels; the maps take output pixel indices to
    # plane pixel indices (pixel centres at whole numbers).
    offset = (0.5 - _SIZE / 2) * step
    x0 = roi.cx + (cos - sin) * offset
    y0 = roi.cy + (sin + cos) * offset
    turn = np.array([[cos * step, -sin * step], [sin * step, cos * step]])
    luma_map = np.column_stack([turn, [x0 - 0.5, y0 - 0.5]])
    chroma_map = np.column_stack([turn / 2, [x0 / 2 - 0.5, y0 / 2 - 0.5]])
    size = (_SIZE, _SIZE)
    replicate = cv2.BORDER_REPLICATE
    yuv = cv2.merge(
        [
            cv2.warpAffine(
                planes.y,
                luma_map,
                size,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=replicate,
            ),
            *(
                cv2.warpAffine(
                    plane,
                    chroma_map,
                    size,
                    flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                    borderMode=replicate,
                )
                for plane in (planes.u, planes.v)
            ),
        ]
    )
    rgb = cv2.transform(yuv.astype(np.float32), _TO_RGB)
    return np.asarray(np.clip(rgb, 0.0, 1.0, out=rgb), np.float32)
