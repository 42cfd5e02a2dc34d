"""The unchanged definition executed by moto's Step Functions interpreter on loopback.

Jobs here are small stand-ins that read the task environment and write, exit or raise;
the harness turns that into the container's exit code and the ECS task description AWS
reports. The real parent and child jobs plug into the same ``Harness.jobs`` hooks.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from klippers import aws
from klippers import statemachine as sm
from klippers.cloud import cost
from klippers.cloud.executions import describe_cause, job_failures
from klippers.contract import (
    ENV_BUCKET,
    ENV_SEGMENT,
    ENV_SHARD,
    EXIT_BAD_INPUT,
    EXIT_TRANSIENT,
    ContractError,
    ShortsConfig,
    VideoRef,
    parse_segment,
)
from tests.klippers.sfn_harness import (
    BUCKET,
    CHILD_FAMILY,
    NAMES,
    PARENT_FAMILY,
    SHARD_FAMILY,
    SIGTERM_EXIT,
    SPOT_STOPPED_REASON,
    STOPPED_REASON,
    Execution,
    Harness,
    NeverStarted,
    SpotInterrupted,
    moto_cloud,
)

pytestmark = pytest.mark.slow

REF = VideoRef("user-1", "talk-7")
Job = Callable[[Mapping[str, str]], None]


@pytest.fixture(scope="module")
def server() -> Iterator[Harness]:
    with moto_cloud() as harness:
        yield harness


@pytest.fixture
def cloud(server: Harness) -> Harness:
    server.reset()
    return server


def _parent_writing(cloud: Harness, config: str | None) -> None:
    def parent(env: Mapping[str, str]) -> None:
        ref = VideoRef.from_env(env)
        if config is not None:
            cloud.client("s3").put_object(
                Bucket=env[ENV_BUCKET], Key=ref.shorts_config, Body=config
            )

    cloud.jobs[PARENT_FAMILY] = parent


def _child_writing(cloud: Harness, pause: float = 0.0, failing: Mapping[int, Job] = {}) -> None:
    """Children that write their short, except those of ``failing`` segments."""

    def child(env: Mapping[str, str]) -> None:
        segment = parse_segment(env[ENV_SEGMENT])
        if segment in failing:
            failing[segment](env)
            return
        time.sleep(pause)
        key = VideoRef.from_env(env).short_video(segment)
        cloud.client("s3").put_object(Bucket=env[ENV_BUCKET], Key=key, Body=b"short")

    cloud.jobs[CHILD_FAMILY] = child


def _keys(cloud: Harness) -> set[str]:
    listed = cloud.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=REF.prefix)
    return {item["Key"] for item in listed.get("Contents", [])}


def _run(cloud: Harness) -> Execution:
    return cloud.execute(sm.execution_input(REF))


def _history(cloud: Harness, result: Execution) -> list[dict[str, Any]]:
    pages = cloud.client("stepfunctions").get_paginator("get_execution_history")
    return [e for page in pages.paginate(executionArn=result.arn) for e in page["events"]]


def _exits(code: int) -> Job:
    def job(env: Mapping[str, str]) -> None:
        raise SystemExit(code)

    return job


def _raises(error: Exception) -> Job:
    def job(env: Mapping[str, str]) -> None:
        raise error

    return job


def _cause(result: Execution) -> dict[str, Any]:
    assert result.cause is not None
    cause: dict[str, Any] = json.loads(result.cause)
    return cause


def _segments_run(cloud: Harness) -> Counter[int]:
    return Counter(parse_segment(run.env[ENV_SEGMENT]) for run in cloud.runs_of(CHILD_FAMILY))


# --- the happy path ---------------------------------------------------------------------------


def test_success_runs_parent_then_one_child_per_segment(cloud: Harness) -> None:
    cloud.provision()
    _parent_writing(cloud, ShortsConfig(segment_count=3).to_json())
    _child_writing(cloud)
    result = _run(cloud)
    assert (result.status, result.error) == ("SUCCEEDED", None)
    (parent,) = cloud.runs_of(PARENT_FAMILY)
    assert parent.env == {"USER_ID": "user-1", "VIDEO_ID": "talk-7", ENV_BUCKET: BUCKET}
    children = cloud.runs_of(CHILD_FAMILY)
    assert sorted(run.env[ENV_SEGMENT] for run in children) == ["1", "2", "3"]
    assert all(run.env["VIDEO_ID"] == "talk-7" for run in children)
    assert _keys(cloud) == {REF.shorts_config, *REF.child_keys(3)}
    assert cloud.retry_waits == []
    events = _history(cloud, result)
    assert job_failures(events) == ()
    entered = sum("stateEnteredEventDetails" in e for e in events)
    assert 1 + entered == cost.STATE_TRANSITIONS_FIXED + 3 * cost.STATE_TRANSITIONS_PER_SHORT


def test_children_run_in_parallel_but_never_above_max_concurrency(cloud: Harness) -> None:
    cloud.provision(max_concurrency=2)
    _parent_writing(cloud, ShortsConfig(segment_count=6).to_json())
    _child_writing(cloud, pause=0.2)
    assert _run(cloud).status == "SUCCEEDED"
    assert cloud.max_concurrent[CHILD_FAMILY] == 2
    assert sorted(_segments_run(cloud)) == [1, 2, 3, 4, 5, 6]
    assert set(REF.child_keys(6)) <= _keys(cloud)


# --- every branch of CheckSegmentCount, executed -------------------------------------------


def _state_after(events: list[dict[str, Any]], state: str) -> str:
    """The state entered right after ``state`` exited."""
    names = [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]
    return names[names.index(state) + 1]


@pytest.mark.parametrize(
    ("config", "target", "children"),
    [
        ('{"segment_count": 0}', sm.DONE, 0),
        ('{"segment_count": 1}', sm.LIST_SEGMENTS, 1),
        ('{"segment_count": 2}', sm.LIST_SEGMENTS, 2),
        ('{"segment_count": 51}', sm.INVALID_SEGMENT_COUNT, 0),
        ('{"segment_count": -1}', sm.INVALID_SEGMENT_COUNT, 0),
        ('{"segment_count": "3"}', sm.INVALID_SEGMENT_COUNT, 0),
        ('{"segment_count": null}', sm.INVALID_SEGMENT_COUNT, 0),
        ('{"segment_count": true}', sm.INVALID_SEGMENT_COUNT, 0),
        ("{}", sm.INVALID_SEGMENT_COUNT, 0),
        ('["a list"]', sm.INVALID_SEGMENT_COUNT, 0),
    ],
)
def test_each_segment_count_takes_its_branch(
    cloud: Harness, config: str, target: str, children: int
) -> None:
    cloud.provision()
    _parent_writing(cloud, config)
    _child_writing(cloud)
    result = _run(cloud)
    assert _state_after(_history(cloud, result), sm.CHECK_SEGMENT_COUNT) == target
    expected = ("FAILED", target) if target == sm.INVALID_SEGMENT_COUNT else ("SUCCEEDED", None)
    assert (result.status, result.error) == expected
    assert sorted(_segments_run(cloud)) == list(range(1, children + 1))


def test_the_largest_segment_count_reaches_the_map(cloud: Harness) -> None:
    """50 is the last count that renders; the execution times out while children wait."""
    cloud.provision(execution_timeout_seconds=2)
    _parent_writing(cloud, json.dumps({"segment_count": sm.MAX_SEGMENT_COUNT}))
    release = threading.Event()
    cloud.jobs[CHILD_FAMILY] = lambda env: release.wait(10) and None
    try:
        result = _run(cloud)
    finally:
        release.set()
    assert result.status == "TIMED_OUT"
    events = _history(cloud, result)
    assert _state_after(events, sm.CHECK_SEGMENT_COUNT) == sm.LIST_SEGMENTS
    (listed,) = [
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in events
        if e.get("stateExitedEventDetails", {}).get("name") == sm.LIST_SEGMENTS
    ]
    assert listed["segments"]["numbers"] == list(range(1, 51))


@pytest.mark.parametrize("config", [None, "{not json"])
def test_missing_or_broken_config_ends_in_read_config_failed(
    cloud: Harness, config: str | None
) -> None:
    cloud.provision()
    _parent_writing(cloud, config)
    _child_writing(cloud)
    result = _run(cloud)
    assert (result.status, result.error) == ("FAILED", sm.READ_CONFIG_FAILED)
    assert _cause(result)["Error"]  # the caught error, not a fixed text
    assert cloud.runs_of(CHILD_FAMILY) == []


# --- the parent: bad input fails at once, everything else is retried -----------------------


@pytest.mark.parametrize(
    ("job", "attempts", "error", "exit_code"),
    [
        (_raises(RuntimeError("a bug")), 3, sm.ERROR_JOB_FAILED, 1),
        (_exits(EXIT_TRANSIENT), 3, sm.ERROR_JOB_FAILED, EXIT_TRANSIENT),
        (_raises(NeverStarted("no such image")), 3, sm.ERROR_JOB_FAILED, None),
        (_raises(ContractError("segment_count: not a number")), 1, sm.ERROR_BAD_INPUT, 2),
        (_exits(EXIT_BAD_INPUT), 1, sm.ERROR_BAD_INPUT, EXIT_BAD_INPUT),
    ],
    ids=["exit-1", "exit-75", "never-started", "contract-error", "exit-2"],
)
def test_a_failing_parent_is_retried_unless_its_input_is_bad(
    cloud: Harness, job: Job, attempts: int, error: str, exit_code: int | None
) -> None:
    cloud.provision()
    cloud.jobs[PARENT_FAMILY] = job
    _child_writing(cloud)
    result = _run(cloud)
    assert (result.status, result.error) == ("FAILED", sm.PARENT_TASK_FAILED)
    assert len(cloud.runs_of(PARENT_FAMILY)) == attempts
    assert cloud.retry_waits == [30, 60][: attempts - 1]
    assert cloud.runs_of(CHILD_FAMILY) == []
    cause = _cause(result)
    assert cause["Error"] == error
    original = json.loads(cause["Cause"])
    assert original["Error"] == "States.TaskFailed"
    task = json.loads(original["Cause"])
    assert task["Containers"][0].get("ExitCode") == exit_code
    reason, _ = describe_cause(result.cause)
    assert reason is not None
    assert reason.startswith(f"{error}: States.TaskFailed: ")
    (failure,) = job_failures(_history(cloud, result))
    assert (failure.state, failure.segment, failure.attempts) == (sm.RUN_PARENT, None, attempts)
    assert failure.exit_code == exit_code
    assert failure.task_arn == task["TaskArn"]


def test_a_parent_past_its_timeout_is_not_retried(cloud: Harness) -> None:
    cloud.provision(parent_timeout_seconds=1)
    release = threading.Event()
    cloud.jobs[PARENT_FAMILY] = lambda env: release.wait(10) and None
    try:
        result = _run(cloud)
    finally:
        release.set()
    assert (result.status, result.error) == ("FAILED", sm.PARENT_TASK_FAILED)
    assert _cause(result)["Error"] == sm.ERROR_TIMED_OUT
    assert json.loads(_cause(result)["Cause"])["Error"] == sm.TIMEOUT_ERROR
    assert cloud.retry_waits == []
    deadline = time.monotonic() + 10
    while not cloud.runs_of(PARENT_FAMILY) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(cloud.runs_of(PARENT_FAMILY)) == 1


# --- children: one bad short spares the rest -----------------------------------------------


def test_one_bad_short_spares_the_rest(cloud: Harness) -> None:
    """A child that always fails and one with bad input; their siblings still finish."""
    cloud.provision(max_concurrency=2)
    _parent_writing(cloud, ShortsConfig(segment_count=5).to_json())
    _child_writing(
        cloud,
        pause=0.1,
        failing={2: _raises(OSError("disk full")), 3: _exits(EXIT_BAD_INPUT)},
    )
    result = _run(cloud)
    assert (result.status, result.error) == ("FAILED", sm.CHILD_TASKS_FAILED)
    assert _cause(result) == {
        "Error": sm.ERROR_SHORTS_FAILED,
        "Shorts": [
            {"segment": 2, "failed": True, "error": sm.ERROR_JOB_FAILED},
            {"segment": 3, "failed": True, "error": sm.ERROR_BAD_INPUT},
        ],
    }
    assert _segments_run(cloud) == {1: 1, 2: 3, 3: 1, 4: 1, 5: 1}
    assert sorted(cloud.retry_waits) == [30, 60]
    shorts = {k for k in _keys(cloud) if k.endswith(".mp4")}
    assert shorts == {REF.short_video(n) for n in (1, 4, 5)}
    reason, segments = describe_cause(result.cause)
    assert segments == (2, 3)
    assert reason == (
        "failed shorts: segment 2 (failed after its retries), 3 (bad input, not retried)"
    )
    failures = job_failures(_history(cloud, result))
    assert [(f.segment, f.attempts, f.exit_code) for f in failures] == [(2, 3, 75), (3, 1, 2)]
    assert {f.stopped_reason for f in failures} == {STOPPED_REASON}
    assert failures[0].log_stream is not None
    assert failures[0].log_stream.startswith("child/klippers-child/")


def test_every_short_failing_still_ends_in_child_tasks_failed(cloud: Harness) -> None:
    cloud.provision()
    _parent_writing(cloud, ShortsConfig(segment_count=2).to_json())
    cloud.jobs[CHILD_FAMILY] = _exits(EXIT_BAD_INPUT)
    result = _run(cloud)
    assert (result.status, result.error) == ("FAILED", sm.CHILD_TASKS_FAILED)
    assert [s["segment"] for s in _cause(result)["Shorts"]] == [1, 2]
    assert cloud.retry_waits == []


def test_child_failing_once_is_retried_and_succeeds(cloud: Harness) -> None:
    cloud.provision()
    _parent_writing(cloud, ShortsConfig(segment_count=1).to_json())
    attempts: list[int] = []

    def flaky(env: Mapping[str, str]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise SystemExit(EXIT_TRANSIENT)
        cloud.client("s3").put_object(Bucket=BUCKET, Key=REF.short_video(1), Body=b"ok")

    cloud.jobs[CHILD_FAMILY] = flaky
    result = _run(cloud)
    assert result.status == "SUCCEEDED"
    assert cloud.retry_waits == [30]
    assert REF.short_video(1) in _keys(cloud)
    (failure,) = job_failures(_history(cloud, result))
    assert (failure.segment, failure.exit_code, failure.recovered) == (1, EXIT_TRANSIENT, True)


def test_a_child_past_its_timeout_is_marked_and_not_retried(cloud: Harness) -> None:
    cloud.provision(child_timeout_seconds=1)
    _parent_writing(cloud, ShortsConfig(segment_count=2).to_json())
    release = threading.Event()
    _child_writing(cloud, failing={1: lambda env: release.wait(10) and None})
    try:
        result = _run(cloud)
    finally:
        release.set()
    assert (result.status, result.error) == ("FAILED", sm.CHILD_TASKS_FAILED)
    assert _cause(result)["Shorts"] == [{"segment": 1, "failed": True, "error": sm.ERROR_TIMED_OUT}]
    assert cloud.retry_waits == []
    assert REF.short_video(2) in _keys(cloud)


def test_the_harness_names_resources_like_the_stack(cloud: Harness) -> None:
    cloud.provision()
    described = cloud.client("stepfunctions").describe_state_machine(
        stateMachineArn=cloud.state_machine_arn
    )
    assert described["name"] == NAMES.state_machine
    (destination,) = described["loggingConfiguration"]["destinations"]
    assert NAMES.state_machine_log_group in destination["cloudWatchLogsLogGroup"]["logGroupArn"]


# --- a second run renders only what is missing (the real jobs) -----------------------------


def test_a_run_after_a_failed_short_renders_only_that_short(
    cloud: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run 1: the real parent and children, but short 2's container exits 75 every time.
    Run 2 (``klip cloud run`` again): short 1 is current, so only short 2 is rendered."""
    from click.testing import CliRunner

    import klipmedia
    from klippers.cli import cli
    from klippers.cloud.executions import execution_name
    from klippers.jobs import child, parent
    from klippers.storage import S3Storage
    from tests.support.talk import talk_video
    from tests.support.whisper_models import ct2_tiny_en_path

    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint)
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
    cloud.provision()
    storage = S3Storage(BUCKET, endpoint_url=cloud.endpoint)
    talk = talk_video()
    storage.upload(talk, REF.original_video)
    config = ShortsConfig(segment_count=2, target_short_video_duration_in_seconds=6)
    storage.write_bytes(REF.shorts_config, config.to_json().encode())
    storage.upload(klipmedia.thumbnail(talk, tmp_path / "t.png"), REF.thumbnail)
    rendered: list[tuple[int, bool]] = []

    def real_child(env: Mapping[str, str]) -> None:
        result = child.run_job(env)
        rendered.append((parse_segment(env[ENV_SEGMENT]), result.reused))

    def short_2_exits_75(env: Mapping[str, str]) -> None:
        if env[ENV_SEGMENT] == "2":
            raise SystemExit(EXIT_TRANSIENT)
        real_child(env)

    def klip_run() -> Execution:
        started = CliRunner().invoke(
            cli, ["cloud", "run", "--user", REF.user_id, "--video", REF.video_id]
        )
        assert started.exit_code == 0, started.output
        (arn,) = [line.strip() for line in started.output.splitlines() if "arn:" in line]
        return cloud.wait(arn, timeout=600)

    cloud.jobs[PARENT_FAMILY] = parent.run_job
    cloud.jobs[CHILD_FAMILY] = short_2_exits_75
    first = klip_run()
    assert (first.status, first.error) == ("FAILED", sm.CHILD_TASKS_FAILED), first.cause
    assert [s["segment"] for s in _cause(first)["Shorts"]] == [2]
    assert rendered == [(1, False)]
    assert _segments_run(cloud)[2] == 3
    assert not storage.exists(REF.short_video(2))

    rendered.clear()
    cloud.jobs[CHILD_FAMILY] = real_child
    second = klip_run()
    assert second.arn.endswith(execution_name(REF, 2))
    assert (second.status, second.error) == ("SUCCEEDED", None), second.cause
    assert sorted(rendered) == [(1, True), (2, False)]
    assert storage.exists(REF.short_video(2))


# --- Fargate Spot children: an interruption is retried like any transient failure -----------


@pytest.mark.parametrize(
    "exit_code", [SIGTERM_EXIT, None, EXIT_BAD_INPUT], ids=["sigterm-143", "no-exit-code", "exit-2"]
)
def test_a_spot_interrupted_child_is_retried_and_its_short_made(
    cloud: Harness, exit_code: int | None
) -> None:
    """Short 1's first Spot task is interrupted; its retry renders it. Even a 2 from a job
    being shut down is no bad input: the stop code decides."""
    cloud.provision(child_capacity=aws.SPOT)
    _parent_writing(cloud, ShortsConfig(segment_count=2).to_json())
    interrupted: list[int] = []

    def child(env: Mapping[str, str]) -> None:
        segment = parse_segment(env[ENV_SEGMENT])
        if segment == 1 and not interrupted:
            interrupted.append(segment)
            raise SpotInterrupted(exit_code)
        cloud.client("s3").put_object(Bucket=BUCKET, Key=REF.short_video(segment), Body=b"ok")

    cloud.jobs[CHILD_FAMILY] = child
    result = _run(cloud)
    assert (result.status, result.error) == ("SUCCEEDED", None), result.cause
    assert cloud.retry_waits == [30]
    assert _segments_run(cloud) == {1: 2, 2: 1}
    assert {REF.short_video(1), REF.short_video(2)} <= _keys(cloud)
    assert {run.placement for run in cloud.runs_of(CHILD_FAMILY)} == {"FARGATE_SPOT"}
    assert [run.placement for run in cloud.runs_of(PARENT_FAMILY)] == ["FARGATE"]
    events = _history(cloud, result)
    assert _state_after(events, sm.CHILD_NAMES.check_exit) == sm.CHILD_NAMES.attempt_failed
    (failure,) = job_failures(events)
    assert (failure.segment, failure.exit_code, failure.recovered) == (1, exit_code, True)
    assert failure.stopped_reason == SPOT_STOPPED_REASON


# --- sharded transcription --------------------------------------------------------------------


def _sharded(cloud: Harness, shard_count: object, failing: Mapping[str, Job] = {}) -> None:
    """A plan writing ``shard_count``, windows writing their words (or ``failing[SHARD]``),
    and a parent that finds every window before it writes a config of two shorts."""
    s3 = cloud.client("s3")

    def shard(env: Mapping[str, str]) -> None:
        ref, task = VideoRef.from_env(env), env[ENV_SHARD]
        if task in failing:
            failing[task](env)
        elif task == "plan":
            plan = json.dumps({"version": 1, "shard_count": shard_count})
            s3.put_object(Bucket=env[ENV_BUCKET], Key=ref.shard_plan, Body=plan)
        else:
            s3.put_object(Bucket=env[ENV_BUCKET], Key=ref.shard_words(int(task)), Body=b"{}")

    def parent(env: Mapping[str, str]) -> None:
        ref = VideoRef.from_env(env)
        count = shard_count if isinstance(shard_count, int) and shard_count > 1 else 0
        missing = {ref.shard_words(n) for n in range(1, count + 1)} - _keys(cloud)
        assert not missing, f"the parent ran before {missing}"
        config = ShortsConfig(segment_count=2).to_json()
        s3.put_object(Bucket=env[ENV_BUCKET], Key=ref.shorts_config, Body=config)

    cloud.jobs[SHARD_FAMILY] = shard
    cloud.jobs[PARENT_FAMILY] = parent
    _child_writing(cloud)


def test_a_sharded_execution_plans_transcribes_windows_then_cuts_and_renders(
    cloud: Harness,
) -> None:
    cloud.provision(sharded=True, max_concurrency=2)
    _sharded(cloud, 3)

    result = _run(cloud)

    assert (result.status, result.error) == ("SUCCEEDED", None), result.cause
    shards = cloud.runs_of(SHARD_FAMILY)
    assert shards[0].env == {
        "USER_ID": "user-1",
        "VIDEO_ID": "talk-7",
        ENV_BUCKET: BUCKET,
        ENV_SHARD: "plan",
    }
    assert sorted(run.env[ENV_SHARD] for run in shards[1:]) == ["1", "2", "3"]
    assert all(run.placement == aws.FARGATE for run in shards)
    assert cloud.max_concurrent[SHARD_FAMILY] <= 2
    assert len(cloud.runs_of(PARENT_FAMILY)) == 1
    assert sorted(_segments_run(cloud)) == [1, 2]
    assert cloud.retry_waits == []
    entered = sum("stateEnteredEventDetails" in e for e in _history(cloud, result))
    assert 1 + entered == (
        cost.STATE_TRANSITIONS_FIXED
        + cost.STATE_TRANSITIONS_SHARDED_FIXED
        + 3 * cost.STATE_TRANSITIONS_PER_SHARD
        + 2 * cost.STATE_TRANSITIONS_PER_SHORT
    )


def test_one_window_goes_straight_to_the_parent(cloud: Harness) -> None:
    cloud.provision(sharded=True)
    _sharded(cloud, 1)

    result = _run(cloud)

    assert (result.status, result.error) == ("SUCCEEDED", None), result.cause
    assert [run.env[ENV_SHARD] for run in cloud.runs_of(SHARD_FAMILY)] == ["plan"]
    assert len(cloud.runs_of(PARENT_FAMILY)) == 1


@pytest.mark.parametrize(
    ("job", "attempts", "waits", "error"),
    [
        (_exits(EXIT_BAD_INPUT), 1, [], sm.ERROR_BAD_INPUT),
        (_exits(EXIT_TRANSIENT), 3, [30.0, 60.0], sm.ERROR_JOB_FAILED),
    ],
    ids=["bad-input", "transient"],
)
def test_a_window_failing_for_good_ends_in_shard_tasks_failed_naming_it(
    cloud: Harness, job: Job, attempts: int, waits: list[float], error: str
) -> None:
    cloud.provision(sharded=True)
    _sharded(cloud, 3, failing={"2": job})

    result = _run(cloud)

    assert (result.status, result.error) == ("FAILED", sm.SHARD_TASKS_FAILED)
    caught = _cause(result)
    assert caught["Error"] == sm.ERROR_SHARD_FAILED
    shard = json.loads(caught["Cause"])
    assert (shard["Shard"], shard["Error"]) == (2, error)
    assert [r.env[ENV_SHARD] for r in cloud.runs_of(SHARD_FAMILY)].count("2") == attempts
    assert cloud.retry_waits == waits
    assert cloud.runs_of(PARENT_FAMILY) == []
    reason, segments = describe_cause(result.cause)
    assert reason is not None
    assert segments == ()
    assert reason.startswith(f"{sm.ERROR_SHARD_FAILED}: window 2: {error}"), reason
    assert reason.endswith("(a transcription window failed for good)"), reason
    (failure,) = job_failures(_history(cloud, result))
    assert (failure.state, failure.window, failure.segment) == (sm.TRANSCRIBE_SHARD, 2, None)
    assert (failure.attempts, failure.container) == (attempts, aws.SHARD_CONTAINER)
    assert failure.describe().startswith(f"{sm.TRANSCRIBE_SHARD} window 2: exit ")
    assert failure.log_stream is not None
    assert failure.log_stream.startswith("shard/klippers-shard/")


@pytest.mark.parametrize(
    ("plan", "shard_count", "error"),
    [
        (_exits(EXIT_BAD_INPUT), 2, sm.SHARD_PLAN_FAILED),
        (None, 0, sm.INVALID_SHARD_COUNT),
        (None, 99, sm.INVALID_SHARD_COUNT),
        (None, "3", sm.INVALID_SHARD_COUNT),
    ],
    ids=["plan-bad-input", "zero", "too-many", "text"],
)
def test_a_failed_plan_or_a_bad_count_stops_before_the_parent(
    cloud: Harness, plan: Job | None, shard_count: object, error: str
) -> None:
    cloud.provision(sharded=True)
    _sharded(cloud, shard_count, failing={"plan": plan} if plan else {})

    result = _run(cloud)

    assert (result.status, result.error) == ("FAILED", error)
    assert cloud.runs_of(PARENT_FAMILY) == []
    assert [run.env[ENV_SHARD] for run in cloud.runs_of(SHARD_FAMILY)] == ["plan"]
