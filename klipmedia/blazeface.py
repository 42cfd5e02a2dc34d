"""MediaPipe's BlazeFace full-range face detector, run with LiteRT.

The model (``klipmedia/models/face_detection_full_range.tflite``, Apache-2.0) ships with
klipmedia; the interpreter is ``ai-edge-litert`` (the ``reframe`` extra), imported only
when a detector is created. The model sees a 192x192 picture: one anchor per 4x4 cell
(2304 in all), each with a score and a box plus six keypoints (eyes, nose tip, mouth,
ear tragions) as offsets from the anchor. Decoding the anchors and merging overlapping
boxes (weighted non-maximum suppression, as MediaPipe does) is done here in numpy.

A wide picture is searched three times: whole (faces down to about 7 % of its width) and
as two overlapping squares of its full height (faces down to about 3 %); the three sets of
boxes are merged.

Examples
--------
>>> detector = BlazeFaceDetector()  # doctest: +SKIP
>>> [round(face.center_x) for face in detector.detect(frame)]  # doctest: +SKIP
[612, 1310]
"""

from __future__ import annotations

import functools
import importlib
import logging
from importlib import resources
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from klipmedia.faces import Face, ReframeError
from klipmedia.frames import Planes, decoded_planes, frame_planes, reformat

__all__ = ["BlazeFaceDetector", "interpreter", "litert_available", "model_planes", "rgb_region"]

log = logging.getLogger(__name__)

DETECTOR_MODEL = "face_detection_full_range.tflite"
_SIZE = 192
_GRID = 48  # anchors per row and column: one per 4x4 cell of the input
_RAW_LIMIT = 80.0  # logits are clipped so that the sigmoid stays finite in float32
_KEYPOINTS = 6

Floats = NDArray[np.float32]


def litert_available() -> bool:
    """Whether the LiteRT interpreter (``ai-edge-litert``) can be imported."""
    try:
        importlib.import_module("ai_edge_litert.interpreter")
    except ImportError:
        return False
    return True


def interpreter(model: str, threads: int = 1) -> Any:
    """A LiteRT interpreter with its tensors allocated for a model in ``klipmedia/models``.

    Raises
    ------
    ReframeError
        ``ai-edge-litert`` is not installed.
    """
    try:
        module = importlib.import_module("ai_edge_litert.interpreter")
    except ImportError as exc:
        raise ReframeError(
            "the BlazeFace detector and face mesh need LiteRT: pip install 'klippers[reframe]' "
            "(ai-edge-litert)"
        ) from exc
    with resources.as_file(resources.files("klipmedia.models") / model) as path:
        runner = module.Interpreter(model_path=str(path), num_threads=threads)
    runner.allocate_tensors()
    return runner


@functools.cache
def _anchors() -> Floats:
    """Anchor centres (x, y) in [0, 1] of the input, row by row."""
    centres = (np.arange(_GRID, dtype=np.float32) + 0.5) / _GRID
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def decode(raw_boxes: Floats, raw_scores: Floats, min_score: float) -> tuple[Floats, Floats]:
    """Boxes and keypoints of the anchors scoring at least ``min_score``.

    Returns an (n, 16) array of ``x0, y0, x1, y1`` then six keypoints ``x, y``, all in
    [0, 1] of the input (outside it for faces cut by its edge), and the n scores.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -_RAW_LIMIT, _RAW_LIMIT)))
    keep = np.flatnonzero(scores >= min_score)
    anchors = _anchors()[keep]
    values = raw_boxes.reshape(-1, 16)[keep] / _SIZE
    centre = values[:, 0:2] + anchors
    half = values[:, 2:4] / 2
    points = values[:, 4:].reshape(-1, _KEYPOINTS, 2) + anchors[:, None, :]
    boxes = np.concatenate([centre - half, centre + half, points.reshape(-1, 12)], axis=1)
    valid = (half > 0).all(axis=1)
    return boxes[valid].astype(np.float32), scores[keep][valid].astype(np.float32)


def _iou(box: Floats, others: Floats) -> Floats:
    """Intersection over union of ``box`` (x0, y0, x1, y1) with each row of ``others``."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), np.float32)


def weighted_nms(boxes: Floats, scores: Floats, overlap: float) -> list[tuple[Floats, float]]:
    """Merge boxes overlapping the best remaining one by more than ``overlap`` (IoU).

    Each merged box is the score-weighted mean of its group (box and keypoints) with the
    group's best score, as MediaPipe's ``WEIGHTED`` suppression does.
    """
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    merged: list[tuple[Floats, float]] = []
    while len(boxes):
        group = _iou(boxes[0], boxes) > overlap
        group[0] = True
        weights = scores[group][:, None]
        mean = (boxes[group] * weights).sum(axis=0) / weights.sum()
        merged.append((mean.astype(np.float32), float(scores[0])))
        boxes, scores = boxes[~group], scores[~group]
    return merged


class BlazeFaceDetector:
    """BlazeFace full-range on the whole picture and, when wide, on two squares of it.

    Parameters
    ----------
    min_score
        Lowest detection score kept (0-1).
    tiles
        Also search the left and right squares of a picture wider than 1.3:1, for faces
        smaller than about 7 % of its width (about three times the cost).
    overlap
        Intersection over union above which two boxes are one face.
    threads
        LiteRT interpreter threads (one is as fast as two on a loaded machine).

    Examples
    --------
    >>> faces = BlazeFaceDetector().detect(frame)  # doctest: +SKIP
    >>> faces[0].keypoints[0]  # doctest: +SKIP
    (601.5, 455.2)
    """

    def __init__(
        self,
        *,
        min_score: float = 0.65,
        tiles: bool = True,
        overlap: float = 0.3,
        threads: int = 1,
    ) -> None:
        if not 0 < min_score < 1 or not 0 < overlap < 1 or threads < 1:
            raise ReframeError(
                f"bad BlazeFace settings: min_score={min_score}, overlap={overlap} "
                f"(both in (0, 1)), threads={threads} (>= 1)"
            )
        self.min_score = min_score
        self.tiles = tiles
        self.overlap = overlap
        self._model = interpreter(DETECTOR_MODEL, threads)
        self._input = self._model.get_input_details()[0]["index"]
        outputs = self._model.get_output_details()
        self._boxes = outputs[0]["index"]
        self._scores = outputs[1]["index"]

    def detect(
        self, frame: av.VideoFrame, near: Face | None = None, *, tiles: bool = True
    ) -> list[Face]:
        """Faces in ``frame``, in its pixels, scored 0-1, with six keypoints each.

        With ``near``, only a square of three times its size around it is searched (one
        inference at a higher resolution than the whole-picture pass). ``tiles=False``
        skips the end squares this time (faces smaller than about 7 % of the width are
        missed; :class:`~klipmedia.tracking.FaceTracker` does so at every other scan).
        """
        found = [self._near(frame, near)] if near is not None else self._whole(frame, tiles)
        boxes = np.concatenate([b for b, _ in found])
        scores = np.concatenate([s for _, s in found])
        return [_face(box, score) for box, score in weighted_nms(boxes, scores, self.overlap)]

    def _whole(self, frame: av.VideoFrame, tiles: bool) -> list[tuple[Floats, Floats]]:
        """Boxes and scores in the whole picture and, when wide and ``tiles`` (and the
        detector's ``tiles``), in its end squares.

        Each pass is one libswscale conversion of the whole frame to a fixed size (its
        context is reused from frame to frame); the squares are cut from the second.
        """
        fit = _SIZE / max(frame.width, frame.height)
        w = max(2, round(frame.width * fit) // 2 * 2)
        h = max(2, round(frame.height * fit) // 2 * 2)
        rgb = np.asarray(reformat(frame, w, h, format="rgb24").to_ndarray(), np.uint8)
        found = [self._infer(rgb, (frame.width / w, frame.height / h), (0.0, 0.0))]
        if tiles and self.tiles and frame.width > 1.3 * frame.height:
            wide = round(frame.width * _SIZE / frame.height) // 2 * 2
            strip = np.asarray(reformat(frame, wide, _SIZE, format="rgb24").to_ndarray(), np.uint8)
            scale = (frame.width / wide, frame.height / _SIZE)
            for left in (0, wide - _SIZE):
                square = strip[:, left : left + _SIZE]
                found.append(self._infer(square, scale, (left * scale[0], 0.0)))
        return found

    def _near(self, frame: av.VideoFrame, face: Face) -> tuple[Floats, Floats]:
        """Boxes and scores in a square of three times ``face``'s size around it."""
        planes = model_planes(frame)
        side = 3.0 * max(face.width, face.height)
        size = int(min(side, planes.width, planes.height)) // 2 * 2
        x = int(min(max(face.center_x - size / 2, 0), planes.width - size)) // 2 * 2
        y = int(min(max(face.y + face.height / 2 - size / 2, 0), planes.height - size)) // 2 * 2
        region = rgb_region(planes, (x, y, x + size, y + size), max(1, size // _SIZE))
        square = np.asarray(region.resize((_SIZE, _SIZE), Image.Resampling.BILINEAR))
        return self._infer(square, (size / _SIZE, size / _SIZE), (float(x), float(y)))

    def _infer(
        self, rgb: NDArray[np.uint8], scale: tuple[float, float], origin: tuple[float, float]
    ) -> tuple[Floats, Floats]:
        """Boxes and scores in ``rgb`` (at most 192 pixels a side, centred in the input),
        mapped to frame pixels: times ``scale`` (x, y), plus ``origin``."""
        h, w = rgb.shape[:2]
        tensor = np.full((1, _SIZE, _SIZE, 3), -1.0, np.float32)
        top, left = (_SIZE - h) // 2, (_SIZE - w) // 2
        tensor[0, top : top + h, left : left + w] = rgb.astype(np.float32) / 127.5 - 1.0
        self._model.set_tensor(self._input, tensor)
        self._model.invoke()
        raw_boxes = self._model.get_tensor(self._boxes)
        boxes, scores = decode(raw_boxes, self._model.get_tensor(self._scores), self.min_score)
        boxes[:, 0::2] = (boxes[:, 0::2] * _SIZE - left) * scale[0] + origin[0]
        boxes[:, 1::2] = (boxes[:, 1::2] * _SIZE - top) * scale[1] + origin[1]
        return boxes, scores


def model_planes(frame: av.VideoFrame) -> Planes:
    """The planes of ``frame`` for the face models: yuv420p as it is (whatever its matrix
    or range: the models do not mind a small colour shift, and converting costs more
    than the models), anything else converted (:func:`~klipmedia.frames.decoded_planes`).
    """
    return frame_planes(frame) if frame.format.name == "yuv420p" else decoded_planes(frame)


def rgb_region(planes: Planes, box: tuple[int, int, int, int], step: int = 1) -> Image.Image:
    """RGB of ``box`` (x0, y0, x1, y1; all even) of limited BT.709 planes, keeping every
    ``step``-th pixel.

    The planes are stretched to full range and converted by Pillow (its YCbCr is BT.601:
    a hue shift far too small to matter to the models), which costs far less than a
    libswscale context for every new crop size.
    """
    x0, y0, x1, y1 = box
    luma = Image.fromarray(np.ascontiguousarray(planes.y[y0:y1:step, x0:x1:step]))
    size = luma.size
    chroma = (
        Image.fromarray(np.ascontiguousarray(plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]))
        .resize(size, Image.Resampling.NEAREST)
        .point(_CHROMA)
        for plane in (planes.u, planes.v)
    )
    return Image.merge("YCbCr", (luma.point(_LUMA), *chroma)).convert("RGB")


def _stretch(zero: int, span: int, to: int) -> list[int]:
    """A lookup table taking ``zero`` to ``to`` and ``span`` levels to 255 (clipped)."""
    values = (np.arange(256) - zero) * 255 / span + to
    return [int(v) for v in np.clip(np.round(values), 0, 255)]


_LUMA = _stretch(16, 219, 0)  # 16-235 -> 0-255
_CHROMA = _stretch(128, 224, 128)  # 16-240 -> 0-255 around 128


def _face(box: Floats, score: float) -> Face:
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    points = box[4:].reshape(_KEYPOINTS, 2)
    keypoints = tuple((float(px), float(py)) for px, py in points)
    return Face(x0, y0, x1 - x0, y1 - y0, score, keypoints=keypoints)
