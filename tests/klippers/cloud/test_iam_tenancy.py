"""Tenancy: a config's ``background_video`` reaches only its video's folder or ``backgrounds/``.

The child role may read exactly those places (``test_iam_policies``); here the contract
refuses every other key before a job touches storage, and the jobs fail as bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from klippers.contract import (
    EXIT_BAD_INPUT,
    ContractError,
    ShortsConfig,
    VideoRef,
    background_key,
)
from klippers.jobs import child, parent
from klippers.jobs.runner import JobInputError, exit_code
from klippers.storage import LocalStorage

REF = VideoRef("alice", "talk")


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("bg.mp4", "klippers_warehouse/alice/talk/bg.mp4"),
        ("loops/bg.mp4", "klippers_warehouse/alice/talk/loops/bg.mp4"),
        ("klippers_warehouse/alice/talk/bg.mp4", "klippers_warehouse/alice/talk/bg.mp4"),
        ("backgrounds/minecraft.mp4", "backgrounds/minecraft.mp4"),
        ("backgrounds/loops/rain.mp4", "backgrounds/loops/rain.mp4"),
    ],
)
def test_a_background_resolves_in_the_video_folder_or_the_shared_library(
    value: str, key: str
) -> None:
    assert background_key(REF, value) == key


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("klippers_warehouse/bob/talk/original.mp4", "not in another user's or video's folder"),
        ("klippers_warehouse/alice/other-talk/bg.mp4", "not in another user's or video's folder"),
        ("klippers_warehouse/alice/talk-2/bg.mp4", "not in another user's or video's folder"),
        ("../../bob/talk/original.mp4", "'..'"),
        ("backgrounds/../klippers_warehouse/bob/talk/original.mp4", "'..'"),
        ("/klippers_warehouse/bob/talk/original.mp4", "relative key"),
        ("s3://other-bucket/bg.mp4", "not a URL"),
        ("https://example.com/bg.mp4", "not a URL"),
        ("file:///etc/passwd", "not a URL"),
        ("C:\\videos\\bg.mp4", "not a URL"),
        ("loops\\bg.mp4", "relative key"),
        ("backgrounds/", "empty or '.'"),
        ("./bg.mp4", "empty or '.'"),
        ("a//bg.mp4", "empty or '.'"),
        ("bg\n.mp4", "control characters"),
    ],
)
def test_any_other_background_is_refused_naming_the_field(value: str, problem: str) -> None:
    with pytest.raises(ContractError, match=r"^shorts_config.json: background_video: ") as refused:
        background_key(REF, value)
    assert problem in str(refused.value)


def test_the_config_is_checked_against_its_location() -> None:
    foreign = {"segment_count": 1, "background_video": "klippers_warehouse/bob/talk/x.mp4"}
    ShortsConfig.from_dict(foreign)  # which video it belongs to is not known yet
    with pytest.raises(ContractError, match="background_video: must be in this video's folder"):
        ShortsConfig.from_dict(foreign, ref=REF)
    shared = {"segment_count": 1, "background_video": "backgrounds/loop.mp4"}
    assert ShortsConfig.from_dict(shared, ref=REF).background_video == "backgrounds/loop.mp4"


def _warehouse(tmp_path: Path, background: str) -> LocalStorage:
    storage = LocalStorage(tmp_path / "warehouse")
    config = {"segment_count": 1, "background_video": background}
    storage.write_bytes(REF.shorts_config, json.dumps(config).encode())
    return storage


def test_the_jobs_refuse_another_users_background_as_bad_input(tmp_path: Path) -> None:
    storage = _warehouse(tmp_path, "klippers_warehouse/bob/talk/original.mp4")
    storage.write_bytes("klippers_warehouse/bob/talk/original.mp4", b"bob's video")
    for job in (
        lambda: parent.run_parent(REF, storage, tmp_path / "p"),
        lambda: child.run_child(REF, 1, storage, tmp_path / "c"),
    ):
        with pytest.raises(ContractError, match="background_video") as refused:
            job()
        assert exit_code(refused.value) == EXIT_BAD_INPUT


def test_a_missing_shared_background_is_named(tmp_path: Path) -> None:
    storage = _warehouse(tmp_path, "backgrounds/gone.mp4")
    manifest = {"segment_count": 1, "segments": [{"index": 1, "reframe": "face"}]}
    storage.write_bytes(REF.manifest, json.dumps(manifest).encode())
    with pytest.raises(JobInputError, match=r"background_video 'backgrounds/gone.mp4': .*gone"):
        child.run_child(REF, 1, storage, tmp_path / "c")
