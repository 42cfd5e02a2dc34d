"""Face detection behind a small interface, for the speaker-following crop.

The bundled detector is OpenCV 4.x's frontal-face Haar cascade (``opencv-python-headless<5``,
the optional ``reframe`` extra): it ships with the wheel, runs offline and needs no model
download. OpenCV is imported only when a :class:`HaarFaceDetector` is created, so
``import klipmedia`` never needs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import av

from klipmedia.errors import KlipmediaError
from klipmedia.frames import reformat

log = logging.getLogger(__name__)

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
_MIN_WINDOW = 24  # the cascade's training window, in pixels


class ReframeError(KlipmediaError):
    """Face-following reframe cannot run: bad settings or a missing optional dependency."""


@dataclass(frozen=True)
class Face:
    """A face box in source-frame pixels, with a detector-specific score (higher is surer).

    ``keypoints``: points the detector found (BlazeFace: the eyes, nose tip, mouth and ear
    tragions, the eye on the picture's left first), in the same pixels. ``track``: which
    face track it belongs to, and ``mouth``: how open its mouth is (inner-lip gap over
    mouth width), where the speaker analysis measured them.
    """

    x: float
    y: float
    width: float
    height: float
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()
    track: int | None = None
    mouth: float | None = None

    @property
    def center_x(self) -> float:
        """Horizontal centre of the box, in source pixels."""
        return self.x + self.width / 2

    @property
    def area(self) -> float:
        """Box area in source pixels squared."""
        return self.width * self.height


class FaceDetector(Protocol):
    """Finds faces in a decoded video frame; boxes are in that frame's pixel coordinates."""

    def detect(self, frame: av.VideoFrame, near: Face | None = None) -> list[Face]:
        """Faces in ``frame``, in source-frame pixels.

        With ``near`` (a face found in an earlier frame) the detector may look only for a
        face of about that size around that place: a cheap re-detection for tracking.
        """
        ...


def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise ReframeError(
            "face reframing needs OpenCV 4.x: pip install 'klippers[reframe]' "
            "(opencv-python-headless<5)"
        ) from exc
    return cv2


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade on a grey copy of the frame scaled to ``width``.

    Parameters
    ----------
    width
        Detection width in pixels (never upscaled). The cascade's smallest face is 24 px at
        this width: 640 finds faces down to ~4 % of the source width.
    scale_factor, min_neighbors
        ``detectMultiScale`` pyramid step and the number of overlapping hits a face needs.
    max_height
        Largest face, as a fraction of the frame height (bounds the pyramid: faster, and the
        largest scales are where the cascade's false positives appear).

    Examples
    --------
    >>> detector = HaarFaceDetector()  # doctest: +SKIP
    >>> faces = detector.detect(frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        width: int = 640,
        *,
        scale_factor: float = 1.15,
        min_neighbors: int = 4,
        max_height: float = 0.75,
    ) -> None:
        if width < 48 or scale_factor <= 1.0 or min_neighbors < 1 or not 0 < max_height <= 1:
            raise ReframeError(
                f"bad Haar settings: width={width} (>= 48), scale_factor={scale_factor} (> 1), "
                f"min_neighbors={min_neighbors} (>= 1), max_height={max_height} (in (0, 1])"
            )
        cv2 = _import_cv2()
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + HAAR_CASCADE)
        if self._cascade.empty():
            raise ReframeError(f"OpenCV has no {HAAR_CASCADE}; install opencv-python-headless<5")
        self.width = width
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.max_height = max_height

    def detect(self, frame: av.VideoFrame, near: Face | None = None) -> list[Face]:
        """Frontal faces in ``frame``, in source-frame pixels, scored by cascade weight.

        With ``near``, only a region 2.5 face widths either side of it is searched, for
        faces between 0.7 and 1.4 times its size (several times faster than a full scan).
        """
        width = min(self.width, frame.width) // 2 * 2
        height = max(round(frame.height * width / frame.width) // 2 * 2, 2)
        gray = reformat(frame, width, height, format="gray").to_ndarray()
        sx, sy = frame.width / width, frame.height / height
        smallest, largest = _MIN_WINDOW, max(int(height * self.max_height), _MIN_WINDOW + 1)
        x0 = y0 = 0
        if near is not None:
            size = near.width / sx
            smallest = max(int(size * 0.7), _MIN_WINDOW)
            largest = max(int(size * 1.4), smallest + 1)
            cx, cy = (near.x + near.width / 2) / sx, (near.y + near.height / 2) / sy
            x0, x1 = max(int(cx - 2.5 * size), 0), min(int(cx + 2.5 * size), width)
            y0, y1 = max(int(cy - 1.5 * size), 0), min(int(cy + 1.5 * size), height)
            if x1 - x0 < smallest or y1 - y0 < smallest:
                return []
            gray = gray[y0:y1, x0:x1]
        boxes, _levels, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(smallest, smallest),
            maxSize=(largest, largest),
            outputRejectLevels=True,
        )
        return [
            Face((x0 + float(x)) * sx, (y0 + float(y)) * sy, float(w) * sx, float(h) * sy, float(v))
            for (x, y, w, h), v in zip(boxes, weights, strict=True)
        ]
