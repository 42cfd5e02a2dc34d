"""The unchanged definition executed by moto's Step Functions interpreter on loopback.

Jobs here are small stand-ins that read the task environment and write or fail; the
real parent and child jobs plug into the same ``Harness.jobs`` hooks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

import pytest

from klippers import statemachine
from klippers.contract import ENV_BUCKET, ENV_SEGMENT, ShortsConfig, VideoRef, parse_segment
from tests.klippers.sfn_harness import (
    BUCKET,
    CHILD_FAMILY,
    PARENT_FAMILY,
    Execution,
    Harness,
    moto_cloud,
)

pytestmark = pytest.mark.slow

REF = VideoRef("user-1", "talk-7")


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


def _child_writing(cloud: Harness, pause: float = 0.0) -> None:
    def child(env: Mapping[str, str]) -> None:
        time.sleep(pause)
        ref = VideoRef.from_env(env)
        key = ref.short_video(parse_segment(env[ENV_SEGMENT]))
        cloud.client("s3").put_object(Bucket=env[ENV_BUCKET], Key=key, Body=b"short")

    cloud.jobs[CHILD_FAMILY] = child


def _keys(cloud: Harness) -> set[str]:
    listed = cloud.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=REF.prefix)
    return {item["Key"] for item in listed.get("Contents", [])}


def _run(cloud: Harness) -> Execution:
    return cloud.execute(statemachine.execution_input(REF))


def _always_fails(env: Mapping[str, str]) -> None:
    raise RuntimeError("boom")


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


def test_segment_count_zero_succeeds_without_children(cloud: Harness) -> None:
    cloud.provision()
    _parent_writing(cloud, ShortsConfig(segment_count=0).to_json())
    _child_writing(cloud)
    assert _run(cloud).status == "SUCCEEDED"
    assert cloud.runs_of(CHILD_FAMILY) == []


def test_failing_parent_ends_in_parent_task_failed_after_one_retry(cloud: Harness) -> None:
    cloud.provision()
    cloud.jobs[PARENT_FAMILY] = _always_fails
    _child_writing(cloud)
    result = _run(cloud)
    assert (result.status, result.error) == ("FAILED", statemachine.PARENT_TASK_FAILED)
    assert [run.ok for run in cloud.runs_of(PARENT_FAMILY)] == [False, False]
    assert cloud.retry_waits == [60]
    assert cloud.runs_of(CHILD_FAMILY) == []


@pytest.mark.parametrize("config", [None, "{not json", '["a list"]'])
def test_missing_or_broken_config_ends_in_read_config_failed(
    cloud: Harness, config: str | None
) -> None:
    cloud.provision()
    _parent_writing(cloud, config)
    _child_writing(cloud)
    result = _run(cloud)
    expected = (
        statemachine.INVALID_SEGMENT_COUNT
        if config == '["a list"]'
        else (statemachine.READ_CONFIG_FAILED)
    )
    assert (result.status, result.error) == ("FAILED", expected)
    assert cloud.runs_of(CHILD_FAMILY) == []


def test_out_of_range_segment_count_fails_before_the_map(cloud: Harness) -> None:
    cloud.provision()
    _parent_writing(cloud, '{"segment_count": 10000}')
    _child_writing(cloud)
    result = _run(cloud)
    assert (result.status, result.error) == ("FAILED", statemachine.INVALID_SEGMENT_COUNT)
    assert cloud.runs_of(CHILD_FAMILY) == []


def test_child_that_always_fails_ends_in_child_tasks_failed_after_30_then_60(
    cloud: Harness,
) -> None:
    cloud.provision()
    _parent_writing(cloud, ShortsConfig(segment_count=1).to_json())
    cloud.jobs[CHILD_FAMILY] = _always_fails
    result = _run(cloud)
    assert (result.status, result.error) == ("FAILED", statemachine.CHILD_TASKS_FAILED)
    assert [run.ok for run in cloud.runs_of(CHILD_FAMILY)] == [False, False, False]
    assert cloud.retry_waits == [30, 60]


def test_child_failing_once_is_retried_and_succeeds(cloud: Harness) -> None:
    cloud.provision()
    _parent_writing(cloud, ShortsConfig(segment_count=1).to_json())
    attempts: list[int] = []

    def flaky(env: Mapping[str, str]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        cloud.client("s3").put_object(Bucket=BUCKET, Key=REF.short_video(1), Body=b"ok")

    cloud.jobs[CHILD_FAMILY] = flaky
    assert _run(cloud).status == "SUCCEEDED"
    assert cloud.retry_waits == [30]
    assert REF.short_video(1) in _keys(cloud)


def test_children_run_in_parallel_but_never_above_max_concurrency(cloud: Harness) -> None:
    cloud.provision(max_concurrency=2)
    _parent_writing(cloud, ShortsConfig(segment_count=6).to_json())
    _child_writing(cloud, pause=0.2)
    assert _run(cloud).status == "SUCCEEDED"
    assert cloud.max_concurrent[CHILD_FAMILY] == 2
    assert sorted(int(r.env[ENV_SEGMENT]) for r in cloud.runs_of(CHILD_FAMILY)) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]
    assert set(REF.child_keys(6)) <= _keys(cloud)
