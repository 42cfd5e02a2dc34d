from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

import klipmedia
from klipmedia.errors import (
    EmptyMediaError,
    MediaNotFoundError,
    NoVideoStreamError,
    UnreadableMediaError,
)
from tests.support import media


def test_probe_reports_stream_facts(ramp_clip: Path) -> None:
    info = klipmedia.probe(ramp_clip)
    assert (info.width, info.height) == (640, 360)
    assert info.fps == Fraction(30)
    assert isinstance(info.fps, Fraction)
    assert info.duration == pytest.approx(2.0, abs=1 / 30)
    assert info.rotation == 0
    assert info.video_codec == "h264"
    assert info.has_audio
    assert info.audio_codec == "aac"
    assert info.audio_sample_rate == 48000


def test_probe_reads_rotation_and_display_size(tmp_path: Path) -> None:
    path = media.write_video(
        tmp_path / "rot.mp4", media.ramp(320, 240), width=320, height=240, duration=0.5, rotation=90
    )
    info = klipmedia.probe(path)
    assert info.rotation == 90
    assert (info.display_width, info.display_height) == (240, 320)
    assert not info.has_audio
    assert info.audio_codec is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFoundError, match="no such file"):
        klipmedia.probe(tmp_path / "nope.mp4")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(EmptyMediaError, match="empty"):
        klipmedia.probe(path)


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"this is not a video at all" * 100)
    with pytest.raises(UnreadableMediaError):
        klipmedia.probe(path)


def test_truncated_file(ramp_clip: Path, tmp_path: Path) -> None:
    data = ramp_clip.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(UnreadableMediaError):
        klipmedia.probe(path)


def test_audio_only_file(tmp_path: Path) -> None:
    import av

    path = tmp_path / "audio.m4a"
    samples = media.tone(0.5)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                samples[:, start : start + 1024].copy(), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = 48000, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        klipmedia.probe(path)


def test_errors_are_catchable_as_one_family(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(klipmedia.KlipmediaError):
        klipmedia.probe(path)
