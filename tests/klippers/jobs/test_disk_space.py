"""The parent refuses an original too big for its scratch disk before downloading it, and
reads a local warehouse's original in place instead of copying it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from klippers.contract import EXIT_BAD_INPUT, VideoRef
from klippers.jobs.parent import run_parent
from klippers.jobs.runner import DiskSpaceError, exit_code, require_free_space
from klippers.storage import LocalStorage
from tests.support.talk import talk_video

REF = VideoRef("alice", "talk")


class RemoteLike(LocalStorage):
    """A local folder that, like S3, cannot be read in place: the parent must download."""

    def local_file(self, key: str) -> None:  # type: ignore[override]
        return None


def _warehouse(storage: LocalStorage) -> None:
    storage.upload(talk_video(), REF.original_video)
    storage.write_bytes(REF.shorts_config, json.dumps({"segment_count": 1}).encode())


def test_require_free_space_names_the_need_the_folder_and_the_remedy(tmp_path: Path) -> None:
    require_free_space(tmp_path / "not" / "yet", 1, "a file", "free some")
    with pytest.raises(DiskSpaceError, match=r"needs about .* GB of disk, .* free: free some"):
        require_free_space(tmp_path, 10**18, "a file", "free some")


def test_an_original_bigger_than_the_scratch_disk_is_refused_before_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = RemoteLike(tmp_path / "warehouse")
    _warehouse(storage)
    real = shutil.disk_usage
    monkeypatch.setattr(
        "klippers.jobs.runner.shutil.disk_usage",
        lambda path: real(path)._replace(free=100_000),
    )
    workdir = tmp_path / "work"
    with pytest.raises(DiskSpaceError, match="parentStorageGib") as caught:
        run_parent(REF, storage, workdir)
    assert exit_code(caught.value) == EXIT_BAD_INPUT
    assert not workdir.exists() or not any(workdir.iterdir())


def test_a_local_warehouse_original_is_read_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.whisper_models import ct2_tiny_en_path

    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
    storage = LocalStorage(tmp_path / "warehouse")
    _warehouse(storage)
    copied: list[str] = []
    monkeypatch.setattr(LocalStorage, "download", lambda self, key, *a, **k: copied.append(key))
    workdir = tmp_path / "work"
    result = run_parent(REF, storage, workdir)
    assert result.segment_count == 1
    assert copied == []
    assert not (workdir / "original.mp4").exists()
