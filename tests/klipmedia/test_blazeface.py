"""BlazeFace (LiteRT) detection, anchor decoding and suppression, the face mesh's mouth,
and the fallbacks when LiteRT or OpenCV is missing."""

from __future__ import annotations

import logging
import sys

import av
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ai_edge_litert", reason="needs the reframe extra (ai-edge-litert)")
pytest.importorskip("skimage", reason="needs scikit-image for the face photo")

from klipmedia.blazeface import BlazeFaceDetector, decode, weighted_nms
from klipmedia.faces import HaarFaceDetector, ReframeError
from klipmedia.frames import decoded_planes
from klipmedia.landmarks import FaceMesh, Roi
from klipmedia.reframe import default_detector
from tests.klipmedia.facegen import FACE_WIDTH, Placement, _background, _head, _paste

HD = (1920, 1080)


def frame_of(canvas: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")


def canvas_with(*placements: Placement) -> np.ndarray:
    canvas = _background(*HD, seed=4).copy()
    for placement in placements:
        _paste(canvas, placement)
    return canvas


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector()


def test_decode_places_a_box_on_its_anchor() -> None:
    raw = np.zeros((1, 2304, 16), np.float32)
    scores = np.full((1, 2304, 1), -20.0, np.float32)
    anchor = 10 * 48 + 20  # row 10, column 20: centre (20.5 / 48, 10.5 / 48)
    raw[0, anchor, :4] = [1.92, -1.92, 19.2, 38.4]  # offsets and size in input pixels
    scores[0, anchor] = 3.0
    boxes, kept = decode(raw, scores, 0.5)
    assert kept == pytest.approx([1 / (1 + np.exp(-3.0))])
    cx, cy = 20.5 / 48 + 0.01, 10.5 / 48 - 0.01
    assert boxes[0, :4] == pytest.approx([cx - 0.05, cy - 0.1, cx + 0.05, cy + 0.1], abs=1e-6)
    assert boxes[0, 4:6] == pytest.approx([20.5 / 48, 10.5 / 48], abs=1e-6)  # keypoint 0


def test_overlapping_boxes_merge_weighted_by_score() -> None:
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [3.0, 3.0, 4.0, 4.0]], np.float32)
    merged = weighted_nms(boxes, np.array([0.9, 0.6, 0.8], np.float32), overlap=0.3)
    assert [score for _, score in merged] == pytest.approx([0.9, 0.8])
    assert merged[0][0][0] == pytest.approx(0.1 * 0.6 / 1.5)


def test_two_faces_found_where_they_are(detector: BlazeFaceDetector) -> None:
    faces = detector.detect(frame_of(canvas_with(Placement(500, 500, 1.5), Placement(1400, 500))))
    assert sorted(round(face.center_x, -1) for face in faces) == pytest.approx([500, 1400], abs=30)
    assert all(face.score >= 0.65 and len(face.keypoints) == 6 for face in faces)
    left, right = faces[0].keypoints[:2]
    assert left[0] < right[0]  # the picture's left eye first


def test_small_face_is_found_in_the_tiles(detector: BlazeFaceDetector) -> None:
    frame = frame_of(canvas_with(Placement(900, 400, 0.8)))  # 76 px: 4 % of the width
    faces = detector.detect(frame)
    assert len(faces) == 1
    assert faces[0].center_x == pytest.approx(900, abs=0.3 * FACE_WIDTH)
    assert BlazeFaceDetector(tiles=False).detect(frame) == []  # too small for the whole pass


@pytest.mark.parametrize("angle", [30, -30, 40])
def test_rolled_face_is_found(detector: BlazeFaceDetector, angle: int) -> None:
    canvas = _background(*HD, seed=5).copy()
    head = Image.fromarray(_head(1.5)).rotate(
        angle, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128)
    )
    canvas[300 : 300 + head.size[1], 1200 : 1200 + head.size[0]] = np.asarray(head)
    faces = detector.detect(frame_of(canvas))
    assert len(faces) == 1
    assert faces[0].center_x == pytest.approx(1200 + head.size[0] / 2, abs=60)


def test_no_face_in_a_textured_background(detector: BlazeFaceDetector) -> None:
    assert detector.detect(frame_of(_background(960, 540, seed=0))) == []


def test_near_search_finds_the_followed_face(detector: BlazeFaceDetector) -> None:
    frame = frame_of(canvas_with(Placement(500, 500, 1.5), Placement(1400, 500)))
    big = max(detector.detect(frame), key=lambda face: face.area)
    near = detector.detect(frame, near=big)
    assert [round(face.center_x, -1) for face in near] == pytest.approx([500], abs=30)


def test_mouth_openness_grows_as_the_mouth_opens(detector: BlazeFaceDetector) -> None:
    mesh = FaceMesh()
    openness = []
    for mouth in (0.0, 1.0):
        frame = frame_of(canvas_with(Placement(700, 500, 1.5, mouth=mouth)))
        (face,) = detector.detect(frame)
        openness.append(mesh.landmarks(decoded_planes(frame), Roi.from_face(face)).mouth_openness)
    assert openness[1] > openness[0] + 0.08, openness


def test_mesh_follows_a_face_from_its_own_points(detector: BlazeFaceDetector) -> None:
    frame = frame_of(canvas_with(Placement(700, 500, 1.5)))
    (face,) = detector.detect(frame)
    mesh = FaceMesh().landmarks(decoded_planes(frame), Roi.from_face(face))
    roi = mesh.roi()
    assert roi.cx == pytest.approx(face.center_x, abs=0.15 * face.width)
    assert abs(roi.angle) < 0.15
    x, _, width, _ = mesh.box()
    assert x < 700 < x + width


def test_without_litert_the_haar_cascade_is_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("cv2", reason="needs the reframe extra (opencv-python-headless<5)")
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(ReframeError, match="ai-edge-litert"):
        BlazeFaceDetector()
    with caplog.at_level(logging.WARNING):
        assert isinstance(default_detector(), HaarFaceDetector)
    assert "Haar" in caplog.text


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ReframeError, match="min_score"):
        BlazeFaceDetector(min_score=1.5)
