"""The real shard job on a generated talk: two windows, merged by the parent, match one pass."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    transcribed = []
    real = shard.load_transcriber
    monkeypatch.setattr(shard, "load_transcriber", lambda *a: transcribed.append(a) or real(*a))

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
