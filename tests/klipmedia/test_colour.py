"""Colour on real encoded files: full range, BT.601 and 10-bit sources become limited BT.709."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace

import klipmedia
from klipmedia import EncodeSettings, Layout
from klipmedia.colour import OUTPUT, Colour, colour_of
from klipmedia.frames import decoded_planes, plane_view

FAST = EncodeSettings(preset="ultrafast", crf=18)
FULL = Layout("full", width=144, height=256)
STACKED = Layout("stacked", width=144, height=256)
FPS = Fraction(10)
BT709, BT470BG, SMPTE170M = 1, 5, 6  # AVColorSpace
MATRIX = {BT709: Colorspace.ITU709, BT470BG: Colorspace.ITU601, SMPTE170M: Colorspace.ITU601}
BLACK, WHITE = (0, 0, 0), (255, 255, 255)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
Rgb = tuple[int, int, int]


def bands(width: int, height: int, colours: Sequence[Rgb]) -> np.ndarray:
    """An RGB picture of horizontal bands of equal height, top to bottom."""
    rows = np.linspace(0, len(colours), height, endpoint=False).astype(int)
    column = np.asarray(colours, np.uint8)[rows]
    return np.repeat(column[:, None, :], width, axis=1)


def write(
    path: Path,
    picture: np.ndarray,
    *,
    colorspace: int,
    color_range: ColorRange,
    pix_fmt: str = "yuv420p",
    duration: float = 1.0,
) -> Path:
    """Encode ``picture`` with libx264 in that matrix and range, tagging the stream so."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.height, video.width = picture.shape[:2]
        video.pix_fmt = pix_fmt
        video.codec_context.gop_size = 5
        video.codec_context.options = {"preset": "ultrafast", "crf": "12"}
        video.codec_context.colorspace = colorspace
        video.codec_context.color_range = color_range
        rgb = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame = rgb.reformat(
            format=pix_fmt, dst_colorspace=MATRIX[colorspace], dst_color_range=color_range
        )
        for index in range(round(duration * FPS)):
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


def decoded(path: Path) -> av.VideoFrame:
    """The middle frame of ``path``."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return frames[len(frames) // 2]


def luma(frame: av.VideoFrame) -> np.ndarray:
    return plane_view(frame, 0).astype(float)


def rgb709(frame: av.VideoFrame) -> np.ndarray:
    """The picture read as limited-range BT.709, as the output's tags say."""
    return frame.to_ndarray(
        format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG
    ).astype(float)


def assert_tagged_limited_bt709(path: Path) -> None:
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        tags = (context.color_range, context.colorspace, context.color_primaries, context.color_trc)
    assert context.pix_fmt == "yuv420p"
    assert tags == (ColorRange.MPEG, BT709, BT709, BT709)


@pytest.mark.parametrize("pix_fmt", ["yuvj420p", "yuv420p"])
def test_full_range_source_renders_at_limited_levels(pix_fmt: str, tmp_path: Path) -> None:
    src = write(
        tmp_path / "full.mp4",
        bands(640, 360, [BLACK, WHITE]),
        colorspace=BT709,
        color_range=ColorRange.JPEG,
        pix_fmt=pix_fmt,
    )
    out = klipmedia.render_short(src, tmp_path / "out.mp4", layout=FULL, encode=FAST).path
    y = luma(decoded(out))
    assert np.median(y[20:100, 20:-20]) == pytest.approx(16, abs=3)
    assert np.median(y[156:236, 20:-20]) == pytest.approx(235, abs=3)
    assert_tagged_limited_bt709(out)


@pytest.mark.parametrize("colorspace", [SMPTE170M, BT470BG])
def test_bt601_source_is_converted_to_bt709(colorspace: int, tmp_path: Path) -> None:
    # HD, so only the tag (not the size) says BT.601; read as BT.709 unconverted,
    # red turns orange (G +23) and green loses a sixth of its level.
    src = write(
        tmp_path / "601.mp4",
        bands(1280, 720, [RED, GREEN, BLUE]),
        colorspace=colorspace,
        color_range=ColorRange.MPEG,
    )
    out = klipmedia.render_short(src, tmp_path / "out.mp4", layout=FULL, encode=FAST).path
    rgb = rgb709(decoded(out))
    for row, colour in zip((42, 128, 213), (RED, GREEN, BLUE), strict=True):
        patch = np.median(rgb[row - 20 : row + 20, 20:-20], axis=(0, 1))
        np.testing.assert_allclose(patch, colour, atol=10, err_msg=f"band {colour}")
    assert_tagged_limited_bt709(out)


def test_full_range_background_is_converted(tmp_path: Path) -> None:
    grey = (128, 128, 128)
    src = write(
        tmp_path / "src.mp4", bands(640, 360, [grey]), colorspace=BT709, color_range=ColorRange.MPEG
    )
    background = write(
        tmp_path / "bg.mp4",
        bands(640, 360, [BLACK, WHITE]),
        colorspace=BT709,
        color_range=ColorRange.JPEG,
        pix_fmt="yuvj420p",
    )
    out = klipmedia.render_short(
        src, tmp_path / "out.mp4", background=background, layout=STACKED, encode=FAST
    ).path
    y = luma(decoded(out))
    top = STACKED.top_height
    assert np.median(y[top + 8 : top + 56, 20:-20]) == pytest.approx(16, abs=3)
    assert np.median(y[top + 72 : -8, 20:-20]) == pytest.approx(235, abs=3)


def test_ten_bit_source_renders_to_eight_bit(tmp_path: Path) -> None:
    src = write(
        tmp_path / "ten.mp4",
        bands(640, 360, [BLACK, WHITE]),
        colorspace=BT709,
        color_range=ColorRange.MPEG,
        pix_fmt="yuv420p10le",
    )
    assert klipmedia.probe(src).video_codec == "h264"
    result = klipmedia.render_short(src, tmp_path / "out.mp4", layout=FULL, encode=FAST)
    frame = decoded(result.path)
    assert (result.width, result.height) == (frame.width, frame.height) == (144, 256)
    assert frame.format.name == "yuv420p"
    y = luma(frame)
    assert np.median(y[20:100, 20:-20]) == pytest.approx(16, abs=3)
    assert np.median(y[156:236, 20:-20]) == pytest.approx(235, abs=3)


@pytest.mark.parametrize(
    ("pix_fmt", "colorspace", "color_range", "expected"),
    [
        ("yuv420p", BT709, ColorRange.MPEG, OUTPUT),
        ("yuvj420p", 2, ColorRange.UNSPECIFIED, Colour(Colorspace.ITU709, ColorRange.JPEG)),
        ("yuv420p", 2, ColorRange.JPEG, Colour(Colorspace.ITU709, ColorRange.JPEG)),
        ("yuv420p", SMPTE170M, ColorRange.MPEG, Colour(Colorspace.ITU601, ColorRange.MPEG)),
        ("yuv420p", 2, ColorRange.UNSPECIFIED, OUTPUT),
    ],
)
def test_colour_of_reads_the_tags(
    pix_fmt: str, colorspace: int, color_range: ColorRange, expected: Colour
) -> None:
    frame = av.VideoFrame(1280, 720, pix_fmt)
    frame.colorspace, frame.color_range = colorspace, color_range
    assert colour_of(frame) == expected


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 536), (720, 1280)])
def test_untagged_matrix_is_bt709_only_when_hd(width: int, height: int) -> None:
    expected = Colorspace.ITU709 if (width, height) != (640, 480) else Colorspace.ITU601
    assert colour_of(av.VideoFrame(width, height, "yuv420p")).matrix == expected


def test_decoded_planes_converts_full_range_and_views_the_output_colour() -> None:
    frame = av.VideoFrame(64, 32, "yuv420p")
    frame.colorspace, frame.color_range = BT709, ColorRange.JPEG
    for index, level in enumerate((0, 128, 128)):
        plane_view(frame, index)[...] = level
    plane_view(frame, 0)[:, 32:] = 255
    y = decoded_planes(frame).y
    assert (int(y[:, 4].mean()), int(y[:, -4].mean())) == (16, 235)
    frame.color_range = ColorRange.MPEG
    assert np.shares_memory(decoded_planes(frame).y, plane_view(frame, 0))  # no copy


def test_a_change_of_matrix_keeps_grey_exactly() -> None:
    frame = av.VideoFrame(220, 32, "yuv420p")
    frame.colorspace, frame.color_range = SMPTE170M, ColorRange.MPEG
    ramp = np.arange(16, 236, dtype=np.uint8)
    plane_view(frame, 0)[...] = ramp
    plane_view(frame, 1)[...] = plane_view(frame, 2)[...] = 128
    planes = decoded_planes(frame)
    np.testing.assert_array_equal(planes.y, np.broadcast_to(ramp, (32, 220)))
    assert set(np.unique(planes.u)) == set(np.unique(planes.v)) == {128}


@pytest.mark.parametrize(
    ("pix_fmt", "colorspace", "color_range", "method"),
    [
        ("yuvj420p", BT709, ColorRange.JPEG, "reencode"),
        ("yuv420p", SMPTE170M, ColorRange.MPEG, "smart"),
    ],
)
def test_cut_keeps_the_source_colour_tags(
    pix_fmt: str, colorspace: int, color_range: ColorRange, method: str, tmp_path: Path
) -> None:
    src = write(
        tmp_path / "src.mp4",
        bands(320, 180, [BLACK, WHITE]),
        colorspace=colorspace,
        color_range=color_range,
        pix_fmt=pix_fmt,
        duration=2.0,
    )
    cut = klipmedia.cut_segment(src, 0.25, 1.5, tmp_path / "cut.mp4")
    assert cut.method == method
    with av.open(str(cut.path)) as container:
        tags = {(f.colorspace, f.color_range) for f in container.decode(video=0)}
    assert tags == {(colorspace, color_range)}
