"""The parent refuses up front (exit 2) an attempt it is modelled not to finish within its time
limit (``KLIPPERS_PARENT_TIMEOUT_SECONDS``), counting the transcription only when it runs.

The original is the one-minute talk; its probe is made to say it lasts an hour.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from klippers.asr.transcript import Transcript
from klippers.contract import ENV_PARENT_TIMEOUT, EXIT_BAD_INPUT, VideoRef
from klippers.jobs import parent
from klippers.jobs.parent import TimeLimitError, figured_model, run_job, run_parent, time_limit
from klippers.jobs.runner import ENV_WAREHOUSE, JobInputError, exit_code
from klippers.storage import LocalStorage
from klippers.workload import (
    TASK_STARTUP_SECONDS,
    asr_cpu_per_second,
    parent_stages,
    wall_seconds,
)
from tests.support.talk import talk_video

REF = VideoRef("alice", "talk")
HOUR = 3600.0
CORES = 2
ASR_WALL = wall_seconds(HOUR * asr_cpu_per_second("tiny.en"), CORES)
"""The modelled transcription of the hour at tiny.en's speed on ``CORES`` cores."""
BETWEEN = math.ceil(TASK_STARTUP_SECONDS + ASR_WALL / 2)
"""A limit the hour fits without transcription (start, a few seconds' cut), not with it."""


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStorage:
    """A warehouse with the talk, which the parent probes as an hour long on 2 cores."""
    from tests.support.whisper_models import ct2_tiny_en_path

    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
    real = parent.probe_speech
    monkeypatch.setattr(
        parent,
        "probe_speech",
        lambda *args: dataclasses.replace(real(*args), duration=HOUR),
    )
    monkeypatch.setattr(parent, "cpu_cores", lambda: CORES)
    warehouse = LocalStorage(tmp_path / "warehouse")
    warehouse.upload(talk_video(), REF.original_video)
    _configure(warehouse, target=60)
    return warehouse


def _configure(storage: LocalStorage, target: float) -> None:
    doc = {"segment_count": 1, "target_short_video_duration_in_seconds": target}
    storage.write_bytes(REF.shorts_config, json.dumps(doc).encode())


def _contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _no_transcription(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the ASR model was loaded")

    monkeypatch.setattr(parent, "load_transcriber", refuse)


def test_a_video_too_long_for_the_limit_is_refused_before_transcribing(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_transcription(monkeypatch)
    before = _contents(storage.root)
    env = {
        **REF.env(),
        ENV_WAREHOUSE: str(storage.root),
        ENV_PARENT_TIMEOUT: str(BETWEEN),
        "KLIPPERS_WORKDIR": str(tmp_path / "work"),
    }
    with pytest.raises(TimeLimitError) as caught:
        run_job(env)

    assert exit_code(caught.value) == EXIT_BAD_INPUT
    assert _contents(storage.root) == before
    size = talk_video().stat().st_size / 1e6
    modelled = sum(
        stage.wall_seconds
        for stage in parent_stages(
            vcpu=CORES,
            original_megabytes=size,
            audio_seconds=HOUR,
            asr_model="tiny.en",
            segment_seconds=60,
            segment_megabytes=size * 60 / HOUR,
        )
    )
    message = str(caught.value)
    assert "lasts 60.0 min" in message
    assert f"modelled to take {modelled / 60:.1f} min" in message
    assert f"parentTimeoutSeconds, {ENV_PARENT_TIMEOUT}={BETWEEN})" in message
    for remedy in ("parentCpu", "shardTranscription", "asrModel"):
        assert remedy in message


def test_a_generous_limit_proceeds_and_a_rerun_is_not_charged_for_transcription(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_parent(REF, storage, tmp_path / "w1", time_limit=math.ceil(2 * HOUR))
    assert first.segment_count == 1

    _no_transcription(monkeypatch)
    _configure(storage, target=30)  # new segments, the same transcript
    second = run_parent(REF, storage, tmp_path / "w2", time_limit=BETWEEN)
    assert not second.reused

    _configure(storage, target=20)
    before = _contents(storage.root)
    too_short = math.floor(TASK_STARTUP_SECONDS / 2)
    with pytest.raises(TimeLimitError, match="nothing to transcribe"):
        run_parent(REF, storage, tmp_path / "w3", time_limit=too_short)
    assert _contents(storage.root) == before


def test_windows_merged_are_not_charged_for_transcription(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_transcription(monkeypatch)
    merged = Transcript("en", 59.667)
    monkeypatch.setattr(parent, "merged_transcript", lambda *args: merged)

    result = run_parent(REF, storage, tmp_path / "work", time_limit=BETWEEN)

    assert result.segment_count == 0
    assert Transcript.from_json(storage.read_bytes(REF.original_words).decode()) == merged


def test_without_a_limit_nothing_is_refused(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local engine sets no limit: the hour goes on even on one core."""
    monkeypatch.setattr(parent, "cpu_cores", lambda: 1)
    env = {**REF.env(), ENV_WAREHOUSE: str(storage.root), "KLIPPERS_WORKDIR": str(tmp_path)}

    assert run_job(env).segment_count == 1


@pytest.mark.parametrize(("raw", "limit"), [(None, None), ("", None), ("7200", 7200), (" 60 ", 60)])
def test_the_limit_comes_from_the_environment(raw: str | None, limit: int | None) -> None:
    env = {} if raw is None else {ENV_PARENT_TIMEOUT: raw}
    assert time_limit(env) == limit


@pytest.mark.parametrize("raw", ["0", "-5", "1.5", "two hours"])
def test_a_bad_limit_is_bad_input(raw: str) -> None:
    with pytest.raises(JobInputError, match=ENV_PARENT_TIMEOUT) as caught:
        time_limit({ENV_PARENT_TIMEOUT: raw})
    assert exit_code(caught.value) == EXIT_BAD_INPUT


@pytest.mark.parametrize(
    ("model", "figure"),
    [
        ("base", "base"),
        ("/opt/models/small.en", "small.en"),
        ("/opt/klippers/models/asr", "tiny.en"),
        ("/opt/klippers/models/base", "base"),
    ],
)
def test_a_model_is_figured_by_its_name_else_as_the_fastest(model: str, figure: str) -> None:
    assert figured_model(model) == figure
