from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import klipmedia
from tests.support import media


def test_thumbnail_is_the_frame_at_the_requested_time(tmp_path: Path) -> None:
    levels = [20 + 20 * i for i in range(10)]
    src = media.write_video(
        tmp_path / "s.mp4",
        media.steps(160, 90, levels),
        width=160,
        height=90,
        fps=Fraction(10),
        duration=1.0,
        gop=3,
    )
    out = klipmedia.thumbnail(src, tmp_path / "t.png", at=0.55)
    gray = np.asarray(Image.open(out).convert("L"), dtype=float)
    assert gray.shape == (90, 160)
    assert gray.mean() == pytest.approx(levels[5], abs=6)


def test_thumbnail_is_upright_and_scaled(tmp_path: Path) -> None:
    src = media.write_video(
        tmp_path / "r.mp4", media.ramp(320, 180), width=320, height=180, duration=0.5, rotation=90
    )
    out = klipmedia.thumbnail(src, tmp_path / "t.png", width=90)
    gray = np.asarray(Image.open(out).convert("L"), dtype=float)
    assert gray.shape == (160, 90)
    assert gray[5].mean() > gray[-5].mean() + 100  # the bright right edge is now on top


def test_thumbnail_of_bad_media_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 100)
    with pytest.raises(klipmedia.UnreadableMediaError):
        klipmedia.thumbnail(bad, tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()
