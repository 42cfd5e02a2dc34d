"""Log lines of an execution: the state machine's own events and its Fargate tasks' lines."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from klippers.aws import JOB_STREAM_PREFIXES
from klippers.cloud.clients import CloudError, aws_errors
from klippers.cloud.executions import execution_history

STATE_MACHINE_SOURCE = "state-machine"
""":attr:`LogLine.source` of the state machine's own log events (job lines name their stream)."""

_TASK_ARN = re.compile(r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task/[^/\s\"]+/([A-Za-z0-9-]+)")
_MAX_LOG_STREAMS_PER_CALL = 100


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


def _filter_events(
    logs: Any, group: str, start_ms: int, streams: list[str] | None, pattern: str | None
) -> Iterator[dict[str, Any]]:
    chunks: list[list[str] | None] = (
        [
            streams[i : i + _MAX_LOG_STREAMS_PER_CALL]
            for i in range(0, len(streams), _MAX_LOG_STREAMS_PER_CALL)
        ]
        if streams is not None
        else [None]
    )
    for chunk in chunks:
        args: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
        if chunk is not None:
            args["logStreamNames"] = chunk
        if pattern:
            args["filterPattern"] = pattern
        try:
            with aws_errors(f"read log group {group}"):
                for page in logs.get_paginator("filter_log_events").paginate(**args):
                    yield from page.get("events", ())
        except CloudError as exc:
            if exc.code == "ResourceNotFoundException":
                return  # no such group or stream yet: nothing logged
            raise


def _state_machine_lines(
    logs: Any, group: str, execution_arn: str, start_ms: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    for event in _filter_events(logs, group, start_ms, None, json.dumps(execution_arn)):
        try:
            record = json.loads(event["message"])
        except ValueError:
            continue
        if isinstance(record, Mapping) and record.get("execution_arn") == execution_arn:
            yield STATE_MACHINE_SOURCE, event


def log_lines(
    sfn: Any,
    logs: Any,
    execution_arn: str,
    *,
    state_machine_group: str | None,
    jobs_group: str | None,
    follow: bool = False,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The execution's state machine log events and its Fargate tasks' log lines, in time order.

    A group given as None is not read (the state machine logs nowhere, say).

    With ``follow`` it polls every ``poll_seconds`` until the execution has ended, then
    yields what arrived last and returns.
    """
    seen: set[str] = set()
    while True:
        with aws_errors(f"describe execution {execution_arn}"):
            described = sfn.describe_execution(executionArn=execution_arn)
        start_ms = int(described["startDate"].timestamp() * 1000) - 1000
        ended = described["status"] != "RUNNING"
        streams = job_streams(execution_history(sfn, execution_arn))
        batch = (
            [*_state_machine_lines(logs, state_machine_group, execution_arn, start_ms)]
            if state_machine_group
            else []
        )
        if streams and jobs_group:
            batch.extend(
                (e["logStreamName"], e)
                for e in _filter_events(logs, jobs_group, start_ms, streams, None)
            )
        batch.sort(key=lambda item: (item[1]["timestamp"], item[1].get("eventId", "")))
        for source, event in batch:
            key = f"{source}\0{event.get('eventId') or (event['timestamp'], event['message'])}"
            if key in seen:
                continue
            seen.add(key)
            yield LogLine(event["timestamp"], source, event["message"])
        if ended or not follow:
            return
        sleep(poll_seconds)


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
