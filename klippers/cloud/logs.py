"""Log lines of an execution: the state machine's own events and its Fargate tasks' lines."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from klippers.aws import JOB_STREAM_PREFIXES
from klippers.cloud.clients import CloudError, aws_errors

logger = logging.getLogger(__name__)

STATE_MACHINE_SOURCE = "state-machine"
""":attr:`LogLine.source` of the state machine's own log events (job lines name their stream)."""

_TASK_ARN = re.compile(r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task/[^/\s\"]+/([A-Za-z0-9-]+)")


@dataclass(frozen=True)
class LogLine:
    """One log event: when (ms since the epoch), where from, and the message."""

    timestamp: int
    source: str
    message: str

    @property
    def time(self) -> datetime:
        """The timestamp as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp / 1000, tz=UTC)


def job_streams(events: list[dict[str, Any]]) -> list[str]:
    """The ``awslogs`` stream names of the Fargate tasks an execution's history mentions.

    Task ARNs and container names are read from the ``runTask.sync`` events' parameters,
    outputs and failure causes; a task whose container is unknown gets both candidates.
    """
    found: dict[str, set[str]] = {}
    for event in events:
        for text in _event_texts(event):
            for document in _json_documents(text):
                _collect_tasks(document, found)
            for task_id in _TASK_ARN.findall(text):
                found.setdefault(task_id, set())
    streams: list[str] = []
    for task_id, containers in found.items():
        for container in sorted(containers & JOB_STREAM_PREFIXES.keys() or JOB_STREAM_PREFIXES):
            streams.append(f"{JOB_STREAM_PREFIXES[container]}/{container}/{task_id}")
    return streams


def _event_texts(event: Mapping[str, Any]) -> Iterator[str]:
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, Mapping):
            for field_name in ("output", "cause", "parameters"):
                value = details.get(field_name)
                if isinstance(value, str):
                    yield value


def _json_documents(text: str) -> Iterator[Any]:
    try:
        yield json.loads(text)
    except ValueError:
        return


def _collect_tasks(document: Any, found: dict[str, set[str]]) -> None:
    if isinstance(document, list):
        for item in document:
            _collect_tasks(item, found)
        return
    if not isinstance(document, Mapping):
        return
    arn = document.get("TaskArn") or document.get("taskArn")
    if isinstance(arn, str) and (match := _TASK_ARN.fullmatch(arn)):
        containers = document.get("Containers") or document.get("containers") or []
        names = {c.get("Name") or c.get("name") for c in containers if isinstance(c, Mapping)}
        found.setdefault(match.group(1), set()).update(n for n in names if isinstance(n, str))
    for value in document.values():
        _collect_tasks(value, found)


_MAX_STREAMS_PER_POLL = 10
_HISTORY_PAGE = 1000
_MAX_DRAIN_POLLS = 500
_LATE_MS = 10_000
"""How late (ms) a state machine log event may arrive after newer ones; queries look back so far."""
_LATE_LINES = timedelta(minutes=1)
"""After an execution ends, ``--follow`` waits for late lines only this long after its end."""
_SETTLE_READS = 3


@dataclass
class _Stream:
    """Reading one job log stream: its ``nextForwardToken``, whether more may be waiting,
    and the poll that read it last."""

    name: str
    token: str | None = None
    more: bool = True
    polled: int = -1


class _Tail:
    """One execution's log lines, read in bounded steps.

    Each :meth:`poll` makes at most one state machine log query (one page, the rest of the
    query at the next poll) and reads at most ``max_streams`` job log streams (one page each,
    from the stream's ``nextForwardToken``; those waiting longest go first). An event is
    returned once.
    """

    def __init__(
        self,
        sfn: Any,
        logs: Any,
        execution_arn: str,
        state_machine_group: str | None,
        jobs_group: str | None,
        max_streams: int,
    ) -> None:
        self.sfn = sfn
        self.logs = logs
        self.arn = execution_arn
        self.state_machine_group = state_machine_group
        self.jobs_group = jobs_group
        self.max_streams = max_streams
        self.start_ms = 0
        self.stopped: datetime | None = None
        self._polls = 0
        self._last_history_id = 0
        self._streams: dict[str, _Stream] = {}
        self._query_start = 0
        self._query_token: str | None = None
        self._seen: dict[str, int] = {}
        """State machine events already returned (ID -> timestamp) within the look-back."""

    def ended(self) -> bool:
        """Whether the execution has ended (one ``DescribeExecution``)."""
        with aws_errors(f"describe execution {self.arn}"):
            described = self.sfn.describe_execution(executionArn=self.arn)
        self.start_ms = int(described["startDate"].timestamp() * 1000) - 1000
        self.stopped = described.get("stopDate")
        return str(described["status"]) != "RUNNING"

    def recently_ended(self, now: datetime) -> bool:
        """Whether the execution ended so recently that lines may still be on their way."""
        return self.stopped is not None and now - self.stopped < _LATE_LINES

    def find_streams(self) -> None:
        """Add the job log streams of the tasks that the history's new events mention."""
        if self.jobs_group is not None:
            for name in job_streams(self._new_history()):
                self._streams.setdefault(name, _Stream(name))

    def _new_history(self) -> list[dict[str, Any]]:
        """History events newer than the last call's, oldest first: pages newest first,
        and stops at the first page reaching an event already read."""
        args: dict[str, Any] = {
            "executionArn": self.arn,
            "reverseOrder": True,
            "maxResults": _HISTORY_PAGE,
        }
        new: list[dict[str, Any]] = []
        with aws_errors(f"execution history of {self.arn}"):
            while True:
                page = self.sfn.get_execution_history(**args)
                events = page.get("events", [])
                new.extend(e for e in events if e["id"] > self._last_history_id)
                reached = any(e["id"] <= self._last_history_id for e in events)
                if reached or not page.get("nextToken"):
                    break
                args["nextToken"] = page["nextToken"]
        self._last_history_id = max((e["id"] for e in new), default=self._last_history_id)
        return sorted(new, key=lambda e: int(e["id"]))

    @property
    def pending(self) -> bool:
        """Whether a query has pages left or a stream may hold lines not read yet."""
        return self._query_token is not None or any(s.more for s in self._streams.values())

    def poll(self, *, revisit: bool = True) -> list[LogLine]:
        """The lines that arrived since the last poll (as far as this poll's calls reach).

        Streams that may hold more go first, then those read longest ago. Without
        ``revisit``, only what may hold more is read: the rest of a state machine query,
        and the streams that had lines at their last read.
        """
        self._polls += 1
        query = self.state_machine_group and (revisit or self._query_token is not None)
        lines = self._state_machine_page() if query else []
        due = sorted(
            (s for s in self._streams.values() if revisit or s.more),
            key=lambda s: (not s.more, s.polled),
        )
        for stream in due[: self.max_streams]:
            lines.extend(self._stream_page(stream))
        return sorted(lines, key=lambda line: (line.timestamp, line.source))

    def drain(self) -> Iterator[LogLine]:
        """Every line not returned yet: each stream is read again until it has no more
        (at most ``_MAX_DRAIN_POLLS`` polls, for a task that goes on logging)."""
        for stream in self._streams.values():
            stream.more = True
        for n in range(_MAX_DRAIN_POLLS):
            yield from self.poll(revisit=n == 0)
            if not self.pending:
                return
        logger.warning(
            "%s: stopped after %d reads; more lines may follow", self.arn, _MAX_DRAIN_POLLS
        )

    def _stream_page(self, stream: _Stream) -> list[LogLine]:
        args: dict[str, Any] = {
            "logGroupName": self.jobs_group,
            "logStreamName": stream.name,
            "startFromHead": True,
        }
        if stream.token is not None:
            args["nextToken"] = stream.token
        stream.polled = self._polls
        stream.more = False
        try:
            with aws_errors(f"read log stream {self.jobs_group} {stream.name}"):
                page = self.logs.get_log_events(**args)
        except CloudError as exc:
            if exc.code == "ResourceNotFoundException":
                return []  # the task has not logged yet
            raise
        events = page.get("events", [])
        stream.token = page.get("nextForwardToken", stream.token)
        stream.more = bool(events)
        return [LogLine(e["timestamp"], stream.name, e["message"]) for e in events]

    def _state_machine_page(self) -> list[LogLine]:
        if self._query_token is None:
            newest = max(self._seen.values(), default=self.start_ms)
            self._query_start = max(self.start_ms, newest - _LATE_MS)
            self._seen = {k: t for k, t in self._seen.items() if t >= self._query_start}
        args: dict[str, Any] = {
            "logGroupName": self.state_machine_group,
            "startTime": self._query_start,
            "filterPattern": json.dumps(self.arn),
        }
        if self._query_token is not None:
            args["nextToken"] = self._query_token
        try:
            with aws_errors(f"read log group {self.state_machine_group}"):
                page = self.logs.filter_log_events(**args)
        except CloudError as exc:
            if exc.code == "ResourceNotFoundException":
                return []  # nothing logged yet
            raise
        self._query_token = page.get("nextToken")
        lines = []
        for event in page.get("events", ()):
            if event["eventId"] in self._seen:
                continue
            self._seen[event["eventId"]] = event["timestamp"]
            if _is_record_of(event["message"], self.arn):
                lines.append(LogLine(event["timestamp"], STATE_MACHINE_SOURCE, event["message"]))
        return lines


def _is_record_of(message: str, execution_arn: str) -> bool:
    """Whether ``message`` is a state machine log record of ``execution_arn``."""
    try:
        record = json.loads(message)
    except ValueError:
        return False
    return isinstance(record, Mapping) and record.get("execution_arn") == execution_arn


def log_lines(
    sfn: Any,
    logs: Any,
    execution_arn: str,
    *,
    state_machine_group: str | None,
    jobs_group: str | None,
    follow: bool = False,
    poll_seconds: float = 5.0,
    max_streams: int = _MAX_STREAMS_PER_POLL,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The execution's state machine log events and its Fargate tasks' log lines.

    A group given as None is not read (the state machine logs nowhere, say). Lines come in
    time order within each poll, and each line once.

    With ``follow`` it polls every ``poll_seconds`` while the execution runs; each poll reads
    only what is new, with at most ``max_streams`` job streams (the others at the next
    poll). Once the execution has ended, or without ``follow``, it reads everything left
    and returns; following an execution that ended less than a minute ago, it then waits
    for lines still on their way to CloudWatch (:func:`_settle`).
    """
    tail = _Tail(sfn, logs, execution_arn, state_machine_group, jobs_group, max_streams)
    while True:
        ended = tail.ended()
        tail.find_streams()
        if ended or not follow:
            yield from tail.drain()
            if follow and tail.recently_ended(datetime.now(UTC)):
                yield from _settle(tail, poll_seconds, sleep)
            return
        yield from tail.poll()
        sleep(poll_seconds)


def _settle(tail: _Tail, poll_seconds: float, sleep: Callable[[float], None]) -> Iterator[LogLine]:
    """Read again after ``poll_seconds`` while the last read found late lines (a task's
    last lines reach CloudWatch seconds after it stopped), at most ``_SETTLE_READS`` times."""
    for _ in range(_SETTLE_READS):
        sleep(poll_seconds)
        late = list(tail.drain())
        yield from late
        if not late:
            return


def last_lines(logs: Any, group: str, stream: str, count: int = 10) -> list[str]:
    """The last ``count`` messages of one log stream, oldest first (none if it is missing)."""
    try:
        with aws_errors(f"read log stream {group} {stream}"):
            found = logs.get_log_events(
                logGroupName=group, logStreamName=stream, limit=count, startFromHead=False
            )
    except CloudError as exc:
        if exc.code == "ResourceNotFoundException":
            return []
        raise
    return [str(event["message"]) for event in found.get("events", ())][-count:]
