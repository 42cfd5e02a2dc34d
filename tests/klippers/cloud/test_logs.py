"""``klip cloud logs --follow``: incremental polls against moto's CloudWatch Logs.

Step Functions is a small fake (moto neither pages nor reverses an execution's history);
the logs client is moto's, wrapped to count the calls of each poll and to serve small
pages, so that tokens carry reading over to the next call.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from klippers.aws import CHILD_CONTAINER, JOB_STREAM_PREFIXES, PARENT_CONTAINER
from klippers.cloud.logs import STATE_MACHINE_SOURCE, LogLine, log_lines

pytest.importorskip("boto3")

ARN = "arn:aws:states:us-east-1:123456789012:execution:m:run-1"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)  # logs refuse old events
START_MS = int(START.timestamp() * 1000)
MACHINE_GROUP = "/aws/vendedlogs/states/m"
JOBS_GROUP = "/ecs/jobs"
PAGE = 2


class FakeSfn:
    """An execution whose history grows as its tasks are submitted."""

    def __init__(self) -> None:
        self.status = "RUNNING"
        self.stopped: datetime | None = None
        self.events: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.calls["describe_execution"] += 1
        described = {"executionArn": executionArn, "startDate": START, "status": self.status}
        if self.status != "RUNNING":
            self.stopped = self.stopped or datetime.now(UTC)
            described["stopDate"] = self.stopped
        return described

    def get_execution_history(
        self,
        executionArn: str,
        reverseOrder: bool = False,
        maxResults: int = 1000,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        self.calls["get_execution_history"] += 1
        events = self.events[::-1] if reverseOrder else self.events
        start = int(nextToken or 0)
        page: dict[str, Any] = {"events": events[start : start + maxResults]}
        if start + maxResults < len(events):
            page["nextToken"] = str(start + maxResults)
        return page

    def event(self, details: dict[str, Any] | None = None) -> None:
        kind = "taskSubmittedEventDetails" if details else "passStateEnteredEventDetails"
        self.events.append({"id": len(self.events) + 1, kind: details or {}})

    def submit(self, task_id: str, container: str) -> str:
        """A runTask.sync task was started; returns its log stream."""
        arn = f"arn:aws:ecs:us-east-1:123456789012:task/jobs/{task_id}"
        output = {"TaskArn": arn, "Containers": [{"Name": container}]}
        self.event({"resource": "runTask.sync", "output": json.dumps(output)})
        return f"{JOB_STREAM_PREFIXES[container]}/{container}/{task_id}"


class CountingLogs:
    """moto's logs client, counting calls and asking for ``PAGE`` events a page."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()

    def get_log_events(self, **args: Any) -> Any:
        self.calls["get_log_events"] += 1
        return self.client.get_log_events(**args, limit=PAGE)

    def filter_log_events(self, **args: Any) -> Any:
        self.calls["filter_log_events"] += 1
        return self.client.filter_log_events(**args, limit=PAGE)


@pytest.fixture
def logs(aws_env: None) -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("logs")
        for group in (MACHINE_GROUP, JOBS_GROUP):
            client.create_log_group(logGroupName=group)
        yield client


def put(logs: Any, group: str, stream: str, *events: tuple[int, str]) -> None:
    """Append events (ms after the start, message), creating the stream on first use."""
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": START_MS + t, "message": m} for t, m in events],
    )


def record(kind: str, execution: str = ARN) -> str:
    return json.dumps({"type": kind, "execution_arn": execution})


def follow(
    sfn: FakeSfn, logs: CountingLogs, between: Callable[[int], None], max_streams: int
) -> tuple[list[LogLine], list[Counter[str]]]:
    """Follow the execution; ``between(n)`` runs in the n-th sleep. Returns the lines and
    the calls made before each sleep and after the last."""
    per_poll: list[Counter[str]] = []

    def snapshot() -> None:
        total = sfn.calls + logs.calls
        per_poll.append(total - sum(per_poll, Counter()))

    def sleep(seconds: float) -> None:
        snapshot()
        between(len(per_poll))

    lines = list(
        log_lines(
            sfn,
            logs,
            ARN,
            state_machine_group=MACHINE_GROUP,
            jobs_group=JOBS_GROUP,
            follow=True,
            poll_seconds=5,
            max_streams=max_streams,
            sleep=sleep,
        )
    )
    snapshot()
    return lines, per_poll


def test_follow_returns_new_lines_once_with_bounded_calls(logs: Any) -> None:
    sfn, counting = FakeSfn(), CountingLogs(logs)
    parent = sfn.submit("p1", PARENT_CONTAINER)
    put(logs, JOBS_GROUP, parent, (10, "parent 1"), (11, "parent 2"), (12, "parent 3"))
    put(logs, MACHINE_GROUP, "states/a", (1, record("ExecutionStarted")))
    put(logs, MACHINE_GROUP, "states/a", (2, record("ExecutionStarted", ARN + "-other")))
    children = [sfn.submit(f"c{n}", CHILD_CONTAINER) for n in range(6)]
    expected = [(STATE_MACHINE_SOURCE, record("ExecutionStarted")), (parent, "parent 1")]
    expected += [(parent, "parent 2"), (parent, "parent 3")]

    def between(poll: int) -> None:
        t = 100 * poll
        if poll == 1:  # more of a stream already read, and the first lines of children
            put(logs, JOBS_GROUP, parent, (t, "parent 4"))
            expected.append((parent, "parent 4"))
        if poll <= 3:
            for n, stream in enumerate(children):
                put(logs, JOBS_GROUP, stream, (t + n, f"child {n} line {poll}"))
                expected.append((stream, f"child {n} line {poll}"))
            put(logs, MACHINE_GROUP, "states/b", (t, record(f"TaskStateEntered{poll}")))
            expected.append((STATE_MACHINE_SOURCE, record(f"TaskStateEntered{poll}")))
        if poll == 2:  # arrives late, older than lines already returned
            put(logs, MACHINE_GROUP, "states/c", (t - 150, record("Late")))
            expected.append((STATE_MACHINE_SOURCE, record("Late")))
        if poll == 4:
            put(logs, JOBS_GROUP, children[0], (t, "last words"))
            put(logs, MACHINE_GROUP, "states/b", (t, record("ExecutionSucceeded")))
            expected.extend(
                [(children[0], "last words"), (STATE_MACHINE_SOURCE, record("ExecutionSucceeded"))]
            )
            sfn.status = "SUCCEEDED"
        sfn.event()

    lines, per_poll = follow(sfn, counting, between, max_streams=3)

    got = [(line.source, line.message) for line in lines]
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got)), "a line came twice"
    assert len(per_poll) == 6  # four polls while running, the final drain, a settle read
    for calls in per_poll[:4]:
        assert calls["describe_execution"] == 1
        assert calls["get_execution_history"] == 1
        assert calls["filter_log_events"] == 1
        assert calls["get_log_events"] == 3
    drain, settle = per_poll[4], per_poll[5]
    assert drain["describe_execution"] == 1
    assert settle["describe_execution"] == settle["get_execution_history"] == 0
    assert drain["filter_log_events"] <= 4  # one query: 7 matching events, 2 a page
    assert drain["get_log_events"] <= 2 * (len(children) + 1) + 3


def test_lines_of_one_poll_are_in_time_order(logs: Any) -> None:
    sfn, counting = FakeSfn(), CountingLogs(logs)
    a, b = sfn.submit("a", CHILD_CONTAINER), sfn.submit("b", CHILD_CONTAINER)
    put(logs, JOBS_GROUP, a, (3, "a3"), (5, "a5"))
    put(logs, JOBS_GROUP, b, (4, "b4"))
    put(logs, MACHINE_GROUP, "states/a", (1, record("ExecutionStarted")))
    sfn.status = "FAILED"
    lines = list(
        log_lines(sfn, counting, ARN, state_machine_group=MACHINE_GROUP, jobs_group=JOBS_GROUP)
    )
    assert [line.timestamp - START_MS for line in lines] == [1, 3, 4, 5]
    assert counting.calls["get_log_events"] == 4  # a page, then an empty page, per stream


def test_a_stream_not_created_yet_is_read_later(logs: Any) -> None:
    sfn, counting = FakeSfn(), CountingLogs(logs)
    stream = sfn.submit("late", CHILD_CONTAINER)

    def between(poll: int) -> None:
        if poll <= 2:
            put(logs, JOBS_GROUP, stream, (poll, f"line {poll}"))
        if poll == 2:
            sfn.status = "SUCCEEDED"

    lines, _ = follow(sfn, counting, between, max_streams=1)
    assert [line.message for line in lines] == ["line 1", "line 2"]


def test_history_is_read_from_the_newest_event_back_to_the_last_read(logs: Any) -> None:
    sfn, counting = FakeSfn(), CountingLogs(logs)
    for _ in range(2500):
        sfn.event()
    streams = [sfn.submit(f"t{n}", CHILD_CONTAINER) for n in range(2)]
    for n, stream in enumerate(streams):
        put(logs, JOBS_GROUP, stream, (n, stream))

    def between(poll: int) -> None:
        if poll > 1:
            return
        late = sfn.submit("t-late", CHILD_CONTAINER)
        put(logs, JOBS_GROUP, late, (9, late))
        streams.append(late)
        sfn.status = "SUCCEEDED"

    lines, per_poll = follow(sfn, counting, between, max_streams=5)
    assert [call["get_execution_history"] for call in per_poll] == [3, 1, 0]
    assert sorted(line.message for line in lines) == sorted(streams)


def test_follow_waits_for_the_last_lines_of_a_task_that_just_stopped(logs: Any) -> None:
    """Lines reaching CloudWatch after the execution ended are still shown, and reading
    stops once a read finds nothing new."""
    sfn, counting = FakeSfn(), CountingLogs(logs)
    stream = sfn.submit("p", PARENT_CONTAINER)
    put(logs, JOBS_GROUP, stream, (1, "working"))
    late = ["Traceback (most recent call last):", "klippers exited with 1"]

    def between(poll: int) -> None:
        if poll == 1:
            sfn.status = "FAILED"
        elif poll <= 1 + len(late):  # settle reads: one late line each
            put(logs, JOBS_GROUP, stream, (10 + poll, late[poll - 2]))

    lines, per_poll = follow(sfn, counting, between, max_streams=5)

    assert [line.message for line in lines] == ["working", *late]
    assert len(per_poll) == 2 + len(late) + 1  # poll, drain, a read per late line, a quiet read


def test_follow_does_not_wait_on_an_execution_that_ended_long_ago(logs: Any) -> None:
    sfn, counting = FakeSfn(), CountingLogs(logs)
    put(logs, JOBS_GROUP, sfn.submit("p", PARENT_CONTAINER), (1, "done"))
    sfn.status, sfn.stopped = "SUCCEEDED", datetime.now(UTC) - timedelta(minutes=10)

    lines, per_poll = follow(sfn, counting, lambda poll: pytest.fail("waited"), max_streams=5)

    assert [line.message for line in lines] == ["done"]
    assert len(per_poll) == 1
