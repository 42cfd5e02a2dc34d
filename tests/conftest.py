"""Shared synthetic sources (built once per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint on loopback (moto's threaded server, any free port)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and no AWS config files: nothing here can reach real AWS."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name != "AWS_CA_BUNDLE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("VIDEO_WAREHOUSE_S3_BUCKET_NAME", raising=False)
