"""The real shard job on a generated talk: two windows, merged by the parent, match one pass;
each window decodes only its own audio."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from klippers.asr.transcribe import SAMPLE_RATE, Progress, Transcriber, load_transcriber
from klippers.asr.transcript import Transcript
from klippers.contract import ShortsConfig, VideoRef
from klippers.jobs import parent, shard
from klippers.jobs.runner import JobInputError
from klippers.storage import LocalStorage
from tests.support.talk import talk_video
from tests.support.whisper_models import ct2_tiny_en_path

pytestmark = pytest.mark.slow

REF = VideoRef("alice", "long-talk")


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStorage:
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
    storage = LocalStorage(tmp_path / "warehouse")
    storage.upload(talk_video(), REF.original_video)
    config = ShortsConfig(segment_count=1, target_short_video_duration_in_seconds=20)
    storage.write_bytes(REF.shorts_config, config.to_json().encode())
    return storage


def _words(storage: LocalStorage) -> list[str]:
    text = storage.read_bytes(REF.original_words).decode()
    return [w.text.lower().strip(",.?!") for w in Transcript.from_json(text).words]


def test_two_windows_merged_by_the_parent_match_one_pass(
    warehouse: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent.run_parent(REF, warehouse, tmp_path / "single")
    single = _words(warehouse)
    for key in warehouse.list(REF.prefix):
        if key != REF.original_video and key != REF.shorts_config:
            warehouse.delete(key)
    monkeypatch.setattr(shard, "shard_count_for", lambda duration: 2)
    transcribed: list[tuple[Any, ...]] = []

    def loading(*args: Any) -> Transcriber:
        transcribed.append(args)
        return load_transcriber(*args)

    monkeypatch.setattr(shard, "load_transcriber", loading)

    plan = shard.plan_shards(REF, warehouse, tmp_path / "plan")
    reused = [shard.transcribe_shard(REF, warehouse, tmp_path / f"s{n}", n) for n in (1, 2)]
    again = shard.transcribe_shard(REF, warehouse, tmp_path / "again", 2)
    monkeypatch.setattr(parent, "load_transcriber", lambda *a: pytest.fail("not merged"))
    parent.run_parent(REF, warehouse, tmp_path / "merged")

    assert plan.shard_count == 2
    assert reused == [False, False]
    assert again
    assert len(transcribed) == 2
    merged = _words(warehouse)
    common = sum(min(single.count(w), merged.count(w)) for w in set(single))
    assert common / max(len(single), len(merged)) >= 0.9, (single, merged)
    for n in (1, 2):
        assert warehouse.exists(REF.shard_words(n))
        assert warehouse.exists(REF.shard_recipe(n))


def test_a_window_without_a_plan_or_beyond_it_is_bad_input(
    warehouse: LocalStorage, tmp_path: Path
) -> None:
    with pytest.raises(JobInputError, match="plan first"):
        shard.transcribe_shard(REF, warehouse, tmp_path, 1)
    plan = shard.plan_shards(REF, warehouse, tmp_path / "plan")
    assert plan.shard_count == 1  # a one-minute talk is transcribed in one pass
    with pytest.raises(JobInputError, match="window 1"):
        shard.transcribe_shard(REF, warehouse, tmp_path, 1)


@dataclass
class _Deaf:
    """A transcriber that hears nothing and keeps how many samples it was given."""

    heard: list[int] = field(default_factory=list)

    def transcribe(
        self, audio: np.ndarray, language: str | None = None, progress: Progress | None = None
    ) -> Transcript:
        self.heard.append(audio.size)
        return Transcript(language or "en", audio.size / SAMPLE_RATE)


class _Counted:
    """A container that adds up the seconds of audio packets demuxed from it."""

    def __init__(self, container: Any, tally: list[float]) -> None:
        self._container, self._tally = container, tally

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self._container.close()

    def demux(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for packet in self._container.demux(*args, **kwargs):
            if packet.stream.type == "audio" and packet.duration:
                self._tally.append(float(packet.duration * packet.time_base))
            yield packet


def test_a_window_decodes_only_its_own_audio(
    warehouse: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shard, "shard_count_for", lambda duration: 3)
    monkeypatch.setattr(shard, "SHARD_OVERLAP_SECONDS", 2.0)
    plan = shard.plan_shards(REF, warehouse, tmp_path / "plan")
    deaf = _Deaf()
    tally: list[float] = []  # seconds of each audio packet demuxed
    monkeypatch.setattr(shard, "load_transcriber", lambda *a: deaf)
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: _Counted(real_open(*a, **k), tally))

    decoded: list[float] = []
    for n in (1, 2, 3):
        tally.clear()
        shard.transcribe_shard(REF, warehouse, tmp_path / f"s{n}", n)
        decoded.append(sum(tally))

    assert plan.duration is not None
    assert plan.duration > 55
    for window, seconds, heard in zip(plan.windows, decoded, deaf.heard, strict=True):
        length = window.end - window.start
        assert length < 0.45 * plan.duration
        assert heard == round(window.end * SAMPLE_RATE) - round(window.start * SAMPLE_RATE)
        assert length <= seconds <= length + 1.0, (window, decoded)
