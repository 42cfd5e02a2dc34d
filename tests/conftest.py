"""Shared synthetic sources (built once per session)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests.support import media

W, H = 640, 360
FPS = Fraction(30)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def ramp_clip(media_dir: Path) -> Path:
    """2 s 640x360 at 30 fps whose luma encodes x, with a steady tone."""
    return media.write_video(
        media_dir / "ramp.mp4",
        media.ramp(W, H),
        width=W,
        height=H,
        duration=2.0,
        audio=media.tone(2.0),
    )


@pytest.fixture(scope="session")
def dark_clip(media_dir: Path) -> Path:
    """3 s of flat dark frames (luma 16), silent audio: captions stand out on it."""
    return media.write_video(
        media_dir / "dark.mp4",
        media.steps(W, H, [16]),
        width=W,
        height=H,
        duration=3.0,
        audio=media.tone(3.0, beeps=[]),
    )


@pytest.fixture(scope="session")
def stepped_background(media_dir: Path) -> Path:
    """A 10-frame background whose frame i has luma 40 + 18 i, with a loud tone."""
    return media.write_video(
        media_dir / "bg.mp4",
        media.steps(320, 240, [40 + 18 * i for i in range(10)]),
        width=320,
        height=240,
        duration=10 / 30,
        audio=media.tone(10 / 30, freq=1000),
    )
