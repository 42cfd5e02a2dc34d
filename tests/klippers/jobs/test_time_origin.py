"""The parent job on files whose timestamps do not start at 0 (MP4 offsets, an MPEG-TS
clock at 16.4 s): each segment holds exactly the speech its manifest entry says, from its
first words to its last, with audio and video in step."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import av
import pytest

from klippers.asr.transcribe import transcribe_file
from klippers.contract import VideoRef
from klippers.jobs.parent import run_parent
from klippers.storage import LocalStorage
from tests.support.remux import shifted
from tests.support.talk import talk_video
from tests.support.whisper_models import ct2_tiny_en_path

pytestmark = pytest.mark.slow

REF = VideoRef("creator", "talk")
CONFIG = {"segment_count": 2, "target_short_video_duration_in_seconds": 20}


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))


def _manifest(video: Path, folder: Path) -> tuple[LocalStorage, dict[str, Any]]:
    storage = LocalStorage(folder / "warehouse")
    storage.upload(video, REF.original_video)
    storage.write_bytes(REF.shorts_config, json.dumps(CONFIG).encode())
    run_parent(REF, storage, folder / "work")
    return storage, json.loads(storage.read_bytes(REF.manifest))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _word_errors(reference: list[str], hypothesis: list[str]) -> float:
    """Word error rate by edit distance."""
    row = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hypothesis, start=1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word)),
            )
    return row[-1] / max(1, len(reference))


def _stream_spans(path: Path) -> dict[str, tuple[float, float]]:
    """(start, end) seconds of the video and audio streams as a player reads them."""
    spans = {}
    with av.open(str(path)) as container:
        for stream in (container.streams.video[0], container.streams.audio[0]):
            start = float(stream.start_time * stream.time_base)
            spans[stream.type] = (start, start + float(stream.duration * stream.time_base))
    return spans


@pytest.mark.parametrize(
    ("offset", "fmt"),
    [(1.3, "mp4"), (16.4, "mpegts")],
    ids=["mp4-from-1.3s", "mpegts-from-16.4s"],
)
def test_segments_of_a_shifted_file_hold_what_the_manifest_says(
    tmp_path: Path, offset: float, fmt: str
) -> None:
    moved = shifted(talk_video(), tmp_path / f"talk.{fmt}", offset, fmt=fmt)
    storage, manifest = _manifest(moved, tmp_path)
    frame = 1 / 15  # the talk's frame rate
    assert manifest["segment_count"] == 2
    for entry in manifest["segments"]:
        segment = storage.root / REF.key(entry["files"]["video"])
        said, heard = _words(entry["text"]), _words(transcribe_file(segment, language="en").text)
        assert _word_errors(said, heard) <= 0.2, (said, heard)
        assert (heard[:2], heard[-2:]) == (said[:2], said[-2:])
        spans = _stream_spans(segment)
        assert spans["video"][0] == pytest.approx(0.0, abs=1e-3)
        assert spans["audio"][0] == pytest.approx(spans["video"][0], abs=frame)
        assert spans["audio"][1] == pytest.approx(spans["video"][1], abs=frame)
