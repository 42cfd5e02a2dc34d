"""A recording whose picture stops before its sound: shorts come only from where there is a
picture to crop, instead of the cut failing on a moment after the last frame."""

from __future__ import annotations

from pathlib import Path

import pytest

import klipmedia
from klippers.asr.transcript import Sentence, Transcript
from klippers.contract import ShortsConfig, VideoRef
from klippers.jobs import parent
from klippers.storage import LocalStorage
from tests.support.talk import picture_stops_early
from tests.support.whisper_models import ct2_tiny_en_path

PICTURE_S = 25.0
REF = VideoRef("alice", "camera-stopped")


@pytest.fixture(scope="module")
def early(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return picture_stops_early(tmp_path_factory.mktemp("early") / "talk.webm", PICTURE_S)


def test_the_probe_finds_where_the_picture_ends_in_a_webm(early: Path) -> None:
    info = klipmedia.probe(early)
    assert info.duration == pytest.approx(PICTURE_S, abs=0.1)  # not the sound's 59.7 s


@pytest.mark.slow
def test_shorts_come_only_from_the_part_with_a_picture(
    early: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
    storage = LocalStorage(tmp_path / "warehouse")
    storage.upload(early, REF.original_video)
    config = ShortsConfig(segment_count=3, target_short_video_duration_in_seconds=8)
    storage.write_bytes(REF.shorts_config, config.to_json().encode())

    result = parent.run_parent(REF, storage, tmp_path / "work")

    assert result.segment_count >= 1
    for entry in result.segments:
        assert entry["end"] <= PICTURE_S + 0.1, entry
        cut = klipmedia.probe(storage.local_file(REF.segment_video(entry["index"])))
        assert cut.duration == pytest.approx(entry["end"] - entry["start"], abs=0.2)
    said = Transcript.from_json(storage.read_bytes(REF.original_words).decode())
    assert said.sentences[-1].end > PICTURE_S + 10, "the speech goes on after the picture"


def test_sentences_after_the_picture_are_left_out() -> None:
    sentences = tuple(Sentence(s, s + 4.0, f"sentence at {s}") for s in (0.0, 5.0, 10.0))
    transcript = Transcript("en", 20.0, sentences)
    kept = parent.within_picture(transcript, 9.5)
    assert [s.start for s in kept.sentences] == [0.0, 5.0]
    assert kept.duration == 9.5
    assert parent.within_picture(transcript, 30.0) == transcript
