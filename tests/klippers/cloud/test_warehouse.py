"""``klip cloud upload``'s storage side on a local warehouse: merging, order, re-uploads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from klippers.cloud.clients import CloudInputError
from klippers.cloud.warehouse import (
    DEFAULT_SHORTS,
    ConfigChanges,
    merged_config,
    upload,
)
from klippers.contract import UPLOADED_BACKGROUND, ShortsConfig, VideoRef
from klippers.storage import LocalStorage, Progress, StorageError
from tests.support import media

REF = VideoRef("alice", "talk")


class Recording(LocalStorage):
    """A local warehouse that records its writes and can fail one of them."""

    def __init__(self, root: Path, fail_on: str | None = None) -> None:
        super().__init__(root)
        self.writes: list[str] = []
        self.fail_on = fail_on

    def _write(self, key: str) -> None:
        if key == self.fail_on:
            raise StorageError(f"{key}: refused by the test")
        self.writes.append(key)

    def upload(self, src: Path, key: str, progress: Progress | None = None) -> None:
        self._write(key)
        super().upload(src, key, progress)

    def write_bytes(self, key: str, data: bytes) -> None:
        self._write(key)
        super().write_bytes(key, data)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different talks and a background, 1 s each."""
    folder = tmp_path_factory.mktemp("warehouse-media")
    return {
        name: media.write_video(
            folder / f"{name}.mp4", make(96, 64), width=96, height=64, duration=1.0
        )
        for name, make in (
            ("talk", media.ramp),
            ("other", lambda w, h: media.steps(w, h, [30, 200])),
            ("loop", lambda w, h: media.steps(w, h, [90])),
        )
    }


def _config(storage: LocalStorage) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(storage.read_bytes(REF.shorts_config))
    return doc


def test_merge_keeps_what_is_not_set_and_sets_the_location() -> None:
    stored = {
        "segment_count": 6,
        "layout": "split",
        "split": 0.4,
        "user_id": "someone-else",
        "extra": [1, 2],
    }
    config = merged_config(stored, REF, ConfigChanges(layout="full", language="fr"))
    assert config.to_dict() == {
        "segment_count": 6,
        "user_id": "alice",
        "video_id": "talk",
        "layout": "full",
        "reframe": "speaker",
        "target_short_video_duration_in_seconds": 60,
        "language": "fr",
        "split": 0.4,
        "extra": [1, 2],
    }
    assert merged_config(None, REF, ConfigChanges()).segment_count == DEFAULT_SHORTS
    assert merged_config({"segment_count": 0}, REF, ConfigChanges()).segment_count == 0
    assert merged_config({"segment_count": 6}, REF, ConfigChanges(shorts=0)).segment_count == 0


def test_merge_names_the_field_that_breaks_the_contract() -> None:
    with pytest.raises(CloudInputError, match="max_duration"):
        merged_config(
            {"segment_count": 1, "max_duration": 30}, REF, ConfigChanges(short_seconds=90)
        )
    with pytest.raises(CloudInputError, match="caption_style: unknown field"):
        merged_config(None, REF, ConfigChanges(caption_style={"size": 3}))


def test_first_upload_writes_the_config_last(tmp_path: Path, clips: dict[str, Path]) -> None:
    storage = Recording(tmp_path)
    done = upload(storage, clips["talk"], REF, ConfigChanges(shorts=2, background=clips["loop"]))
    background = REF.key(UPLOADED_BACKGROUND)
    expected = [REF.original_video, background, REF.thumbnail, REF.shorts_config]
    assert storage.writes == expected
    assert list(done.keys) == expected
    assert (done.unchanged, done.merged) == ((), False)
    assert _config(storage)["background_video"] == UPLOADED_BACKGROUND
    assert storage.read_bytes(background) == clips["loop"].read_bytes()


def test_the_same_upload_again_writes_nothing(tmp_path: Path, clips: dict[str, Path]) -> None:
    changes = ConfigChanges(shorts=2, background=clips["loop"])
    upload(LocalStorage(tmp_path), clips["talk"], REF, changes)
    storage = Recording(tmp_path)
    done = upload(storage, clips["talk"], REF, changes)
    assert storage.writes == []
    assert done.unchanged == done.keys

    changed = upload(storage, clips["talk"], REF, ConfigChanges(layout="full"))
    assert storage.writes == [REF.shorts_config]
    assert changed.merged
    assert _config(storage)["background_video"] == UPLOADED_BACKGROUND


def test_a_new_original_gets_a_new_thumbnail(tmp_path: Path, clips: dict[str, Path]) -> None:
    upload(LocalStorage(tmp_path), clips["talk"], REF, ConfigChanges())
    first = (tmp_path / REF.thumbnail).read_bytes()
    storage = Recording(tmp_path)
    done = upload(storage, clips["other"], REF, ConfigChanges())
    assert storage.writes == [REF.original_video, REF.thumbnail]  # the config is the same
    assert done.unchanged == (REF.shorts_config,)
    assert (tmp_path / REF.thumbnail).read_bytes() != first


def test_a_failed_upload_leaves_the_stored_config(tmp_path: Path, clips: dict[str, Path]) -> None:
    upload(LocalStorage(tmp_path), clips["talk"], REF, ConfigChanges(shorts=3))
    before = _config(LocalStorage(tmp_path))
    storage = Recording(tmp_path, fail_on=REF.key(UPLOADED_BACKGROUND))
    with pytest.raises(StorageError, match="refused by the test"):
        upload(storage, clips["talk"], REF, ConfigChanges(shorts=1, background=clips["loop"]))
    assert _config(storage) == before


def test_bad_input_writes_nothing(tmp_path: Path, clips: dict[str, Path]) -> None:
    storage = Recording(tmp_path / "warehouse")
    with pytest.raises(CloudInputError, match="layout"):
        upload(storage, clips["talk"], REF, ConfigChanges(layout="wide"))
    not_video = tmp_path / "loop.mp4"
    not_video.write_text("no video here")
    with pytest.raises(ValueError, match="not a readable media file"):
        upload(storage, clips["talk"], REF, ConfigChanges(background=not_video))
    assert storage.writes == []
    assert storage.list("") == []


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_stored_config_that_is_not_an_object_is_refused(
    tmp_path: Path, clips: dict[str, Path], data: bytes
) -> None:
    storage = Recording(tmp_path)
    storage.write_bytes(REF.shorts_config, data)
    with pytest.raises(CloudInputError, match="fix or delete it"):
        upload(storage, clips["talk"], REF, ConfigChanges(shorts=1))
    assert storage.writes == [REF.shorts_config]
    assert storage.read_bytes(REF.shorts_config) == data


def test_shared_background_is_named_not_uploaded(tmp_path: Path, clips: dict[str, Path]) -> None:
    storage = Recording(tmp_path)
    upload(storage, clips["talk"], REF, ConfigChanges(background="backgrounds/rain.mp4"))
    assert ShortsConfig.from_dict(_config(storage)).background_video == "backgrounds/rain.mp4"
    assert REF.key(UPLOADED_BACKGROUND) not in storage.writes
