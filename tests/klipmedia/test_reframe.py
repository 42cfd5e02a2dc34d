"""Speaker-following reframe on real H.264 clips of a real face photo moving over a canvas."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2", reason="needs the reframe extra (opencv-python-headless<5)")
pytest.importorskip("skimage", reason="needs scikit-image for the face photo")

from klipmedia.crop import CropPath, window_size
from klipmedia.errors import EmptyMediaError, MediaNotFoundError
from klipmedia.faces import Face, HaarFaceDetector
from klipmedia.reframe import (
    Analysis,
    ReframeError,
    ReframeSettings,
    Sample,
    analyse,
    face_path,
    plan_path,
)
from tests.klipmedia.facegen import Placement, write_clip

PORTRAIT = Fraction(9, 16)
FPS = 30
HD = (1920, 1080)
SMALL = (960, 540)


def pan_x(t: float) -> float:
    """Face centre (px) in the pan clip: still at 30 %, pans to 70 % over 3 s, still again."""
    left, right = 0.3 * HD[0], 0.7 * HD[0]
    return left + (right - left) * min(max(t - 1.0, 0.0) / 3.0, 1.0)


CUT_AT = 2.0
"""Scene cut in the cut clip: the face jumps from 25 % to 75 % of the width."""


def cut_x(t: float) -> float:
    return (0.25 if t < CUT_AT else 0.75) * SMALL[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reframe")
    return {
        "pan": write_clip(
            root / "pan.mp4",
            layout=lambda t: [Placement(pan_x(t), 500, 1.5)],
            duration=5.0,
            size=HD,
            fps=FPS,
        ),
        "cut": write_clip(
            root / "cut.mp4",
            layout=lambda t: [Placement(cut_x(t), 250, 1.0)],
            scene=lambda t: int(t >= CUT_AT),
            duration=4.0,
            size=SMALL,
            fps=FPS,
        ),
        "empty": write_clip(
            root / "empty.mp4", layout=lambda t: [], duration=2.0, size=SMALL, drift=1.0
        ),
        "larger": write_clip(
            root / "larger.mp4",
            layout=lambda t: [Placement(0.35 * 960, 250, 0.8), Placement(0.7 * 960, 250, 1.3)],
            duration=2.0,
            size=SMALL,
        ),
        "central": write_clip(
            root / "central.mp4",
            layout=lambda t: [Placement(0.2 * 960, 250, 1.0), Placement(0.55 * 960, 250, 1.0)],
            duration=2.0,
            size=SMALL,
        ),
    }


@pytest.fixture(scope="module")
def pan_analysis(clips: dict[str, Path]) -> Analysis:
    return analyse(clips["pan"])


def frame_times(seconds: float) -> list[float]:
    return [i / FPS for i in range(round(seconds * FPS))]


def share_in_middle_third(
    path: CropPath, face_x: Callable[[float], float], size: tuple[int, int], times: list[float]
) -> float:
    third = window_size(*size, PORTRAIT)[0] / 6
    inside = [abs(face_x(t) - path.center_at(t) * size[0]) <= third for t in times]
    return sum(inside) / len(inside)


def test_panning_face_stays_in_middle_third(pan_analysis: Analysis) -> None:
    path = plan_path(pan_analysis, aspect=PORTRAIT)
    assert share_in_middle_third(path, pan_x, HD, frame_times(5.0)) >= 0.95


def test_face_detected_in_nearly_every_sample(pan_analysis: Analysis) -> None:
    hits = [
        any(abs(face.center_x - pan_x(s.time)) < 0.03 * HD[0] for face in s.faces)
        for s in pan_analysis.samples
    ]
    assert len(hits) >= 14  # about 3 samples per second over 5 s
    assert sum(hits) / len(hits) >= 0.9


@pytest.mark.parametrize("speed", [0.25, 0.05])
def test_pan_speed_stays_below_limit(pan_analysis: Analysis, speed: float) -> None:
    path = plan_path(pan_analysis, aspect=PORTRAIT, settings=ReframeSettings(max_pan_speed=speed))
    centres = np.array([path.center_at(t) for t in frame_times(5.0)])
    steps = np.abs(np.diff(centres))
    assert steps.max() <= speed / FPS + 1e-9
    assert centres[-1] - centres[0] > 0.05  # it did pan, towards the face


def test_window_stays_inside_the_frame(pan_analysis: Analysis) -> None:
    path = plan_path(pan_analysis, aspect=PORTRAIT)
    half = window_size(*HD, PORTRAIT)[0] / HD[0] / 2
    assert min(path.centers) >= half - 1e-9
    assert max(path.centers) <= 1 - half + 1e-9


def test_clip_without_faces_gives_centre_path(clips: dict[str, Path]) -> None:
    path = face_path(clips["empty"], aspect=PORTRAIT)
    assert set(path.centers) == {0.5}


def test_scene_cut_is_followed_within_half_a_second(clips: dict[str, Path]) -> None:
    analysis = analyse(clips["cut"])
    assert len(analysis.cuts) == 1
    assert abs(analysis.cuts[0] - CUT_AT) <= 2 / FPS
    path = plan_path(analysis, aspect=PORTRAIT)
    third = window_size(*SMALL, PORTRAIT)[0] / 6
    for t in frame_times(4.0):
        if CUT_AT - 0.1 <= t < CUT_AT + 0.5:
            continue
        assert abs(cut_x(t) - path.center_at(t) * SMALL[0]) <= third, t
    cut_times = [a for a, b in zip(path.times, path.times[1:], strict=False) if a == b]
    assert cut_times == [pytest.approx(analysis.cuts[0])]  # a jump, not a pan


def test_range_of_a_longer_video_has_times_from_its_start(clips: dict[str, Path]) -> None:
    path = face_path(clips["cut"], aspect=PORTRAIT, start=2.5, end=4.0)
    assert path.times[0] == pytest.approx(0.0, abs=1 / FPS)
    assert path.times[-1] < 1.5
    assert all(abs(c - 0.75) < 0.03 for c in path.centers)


@pytest.mark.parametrize(("clip", "expected"), [("larger", 0.7), ("central", 0.55)])
def test_several_faces_follow_larger_or_more_central(
    clips: dict[str, Path], clip: str, expected: float
) -> None:
    path = face_path(clips[clip], aspect=PORTRAIT)
    assert all(abs(c - expected) < 0.04 for c in path.centers), path.centers


def test_haar_detector_returns_source_pixel_boxes(clips: dict[str, Path]) -> None:
    import av

    with av.open(str(clips["pan"])) as container:
        frame = next(container.decode(video=0))
    faces = HaarFaceDetector().detect(frame)
    assert len(faces) == 1
    face = faces[0]
    assert face.center_x == pytest.approx(pan_x(0.0), abs=15)
    assert face.width == pytest.approx(95 * 1.5, rel=0.2)
    near = HaarFaceDetector().detect(frame, near=face)
    assert [f.center_x for f in near] == pytest.approx([face.center_x], abs=8)


def still_face_analysis(xs: list[float], width: int = 1920) -> Analysis:
    """Samples 1/3 s apart of one 150 px face centred at each fraction in ``xs`` (NaN: none)."""
    samples = tuple(
        Sample(i / 3, () if math.isnan(x) else (Face(x * width - 75, 400, 150, 150, 5.0),))
        for i, x in enumerate(xs)
    )
    return Analysis(width, 1080, samples, ())


def test_jittery_detections_of_a_still_face_give_a_still_window() -> None:
    rng = np.random.default_rng(7)
    xs = list(0.4 + rng.uniform(-0.012, 0.012, size=30))
    path = plan_path(still_face_analysis(xs), aspect=PORTRAIT)
    assert max(path.centers) - min(path.centers) < 1e-9


def test_a_stray_detection_does_not_move_the_window() -> None:
    xs = [0.4] * 10 + [0.8] + [0.4] * 10
    path = plan_path(still_face_analysis(xs), aspect=PORTRAIT)
    assert max(path.centers) - min(path.centers) < 1e-9


def test_face_lost_for_long_returns_to_centre() -> None:
    xs = [0.3] * 6 + [math.nan] * 15
    path = plan_path(still_face_analysis(xs), aspect=PORTRAIT)
    assert path.center_at(0.0) == pytest.approx(0.3, abs=0.04)
    assert path.centers[-1] == pytest.approx(0.5, abs=ReframeSettings().dead_zone + 1e-9)


def test_window_as_wide_as_the_source_is_centred(clips: dict[str, Path]) -> None:
    assert face_path(clips["pan"], aspect=Fraction(16, 9)) == CropPath.center()


def test_bad_settings_name_the_problem() -> None:
    with pytest.raises(ReframeError, match="max_pan_speed"):
        ReframeSettings(max_pan_speed=0)


def test_missing_or_empty_file_raises_typed_error(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFoundError):
        face_path(tmp_path / "nope.mp4", aspect=PORTRAIT)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(EmptyMediaError):
        face_path(empty, aspect=PORTRAIT)


def test_missing_opencv_raises_reframe_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(ReframeError, match="opencv-python-headless"):
        HaarFaceDetector()


def test_cut_signature_reads_high_bit_depth_frames_like_8_bit() -> None:
    import av
    from PIL import Image

    from klipmedia.reframe import _signature

    coarse = np.random.default_rng(3).integers(0, 256, (9, 16, 3), np.uint8)
    rgb = Image.fromarray(coarse).resize((960, 540), Image.Resampling.BICUBIC)
    frame = av.VideoFrame.from_image(rgb)
    eight = _signature(frame.reformat(format="yuv420p"))
    ten = _signature(frame.reformat(format="yuv420p10le"))
    assert eight.shape == ten.shape == (18, 32)
    # same luma scale (limited range); only resampling differs, far below a cut
    assert float(np.abs(eight - ten).mean()) < ReframeSettings().cut_threshold / 4
