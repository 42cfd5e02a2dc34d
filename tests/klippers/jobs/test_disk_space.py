"""The parent refuses an original too big for its scratch disk before downloading it, and one
whose decoded audio does not fit before decoding it; it reads a local warehouse's original in
place instead of copying it. The local engine refuses before copying the original."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import klipmedia
from klippers.asr.transcribe import decode_audio
from klippers.contract import EXIT_BAD_INPUT, VideoRef
from klippers.jobs import parent
from klippers.jobs.parent import (
    DECODED_AUDIO_BYTES_PER_SECOND,
    DISK_PER_ORIGINAL_BYTE,
    TimeLimitError,
    run_parent,
)
from klippers.jobs.runner import DiskSpaceError, exit_code, require_free_space
from klippers.local import SHORTS_DISK_RESERVE, RunOptions, prepare_inputs
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


def _free_space(monkeypatch: pytest.MonkeyPatch, free: Callable[[], int]) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(
        "klippers.jobs.runner.shutil.disk_usage",
        lambda path: real(path)._replace(free=free()),
    )


def _audio_bytes() -> int:
    return math.ceil(klipmedia.probe(talk_video()).duration * DECODED_AUDIO_BYTES_PER_SECOND)


def test_require_free_space_names_the_need_the_folder_and_the_remedy(tmp_path: Path) -> None:
    require_free_space([(tmp_path / "not" / "yet", 1)], "a file", "free some")
    with pytest.raises(DiskSpaceError, match=r"needs about .* GB of disk, .* free: free some"):
        require_free_space([(tmp_path, 10**18)], "a file", "free some")


def test_needs_on_one_disk_add_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _free_space(monkeypatch, lambda: 3 * 10**9)
    (tmp_path / "a").mkdir()
    require_free_space([(tmp_path / "a", 2 * 10**9)], "a file", "free some")
    with pytest.raises(DiskSpaceError, match=r"needs about 4\.0 GB of disk, but .* 3\.0 GB free"):
        require_free_space([(tmp_path / "a", 2 * 10**9), (tmp_path / "b", 2 * 10**9)], "two", "")


def test_an_original_bigger_than_the_scratch_disk_is_refused_before_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = RemoteLike(tmp_path / "warehouse")
    _warehouse(storage)
    _free_space(monkeypatch, lambda: 100_000)
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


@pytest.mark.parametrize("short", [1, 0])
def test_the_decoded_audio_counts_before_it_is_decoded(
    short: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original and its segments fit, not with the audio too (one byte short): refused
    once the download tells the duration, before decoding. With that byte, the parent goes
    on (to be stopped by a time limit of one second)."""
    storage = RemoteLike(tmp_path / "warehouse")
    _warehouse(storage)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    workdir = tmp_path / "work"
    size = talk_video().stat().st_size
    budget = math.ceil(size * DISK_PER_ORIGINAL_BYTE) + _audio_bytes() - short
    _free_space(monkeypatch, lambda: budget - sum(p.stat().st_size for p in workdir.rglob("*")))
    decoded: list[Path] = []

    def decode(path: Path) -> np.ndarray:
        decoded.append(path)
        return decode_audio(path)

    monkeypatch.setattr(parent, "decode_audio", decode)

    expected = DiskSpaceError if short else TimeLimitError
    with pytest.raises(expected) as caught:
        run_parent(REF, storage, workdir, time_limit=1)

    assert exit_code(caught.value) == EXIT_BAD_INPUT
    assert (workdir / "original.mp4").exists()
    assert len(decoded) == 1 - short
    if short:
        assert "decoded for transcription" in str(caught.value)
        assert "parentStorageGib" in str(caught.value)


@pytest.mark.parametrize("short", [1, 0])
def test_the_local_engine_counts_the_decoded_audio_before_copying(
    short: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    storage = LocalStorage(tmp_path / "out")
    need = talk_video().stat().st_size + SHORTS_DISK_RESERVE + _audio_bytes()
    _free_space(monkeypatch, lambda: need - short)

    if short:
        with pytest.raises(DiskSpaceError, match="with its audio decoded"):
            prepare_inputs(storage, REF, talk_video(), RunOptions())
        assert not storage.exists(REF.original_video)
    else:
        prepare_inputs(storage, REF, talk_video(), RunOptions())
        assert storage.exists(REF.original_video)
