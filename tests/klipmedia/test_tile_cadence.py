"""The face tracker runs BlazeFace's small-face squares at every other detection while
faces are followed, and still picks up a small face within two detections."""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="needs the reframe extra (ai-edge-litert)")
pytest.importorskip("skimage", reason="needs scikit-image for the face photo")

from klipmedia.blazeface import BlazeFaceDetector
from klipmedia.faces import Face
from klipmedia.landmarks import FaceMesh
from klipmedia.tracking import FaceTracker
from tests.klipmedia.facegen import Placement, _background, _paste

HD = (1920, 1080)
RESCAN = 2.0
BIG = Placement(500, 500, 1.5)
SMALL = Placement(1400, 400, 0.8, mirror=True)  # 76 px: 4 % of the width, tiles only


def frame_of(*placements: Placement) -> av.VideoFrame:
    canvas = _background(*HD, seed=4).copy()
    for placement in placements:
        _paste(canvas, placement)
    return av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")


class CountingDetector(BlazeFaceDetector):
    """BlazeFace counting its model runs per detection (1: whole picture only; 3: with
    the two small-face squares)."""

    def __init__(self) -> None:
        super().__init__()
        self.passes: list[int] = []

    def detect(self, frame: av.VideoFrame, near: Face | None = None, **kwargs: Any) -> list[Face]:
        self.passes.append(0)
        return super().detect(frame, near, **kwargs)

    def _infer(self, *args: Any) -> Any:
        self.passes[-1] += 1
        return super()._infer(*args)


def test_tiles_every_other_scan_while_tracked_and_small_face_within_two_scans() -> None:
    detector = CountingDetector()
    tracker = FaceTracker(detector, FaceMesh(), RESCAN)
    alone, both = frame_of(BIG), frame_of(BIG, SMALL)
    # the small face appears just after the first detection, the worst case
    seen = {t: tracker.update(t, alone if t < 0.5 else both) for t in np.arange(0, 8.5, 0.5)}

    # scans at 0 (nothing followed: with the squares), 2, 4, 6, 8
    assert detector.passes == [3, 1, 3, 1, 3]
    small = [
        t for t, faces in seen.items() if any(f.center_x > 1000 and f.width < 120 for f in faces)
    ]
    assert min(small) == 4.0  # missed by the plain scan at 2 s, found within 2 * RESCAN
    assert small == [t for t in seen if t >= 4.0]  # kept through the plain scan at 6 s
    assert all(len({f.track for f in seen[t]}) == 2 for t in small)


def test_after_a_reset_the_squares_run_again() -> None:
    detector = CountingDetector()
    tracker = FaceTracker(detector, FaceMesh(), RESCAN)
    frame = frame_of(BIG, SMALL)
    tracker.update(0.0, frame)
    tracker.update(2.0, frame)
    tracker.reset()
    tracker.update(2.5, frame)
    assert detector.passes == [3, 1, 3]
    assert len(tracker.update(3.0, frame)) == 2
