"""The split layout: two half-height panels, each its own crop path; captions at the seam."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

import klipmedia
from klipmedia import CropPath, EncodeSettings, Layout
from klipmedia.crop import place_window, window_size
from klipmedia.errors import RenderError
from tests.support import media

FAST = EncodeSettings(preset="ultrafast", crf=18)
W, H = 640, 360


def measured_window(row: object) -> tuple[float, float]:
    """Source x of the first and last column of an output row from a ramp source."""
    left, right = row[2:10].mean(), row[-10:-2].mean()  # type: ignore[index]
    return float(media.x_of_luma(left, W)), float(media.x_of_luma(right, W))


def test_each_half_shows_its_own_window(ramp_clip: Path, tmp_path: Path) -> None:
    paths = (CropPath.fixed(0.2), CropPath((0.0, 2.0), (0.5, 0.9)))
    out = klipmedia.render_short(
        ramp_clip, tmp_path / "split.mp4", layout="split", crop_path=paths, encode=FAST
    ).path
    times, frames = media.decode_gray(out)
    assert frames[0].shape == (1920, 1080)
    size = window_size(W, H, Fraction(9, 8))
    assert Layout("split").crop_aspect == Fraction(9, 8)
    for t, frame in zip(times[::15], frames[::15], strict=True):
        for row, path in ((480, paths[0]), (1440, paths[1])):
            expected = place_window(W, H, size, path.center_at(t))
            left, right = measured_window(frame[row])
            assert left == pytest.approx(expected.x, abs=6), (t, row)
            assert right == pytest.approx(expected.x + expected.width - 1, abs=6), (t, row)


def test_captions_sit_at_the_seam_inside_the_safe_area(dark_clip: Path, tmp_path: Path) -> None:
    srt = "1\n00:00:00,000 --> 00:00:03,000\nTwo people, one short, both in frame\n"
    out = klipmedia.render_short(
        dark_clip, tmp_path / "c.mp4", layout="split", captions=srt, encode=FAST
    ).path
    _, frames = media.decode_gray(out)
    rows = (frames[30] > 200).any(axis=1).nonzero()[0]
    assert rows.size
    assert rows.min() >= 0.10 * 1920
    assert rows.max() <= 0.85 * 1920
    assert rows.min() <= 960 <= rows.max()  # over the seam between the two people


def test_split_needs_two_paths_and_one_window_layouts_one(ramp_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="two crop paths"):
        klipmedia.render_short(
            ramp_clip, tmp_path / "a.mp4", layout="split", crop_path=CropPath.center()
        )
    with pytest.raises(RenderError, match="one crop path"):
        klipmedia.render_short(
            ramp_clip,
            tmp_path / "b.mp4",
            layout="full",
            crop_path=(CropPath.center(), CropPath.center()),
        )
    assert not (tmp_path / "a.mp4").exists()
