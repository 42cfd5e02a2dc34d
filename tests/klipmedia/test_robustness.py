"""The complaints users have about today's tools: drift, memory on long videos, stuck jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

import klipmedia
from klipmedia.pipeline import prefetched
from tests.support import media

NTSC = Fraction(30000, 1001)
BEEPS = [1.0, 6.0, 11.5]
FAST = klipmedia.EncodeSettings(preset="ultrafast")


@pytest.fixture(scope="module")
def long_ntsc_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "ntsc.mp4"
    return media.write_video(
        path,
        media.flashes(320, 180, NTSC, BEEPS),
        width=320,
        height=180,
        fps=NTSC,
        duration=12.0,
        audio=media.tone(12.0, beeps=BEEPS),
    )


@pytest.mark.slow
def test_no_drift_over_a_long_ntsc_clip(long_ntsc_clip: Path, tmp_path: Path) -> None:
    out = klipmedia.render_short(long_ntsc_clip, tmp_path / "o.mp4", layout="full", encode=FAST)
    assert out.fps == NTSC
    times, frames = media.decode_gray(out.path)
    flash_times = [t for t, f in zip(times, frames, strict=True) if f[960, 540] > 128]
    start, samples = media.decode_audio(out.path)
    heard = media.onsets(samples, start)
    assert len(flash_times) == len(heard) == 3
    for seen, beep in zip(flash_times, heard, strict=True):
        assert abs(seen - beep) <= float(1 / NTSC)
    assert len(samples) / media.RATE == pytest.approx(out.duration, abs=float(1 / NTSC))


def peak_rss_mb(source: Path, out: Path) -> float:
    code = (
        "import klipmedia, sys; klipmedia.render_short(sys.argv[1], sys.argv[2], "
        "layout='stacked', encode=klipmedia.EncodeSettings(preset='ultrafast'))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(source), str(out)])
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0
    return usage.ru_maxrss / 1024


@pytest.mark.slow
def test_memory_does_not_grow_with_video_length(long_ntsc_clip: Path, tmp_path: Path) -> None:
    short = media.write_video(
        tmp_path / "short.mp4",
        media.flashes(320, 180, NTSC, [0.5]),
        width=320,
        height=180,
        fps=NTSC,
        duration=2.0,
        audio=media.tone(2.0),
    )
    short_peak = peak_rss_mb(short, tmp_path / "a.mp4")
    long_peak = peak_rss_mb(long_ntsc_clip, tmp_path / "b.mp4")
    # Six times the frames, same memory: frames stream through, nothing accumulates.
    assert long_peak < short_peak + 40, (short_peak, long_peak)


def test_producer_errors_reach_the_consumer() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise klipmedia.UnreadableMediaError("broken frame")

    with (
        pytest.raises(klipmedia.UnreadableMediaError, match="broken frame"),
        prefetched(failing(), depth=2) as items,
    ):
        list(items)


def test_stopping_early_ends_the_producer_thread() -> None:
    def endless() -> Iterator[int]:
        n = 0
        while True:
            n += 1
            yield n

    before = threading.active_count()
    with prefetched(endless(), depth=2) as items:
        assert next(iter(items)) == 1
    assert threading.active_count() == before


def test_broken_background_fails_instead_of_hanging(ramp_clip: Path, tmp_path: Path) -> None:
    background = tmp_path / "bg.mp4"
    background.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    out = tmp_path / "o.mp4"
    with pytest.raises(klipmedia.MediaError):
        klipmedia.render_short(ramp_clip, out, background=background, encode=FAST)
    assert not out.exists()
