"""One media timeline whatever the file's own timestamps: cuts on shifted real files.

Time 0 is the first video frame (:func:`klipmedia.probe.timeline_origin`): a file whose
timestamps start at 15 s (MP4 with an edit list) or 16.4 s (MPEG-TS), or whose audio starts
before or after the picture, is cut at
the same frames, with the same beeps, as the unshifted file.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from klipmedia.cut import cut_segment
from klipmedia.probe import probe, timeline_origin
from tests.klipmedia.test_cut import CLOSED_GOPS, FPS, _check_cut, _make_source
from tests.support.remux import shifted


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s, 30 fps, frames showing their index, a beep at every whole second."""
    return _make_source(tmp_path_factory.mktemp("origin") / "source.mp4", CLOSED_GOPS)


SHIFTS = [
    pytest.param(15.0, 0.0, "mp4", id="mp4-from-15s"),
    pytest.param(16.4, 0.0, "mpegts", id="mpegts-from-16.4s"),
    pytest.param(3.0, -0.4, "mp4", id="audio-before-video"),
    pytest.param(3.0, 0.4, "mp4", id="audio-after-video"),
]


def _shifted(source: Path, folder: Path, offset: float, audio: float, fmt: str) -> Path:
    suffix = ".ts" if fmt == "mpegts" else ".mp4"
    return shifted(source, folder / f"shifted{suffix}", offset, audio_offset=audio, fmt=fmt)


@pytest.mark.parametrize(("offset", "audio", "fmt"), SHIFTS)
def test_the_origin_is_the_first_video_frame(
    source: Path, tmp_path: Path, offset: float, audio: float, fmt: str
) -> None:
    moved = _shifted(source, tmp_path, offset, audio, fmt)
    with av.open(str(moved)) as container:
        assert timeline_origin(container) == pytest.approx(offset, abs=1e-3)
    assert probe(moved).start_time == pytest.approx(offset, abs=1e-3)
    assert probe(moved).duration == pytest.approx(probe(source).duration, abs=1 / FPS)


@pytest.mark.parametrize(("offset", "audio", "fmt"), SHIFTS)
@pytest.mark.parametrize(("start", "end"), [(0.0, 2.5), (4.3, 7.0), (9.5, 11.5)])
def test_cuts_of_a_shifted_file_hold_the_same_frames_and_beeps(
    source: Path, tmp_path: Path, offset: float, audio: float, fmt: str, start: float, end: float
) -> None:
    """Frames ``[start, end)`` of the timeline, audio in sync within one frame."""
    moved = _shifted(source, tmp_path, offset, audio, fmt)
    result = cut_segment(moved, start, end, tmp_path / "cut.mp4")
    assert result.start == pytest.approx(round(start * FPS) / FPS, abs=1e-6)
    _check_cut(tmp_path / "cut.mp4", start, end, audio_shift=audio)
