"""Executions of the deployed state machine: find it, name, start, list, stop and describe runs.

Executions are named ``klippers-<user>-<video>-<hash>-<n>``: ``<user>-<video>`` is a
readable (possibly shortened) form of the IDs, ``<hash>`` makes the name unique per
video and ``<n>`` counts the runs of that video. Step Functions accepts a second start
with the same name and input as a no-op, so :func:`start_run` refuses by itself when
an execution of the video is RUNNING.

Examples
--------
>>> from klippers.contract import VideoRef
>>> execution_name(VideoRef("alice", "talk-1"), 1)
'klippers-alice-talk-1-7885110b-1'
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from klippers.aws import STATE_MACHINE_ARN_ENV, STATE_MACHINE_NAME
from klippers.cloud.clients import CloudError, CloudInputError, aws_errors, bucket_name
from klippers.cloud.warehouse import check_inputs
from klippers.contract import (
    ENV_BUCKET,
    SHORTS_DIR,
    ContractError,
    ShortsConfig,
    VideoRef,
    validate_id,
)
from klippers.statemachine import INPUT_USER_ID, INPUT_VIDEO_ID, READ_CONFIG, execution_input
from klippers.storage import Storage, StorageError

EXECUTION_NAME_PREFIX = "klippers"
MAX_EXECUTION_NAME = 80
_NAME_DIGEST_CHARS = 8
_MAX_RUN_DIGITS = 5
# "klippers-" + readable + "-" + digest + "-" + run number fits in 80 characters.
_READABLE_CHARS = (
    MAX_EXECUTION_NAME - len(EXECUTION_NAME_PREFIX) - 3 - _NAME_DIGEST_CHARS - _MAX_RUN_DIGITS
)
# Step Functions logs to CloudWatch only for execution names of these characters.
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class AlreadyRunningError(CloudError):
    """An execution of the same video is RUNNING; ``execution_arn`` names it."""

    def __init__(self, execution_arn: str) -> None:
        super().__init__(
            f"an execution of this video is already running: {execution_arn} "
            "(follow it with klip cloud status / logs, or end it with klip cloud stop)"
        )
        self.execution_arn = execution_arn


@dataclass(frozen=True)
class StateMachine:
    """A deployed ``klippers-video-processing`` and the bucket its definition reads."""

    arn: str
    name: str
    bucket: str | None


def find_state_machine(
    sfn: Any, arn: str | None = None, environ: Mapping[str, str] | None = None
) -> StateMachine:
    """The state machine by ``arn``, ``KLIPPERS_STATE_MACHINE_ARN``, else by its name."""
    chosen = arn or (environ or {}).get(STATE_MACHINE_ARN_ENV) or None
    if chosen is None:
        chosen = _state_machine_arn_by_name(sfn)
    with aws_errors(f"describe state machine {chosen}"):
        described = sfn.describe_state_machine(stateMachineArn=chosen)
    return StateMachine(
        described["stateMachineArn"],
        described["name"],
        _definition_bucket(described.get("definition", "")),
    )


def _state_machine_arn_by_name(sfn: Any) -> str:
    with aws_errors("list state machines"):
        for page in sfn.get_paginator("list_state_machines").paginate():
            for machine in page.get("stateMachines", ()):
                if machine["name"] == STATE_MACHINE_NAME:
                    return str(machine["stateMachineArn"])
    raise CloudError(
        f"no state machine named {STATE_MACHINE_NAME} in this account and region: deploy it "
        f"(nox -s deploy), or pass --state-machine-arn / set {STATE_MACHINE_ARN_ENV}"
    )


def _definition_bucket(definition: str) -> str | None:
    """The bucket the definition's ReadConfig state reads, if it can be found."""
    try:
        state = json.loads(definition)["States"][READ_CONFIG]
        bucket = state["Parameters"]["Bucket"]
    except (ValueError, KeyError, TypeError):
        return None
    return bucket if isinstance(bucket, str) else None


def run_bucket(machine: StateMachine, flag: str | None, environ: Mapping[str, str]) -> str:
    """The bucket of a run: the state machine's own; a different flag or variable is refused."""
    given = (flag or environ.get(ENV_BUCKET, "")).strip() or None
    if machine.bucket is None:
        return bucket_name(given, environ)
    if given is not None and given != machine.bucket:
        raise CloudInputError(
            f"bucket {given!r} is not the one {machine.name} reads ({machine.bucket!r})"
        )
    return machine.bucket


def execution_prefix(ref: VideoRef) -> str:
    """The name prefix shared by every execution of ``ref`` (ends with ``-``)."""
    digest = hashlib.sha256(f"{ref.user_id}/{ref.video_id}".encode()).hexdigest()
    readable = _NAME_UNSAFE.sub("_", f"{ref.user_id}-{ref.video_id}")[:_READABLE_CHARS]
    return f"{EXECUTION_NAME_PREFIX}-{readable}-{digest[:_NAME_DIGEST_CHARS]}-"


def execution_name(ref: VideoRef, run: int) -> str:
    """The name of run number ``run`` (from 1) of ``ref``."""
    if not 1 <= run < 10**_MAX_RUN_DIGITS:
        raise CloudError(f"run number {run} is out of range")
    return f"{execution_prefix(ref)}{run}"


def _run_number(name: str, prefix: str) -> int | None:
    rest = name.removeprefix(prefix)
    return int(rest) if rest != name and rest.isdigit() else None


@dataclass(frozen=True)
class ExecutionSummary:
    """One execution as listed."""

    arn: str
    name: str
    status: str
    started: datetime
    stopped: datetime | None


def _summary(item: Mapping[str, Any]) -> ExecutionSummary:
    return ExecutionSummary(
        arn=item["executionArn"],
        name=item["name"],
        status=item["status"],
        started=item["startDate"],
        stopped=item.get("stopDate"),
    )


def _executions(
    sfn: Any, machine_arn: str, status: str | None = None
) -> Iterator[ExecutionSummary]:
    """Executions of the state machine, newest first."""
    args = {"stateMachineArn": machine_arn, **({"statusFilter": status} if status else {})}
    with aws_errors("list executions"):
        for page in sfn.get_paginator("list_executions").paginate(**args):
            for item in page.get("executions", ()):
                yield _summary(item)


def list_runs(
    sfn: Any,
    machine_arn: str,
    *,
    user: str | None = None,
    video: str | None = None,
    limit: int = 20,
) -> list[ExecutionSummary]:
    """Recent executions, newest first, optionally of one user or one video."""
    if video is not None and user is None:
        raise CloudInputError("--video needs --user (a video ID is unique per user)")
    if limit < 1:
        raise CloudInputError(f"limit must be at least 1 (got {limit})")
    ref = VideoRef(user, video) if user is not None and video is not None else None
    user_prefix = (
        f"{EXECUTION_NAME_PREFIX}-{_NAME_UNSAFE.sub('_', validate_id(user, 'user_id'))}-"
        if user is not None
        else ""
    )
    found: list[ExecutionSummary] = []
    for summary in _executions(sfn, machine_arn):
        if len(found) >= limit:
            break
        if ref is not None:
            if _run_number(summary.name, execution_prefix(ref)) is None:
                continue
        elif user is not None and (
            not summary.name.startswith(user_prefix)
            or describe_input(sfn, summary.arn).user_id != user
        ):
            continue
        found.append(summary)
    return found


def describe_input(sfn: Any, execution_arn: str) -> VideoRef:
    """The video an execution processes, from its input."""
    with aws_errors(f"describe execution {execution_arn}"):
        described = sfn.describe_execution(executionArn=execution_arn)
    return _input_ref(described.get("input", ""), execution_arn)


def _input_ref(text: str, execution_arn: str) -> VideoRef:
    try:
        data = json.loads(text)
        return VideoRef(data[INPUT_USER_ID], data[INPUT_VIDEO_ID])
    except (ValueError, KeyError, TypeError) as exc:
        raise CloudError(f"{execution_arn}: input does not name a klippers video") from exc


@dataclass(frozen=True)
class Run:
    """A started execution."""

    execution_arn: str
    name: str
    ref: VideoRef
    input: dict[str, str]


def start_run(sfn: Any, storage: Storage, machine: StateMachine, ref: VideoRef) -> Run:
    """Check the inputs, refuse while ``ref`` is RUNNING, then start the next named run."""
    check_inputs(storage, ref)
    prefix = execution_prefix(ref)
    running = next(
        (e for e in _executions(sfn, machine.arn, "RUNNING") if _run_number(e.name, prefix)),
        None,
    )
    if running is not None:
        raise AlreadyRunningError(running.arn)
    latest = next(
        (n for e in _executions(sfn, machine.arn) if (n := _run_number(e.name, prefix))), 0
    )
    name = execution_name(ref, latest + 1)
    payload = execution_input(ref)
    try:
        with aws_errors(f"start execution {name}"):
            started = sfn.start_execution(
                stateMachineArn=machine.arn, name=name, input=json.dumps(payload)
            )
    except CloudError as exc:
        if exc.code == "ExecutionAlreadyExists":
            raise CloudError(
                f"execution {name} was started meanwhile by someone else; see klip cloud list"
            ) from exc
        raise
    return Run(started["executionArn"], name, ref, payload)


def stop_run(sfn: Any, execution_arn: str, cause: str = "stopped with klip cloud stop") -> str:
    """Stop a running execution; return its status afterwards."""
    with aws_errors(f"describe execution {execution_arn}"):
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
    if status != "RUNNING":
        raise CloudError(f"{execution_arn} is not running (status {status})")
    with aws_errors(f"stop execution {execution_arn}"):
        sfn.stop_execution(executionArn=execution_arn, cause=cause)
        return str(sfn.describe_execution(executionArn=execution_arn)["status"])


def resolve_execution(
    sfn: Any, machine: StateMachine, execution: str | None, ref: VideoRef | None
) -> str:
    """An execution ARN from an ARN, an execution name, or the latest run of ``ref``."""
    if execution:
        if execution.startswith("arn:"):
            return execution
        head, marker, _ = machine.arn.partition(":stateMachine:")
        if not marker:
            raise CloudError(f"not a state machine ARN: {machine.arn}")
        return f"{head}:execution:{machine.name}:{execution}"
    if ref is None:
        raise CloudInputError("name the execution (ARN or name) or pass --user and --video")
    prefix = execution_prefix(ref)
    latest = next((e for e in _executions(sfn, machine.arn) if _run_number(e.name, prefix)), None)
    if latest is None:
        raise CloudInputError(
            f"no execution of {ref.user_id}/{ref.video_id} yet (start one: klip cloud run)"
        )
    return latest.arn


@dataclass(frozen=True)
class Status:
    """Where an execution stands and what it produced so far."""

    arn: str
    name: str
    ref: VideoRef
    status: str
    started: datetime
    stopped: datetime | None
    current_states: tuple[tuple[str, int], ...]
    error: str | None
    cause: str | None
    shorts: tuple[str, ...]
    shorts_expected: int | None


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with aws_errors(f"execution history of {execution_arn}"):
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page.get("events", ()))
    return events


def open_states(events: list[dict[str, Any]]) -> tuple[tuple[str, int], ...]:
    """States entered and not yet exited, in order of entry, with how many are open."""
    open_count: Counter[str] = Counter()
    order: list[str] = []
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            open_count[entered["name"]] += 1
            if entered["name"] not in order:
                order.append(entered["name"])
        elif exited and open_count[exited["name"]] > 0:
            open_count[exited["name"]] -= 1
    return tuple((name, open_count[name]) for name in order if open_count[name] > 0)


def execution_status(sfn: Any, storage: Storage, execution_arn: str) -> Status:
    """Describe an execution, its open states, failure, and the shorts in the warehouse."""
    with aws_errors(f"describe execution {execution_arn}"):
        described = sfn.describe_execution(executionArn=execution_arn)
    ref = _input_ref(described.get("input", ""), execution_arn)
    current = (
        open_states(execution_history(sfn, execution_arn))
        if described["status"] == "RUNNING"
        else ()
    )
    shorts = tuple(
        key for key in storage.list(f"{ref.prefix}{SHORTS_DIR}/") if key.endswith(".mp4")
    )
    try:
        config = ShortsConfig.from_json(storage.read_bytes(ref.shorts_config).decode("utf-8"))
        expected: int | None = config.segment_count or None
    except (StorageError, ContractError, UnicodeDecodeError):
        expected = None
    return Status(
        arn=described["executionArn"],
        name=described["name"],
        ref=ref,
        status=described["status"],
        started=described["startDate"],
        stopped=described.get("stopDate"),
        current_states=current,
        error=described.get("error") or None,
        cause=(described.get("cause") or None),
        shorts=shorts,
        shorts_expected=expected,
    )
