"""Black bars baked into the picture: detection on real H.264 clips, and renders that keep
the bars out of every layout."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import klipmedia
from klipmedia import CropPath, EncodeSettings, KlipmediaError, Layout, Window
from klipmedia.crop import place_window, window_size
from klipmedia.layout import LayoutKind
from klipmedia.letterbox import detect_content, resolve_content
from tests.support import media

W, H = 640, 360
PILLAR = Window(80, 0, 480, 360)
"""A 4:3 picture pillarboxed in 16:9."""
LETTER = Window(0, 46, 640, 268)
"""A 2.39:1 picture letterboxed in 16:9."""
WINDOWED = Window(80, 46, 480, 268)
FAST = EncodeSettings(preset="ultrafast", crf=18)
SMALL = {"width": 360, "height": 640}
"""A small 9:16 output keeps the renders quick."""
FRAMES = 30


def scene(width: int, height: int, low: int = 64, grain: int = 8) -> Callable[[int], media.Image]:
    """A lit, textured picture: grey ramp from ``low`` to 235 left to right, plus grain."""
    ramp = np.linspace(low, 235, width)[None, :]
    noise = np.random.default_rng(5).integers(-grain, grain + 1, (height, width))
    picture = np.clip(ramp + noise, 0, 255).astype(np.uint8)
    rgb = np.repeat(picture[:, :, None], 3, axis=2)
    return lambda index: rgb


def fading(picture: Callable[[int], media.Image]) -> Callable[[int], media.Image]:
    """``picture`` at full light for 40 % of the clip, fading to black by 80 %."""

    def make(index: int) -> media.Image:
        level = min(max(2.0 - 2.5 * index / FRAMES, 0.0), 1.0)
        return (picture(index) * level).astype(np.uint8)

    return make


def dark_then_lit(index: int) -> media.Image:
    """A dark room (black edges) with a dim figure in the middle, until the lights go on."""
    if index >= 0.6 * FRAMES:
        return scene(W, H)(index)
    grain = np.random.default_rng(index).integers(0, 10, (H, W, 1))
    room = np.repeat(grain, 3, axis=2).astype(np.uint8)
    room[100:, 260:380] = 70
    return room


def lit_for_a_moment(index: int) -> media.Image:
    """Black but for a lit figure in the middle for a tenth of the clip."""
    frame = np.zeros((H, W, 3), np.uint8)
    if 0.4 * FRAMES <= index < 0.5 * FRAMES:
        frame[100:, 260:380] = 200
    return frame


def small_light(index: int) -> media.Image:
    """Black all along but for a small lit thing in the middle (a lamp on a dark stage)."""
    frame = np.zeros((H, W, 3), np.uint8)
    frame[150:210, 270:370] = 200
    return frame


def black_sky(index: int) -> media.Image:
    """A lit scene under a black band along the top edge only."""
    frame = scene(W, H)(index).copy()
    frame[:120] = 0
    return frame


def black_clad_speaker(index: int) -> media.Image:
    """A lit room with a speaker in black against the left and bottom edges."""
    room = scene(W, H)(index).copy()
    room[150:, :160] = 4  # black clothes
    room[60:150, 40:120] = 180  # head
    return room


CLIPS: dict[str, Callable[[int], media.Image]] = {
    "pillar": media.boxed(scene(480, 360), W, H, 80, 0),
    "letter": media.boxed(scene(640, 268), W, H, 0, 46),
    "windowed": media.boxed(scene(480, 268), W, H, 80, 46),
    "pillar_fading": fading(media.boxed(scene(480, 360), W, H, 80, 0)),
    "plain": scene(W, H),
    "fading": fading(scene(W, H)),
    "dark_then_lit": dark_then_lit,
    "black_clad_speaker": black_clad_speaker,
    "lit_for_a_moment": lit_for_a_moment,
    "small_light": small_light,
    "black_sky": black_sky,
    "tiny_bars": media.boxed(scene(632, 356), W, H, 4, 2),
    "dark_edge": scene(W, H, low=0, grain=0),
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The 1 s 640x360 clip named in :data:`CLIPS`, encoded once."""
    root = tmp_path_factory.mktemp("letterbox")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = media.write_video(
                root / f"{name}.mp4", CLIPS[name], width=W, height=H, duration=FRAMES / 30
            )
        return made[name]

    return get


def black_rows(luma: np.ndarray) -> list[int]:
    """Rows of a picture that are black at the left or right edge or all along (bars).

    ``luma`` is decoded as full-range grey, where black is 0.
    """
    rows = luma.astype(np.float64)
    left, right, whole = rows[:, :4].mean(axis=1), rows[:, -4:].mean(axis=1), rows.mean(axis=1)
    return [int(y) for y in np.flatnonzero(np.minimum(np.minimum(left, right), whole) < 32)]


def middle_frame(path: Path) -> np.ndarray:
    _, frames = media.decode_gray(path)
    return frames[len(frames) // 2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pillar", PILLAR),
        ("letter", LETTER),
        ("windowed", WINDOWED),
        ("pillar_fading", PILLAR),
    ],
)
def test_bars_are_found(clip: Callable[[str], Path], name: str, expected: Window) -> None:
    assert detect_content(clip(name)) == expected


@pytest.mark.parametrize(
    "name",
    [
        "plain",
        "fading",
        "dark_then_lit",
        "lit_for_a_moment",
        "small_light",
        "black_sky",
        "black_clad_speaker",
        "tiny_bars",
        "dark_edge",
    ],
)
def test_pictures_without_bars_give_the_whole_frame(clip: Callable[[str], Path], name: str) -> None:
    # "dark_edge" darkens smoothly to black at the left: near-black columns, but no edge
    assert detect_content(clip(name)) == Window(0, 0, W, H)


def test_black_clip_gives_the_whole_frame(dark_clip: Path) -> None:
    assert detect_content(dark_clip) == Window(0, 0, W, H)  # nothing shows: nothing to tell


@pytest.mark.parametrize("name", ["pillar", "letter"])
@pytest.mark.parametrize("kind", ["full", "stacked", "blurred"])
def test_rendered_panels_show_no_bars(
    clip: Callable[[str], Path], tmp_path: Path, name: str, kind: LayoutKind
) -> None:
    # The crop pushed to the left edge would take in a pillar bar; a letterbox's bars
    # fall inside any window of the frame's height, and inside the blurred layout's fill.
    out = tmp_path / "short.mp4"
    layout = Layout(kind, **SMALL)
    klipmedia.render_short(
        clip(name), out, layout=layout, crop_path=CropPath.fixed(0.0), encode=FAST
    )
    assert black_rows(middle_frame(out)) == []


def test_crop_reaches_the_edge_of_the_picture(clip: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "short.mp4"
    layout = Layout("full", **SMALL)
    klipmedia.render_short(
        clip("pillar"), out, layout=layout, crop_path=CropPath.fixed(0.0), encode=FAST
    )
    row = middle_frame(out)[320].astype(np.float64)
    width, _ = window_size(PILLAR.width, PILLAR.height, Fraction(9, 16))
    picture = scene(480, 360)(0)[:, :, 0].astype(np.float64)  # grey: luma as full-range grey
    # the panel's first and last columns are the picture's first and last window columns
    expected_left = picture[:, :8].mean()
    expected_right = picture[:, width - 8 : width].mean()
    assert row[:8].mean() == pytest.approx(expected_left, abs=6)
    assert row[-8:].mean() == pytest.approx(expected_right, abs=6)


def test_render_logs_the_box_and_takes_a_known_one_or_the_frame(
    clip: Callable[[str], Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, out = clip("pillar"), tmp_path / "short.mp4"
    layout = Layout("full", **SMALL)
    edge = CropPath.fixed(0.0)
    with caplog.at_level(logging.INFO, logger="klipmedia.render"):
        klipmedia.render_short(source, out, layout=layout, crop_path=edge, encode=FAST)
    assert str(PILLAR) in caplog.text
    klipmedia.render_short(source, out, layout=layout, crop_path=edge, content=PILLAR, encode=FAST)
    assert black_rows(middle_frame(out)) == []
    klipmedia.render_short(source, out, layout=layout, crop_path=edge, content="frame", encode=FAST)
    assert len(black_rows(middle_frame(out))) == 640  # the old behaviour: a bar down the left


def test_a_bad_known_box_is_refused(clip: Callable[[str], Path]) -> None:
    info = klipmedia.probe(clip("plain"))
    for box in (Window(1, 0, 100, 100), Window(600, 0, 100, 100), Window(0, 0, 0, 100)):
        with pytest.raises(KlipmediaError, match="content box"):
            resolve_content(info, box)
    with pytest.raises(KlipmediaError, match="'detect' or 'frame'"):
        resolve_content(info, "auto")  # type: ignore[arg-type]


def test_window_is_sized_and_placed_inside_the_picture() -> None:
    pillar = Window(240, 0, 1440, 1080)
    size = window_size(1920, 1080, Fraction(9, 16), pillar)
    assert size == (606, 1080)
    assert place_window(1920, 1080, size, 0.0, pillar).x == 240
    assert place_window(1920, 1080, size, 1.0, pillar).x == 240 + 1440 - 606
    assert place_window(1920, 1080, size, 0.5, pillar).x == 656
    letter = Window(0, 138, 1920, 804)
    size = window_size(1920, 1080, Fraction(9, 16), letter)
    assert size == (452, 804)
    assert place_window(1920, 1080, size, 0.5, letter) == Window(734, 138, 452, 804)


def test_picture_narrower_than_the_window_is_centred_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = Window(656, 0, 608, 1080)  # a vertical video pillarboxed in 16:9
    with caplog.at_level(logging.INFO, logger="klipmedia.crop"):
        size = window_size(1920, 1080, Fraction(9, 8), phone)
    assert size == (1214, 1080)  # keeps the picture's height, takes in side bars
    assert "takes in side bars" in caplog.text
    for center in (0.0, 0.5, 1.0):
        assert place_window(1920, 1080, size, center, phone) == Window(352, 0, 1214, 1080)
    # a window too wide even for the frame is cut from the picture instead
    assert window_size(1920, 1080, Fraction(1080, 576), Window(240, 0, 1440, 1080)) == (1440, 768)


FACE_X = 70
"""The face's centre, in pixels of the 4:3 picture (150 px from the frame's left edge)."""


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of a face near the left edge of a 4:3 picture pillarboxed in 16:9."""
    pytest.importorskip("skimage", reason="needs scikit-image for the face photo")
    from tests.klipmedia.facegen import Placement, write_clip

    root = tmp_path_factory.mktemp("letterbox_face")
    picture = write_clip(
        root / "picture.mp4",
        layout=lambda t: [Placement(FACE_X, 170, 0.9)],
        duration=2.0,
        size=(PILLAR.width, PILLAR.height),
    )
    with av.open(str(picture)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    boxed = media.boxed(lambda index: frames[index], W, H, PILLAR.x, PILLAR.y)
    return media.write_video(root / "pillar.mp4", boxed, width=W, height=H, duration=2.0)


def test_face_following_crop_keeps_the_face_and_no_bar(face_clip: Path, tmp_path: Path) -> None:
    pytest.importorskip("cv2", reason="needs the reframe extra (opencv-python-headless<5)")
    from klipmedia.faces import HaarFaceDetector
    from klipmedia.reframe import face_path

    path = face_path(face_clip, aspect=Fraction(9, 16))
    out = tmp_path / "short.mp4"
    klipmedia.render_short(
        face_clip, out, layout=Layout("full", **SMALL), crop_path=path, encode=FAST
    )
    with av.open(str(out)) as container:
        frame = list(container.decode(video=0))[30]
    luma = frame.to_ndarray(format="gray").astype(np.float64)
    assert min(luma[:, :4].mean(), luma[:, -4:].mean()) > 32  # no bar down either side
    faces = HaarFaceDetector().detect(frame)
    assert len(faces) == 1
    assert 0.2 * SMALL["width"] < faces[0].center_x < 0.8 * SMALL["width"]


def test_faces_are_found_in_picture_pixels(face_clip: Path) -> None:
    pytest.importorskip("cv2", reason="needs the reframe extra (opencv-python-headless<5)")
    from klipmedia.reframe import analyse

    analysis = analyse(face_clip, content=PILLAR)
    assert (analysis.width, analysis.height) == (PILLAR.width, PILLAR.height)
    centres = [face.center_x for sample in analysis.samples for face in sample.faces]
    assert len(centres) >= 5
    assert np.median(centres) == pytest.approx(FACE_X, abs=8)
