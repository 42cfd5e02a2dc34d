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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from klippers.aws import JOB_STREAM_PREFIXES, STACK_ENV, STATE_MACHINE_ARN_ENV, StackNames
from klippers.cloud.clients import CloudError, CloudInputError, aws_errors, bucket_name
from klippers.cloud.warehouse import check_inputs
from klippers.contract import (
    ENV_BUCKET,
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_TRANSIENT,
    SHORTS_DIR,
    ContractError,
    ShortsConfig,
    VideoRef,
    validate_id,
)
from klippers.statemachine import (
    CHILD_NAMES,
    ERROR_BAD_INPUT,
    ERROR_JOB_FAILED,
    ERROR_SHARD_FAILED,
    ERROR_TIMED_OUT,
    FAILED_SHARD_FIELD,
    FAILED_SHORTS_FIELD,
    INPUT_USER_ID,
    INPUT_VIDEO_ID,
    OUTCOME_ERROR,
    OUTCOME_SEGMENT,
    PARENT_NAMES,
    PLAN_NAMES,
    READ_CONFIG,
    SHARD_NAMES,
    execution_input,
)
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
    """A deployed ``klippers-<stack>-video-processing`` and what its description tells.

    ``names`` are the stack's resource names when the machine's name is a stack's;
    ``log_group`` is the log group its logging configuration writes to.
    """

    arn: str
    name: str
    bucket: str | None
    names: StackNames | None = None
    log_group: str | None = None


def find_state_machine(
    sfn: Any,
    arn: str | None = None,
    environ: Mapping[str, str] | None = None,
    stack: str | None = None,
) -> StateMachine:
    """The state machine by ``arn`` or ``KLIPPERS_STATE_MACHINE_ARN``, else by the name of
    ``stack`` or ``KLIPPERS_STACK``, else the only stack's in this account and region."""
    env = environ or {}
    chosen = arn or env.get(STATE_MACHINE_ARN_ENV) or None
    if chosen is None:
        chosen = _state_machine_arn_of_stack(sfn, stack or env.get(STACK_ENV) or None)
    with aws_errors(f"describe state machine {chosen}"):
        described = sfn.describe_state_machine(stateMachineArn=chosen)
    return StateMachine(
        described["stateMachineArn"],
        described["name"],
        _definition_bucket(described.get("definition", "")),
        StackNames.from_state_machine(described["name"]),
        _log_group(described.get("loggingConfiguration")),
    )


def _state_machine_arn_of_stack(sfn: Any, stack: str | None) -> str:
    """The ARN of ``stack``'s state machine, or of the only stack's when ``stack`` is None."""
    wanted = None
    if stack is not None:
        try:
            wanted = StackNames.for_stack(stack).state_machine
        except ValueError as exc:
            raise CloudInputError(f"--stack: {exc}") from exc
    found: dict[str, str] = {}
    with aws_errors("list state machines"):
        for page in sfn.get_paginator("list_state_machines").paginate():
            for machine in page.get("stateMachines", ()):
                name = machine["name"]
                if name == wanted or (wanted is None and StackNames.from_state_machine(name)):
                    found[name] = str(machine["stateMachineArn"])
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        stacks = ", ".join(sorted(n.slug for n in map(StackNames.from_state_machine, found) if n))
        raise CloudInputError(
            f"state machines of several stacks here ({stacks}): choose one with --stack "
            f"or {STACK_ENV}"
        )
    what = f"named {wanted}" if wanted else "of a klippers stack (klippers-STACK-video-processing)"
    raise CloudError(
        f"no state machine {what} in this account and region: deploy it "
        f"(nox -s deploy), or pass --stack / --state-machine-arn / set {STATE_MACHINE_ARN_ENV}"
    )


def _log_group(logging: Mapping[str, Any] | None) -> str | None:
    """The log group name in a state machine's logging configuration, if any."""
    for destination in (logging or {}).get("destinations", ()):
        arn = destination.get("cloudWatchLogsLogGroup", {}).get("logGroupArn", "")
        _, marker, rest = arn.partition(":log-group:")
        if marker:
            return rest.removesuffix(":*")
    return None


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


EXIT_MEANINGS: Mapping[int, str] = {
    EXIT_FAILURE: "error",
    EXIT_BAD_INPUT: "bad input",
    EXIT_TRANSIENT: "transient failure",
    137: "killed, out of memory?",
}
"""What a job's exit code says (``klippers.jobs.runner`` exits with the first three)."""
ERROR_MEANINGS: Mapping[str, str] = {
    ERROR_BAD_INPUT: "bad input, not retried",
    ERROR_TIMED_OUT: "timed out, not retried",
    ERROR_JOB_FAILED: "failed after its retries",
    ERROR_SHARD_FAILED: "a transcription window failed for good",
}
"""What the definition's own errors say."""
_JOB_ORDER = (PLAN_NAMES, SHARD_NAMES, PARENT_NAMES, CHILD_NAMES)
"""The jobs in the order an execution runs them (failures are listed so)."""
_JOB_STATES = {names.task: rank for rank, names in enumerate(_JOB_ORDER)}
_WRAPPERS = {names.wrapper for names in _JOB_ORDER}
_TASK_FAILURES = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
}


@dataclass(frozen=True)
class JobFailure:
    """The last failed attempt of one job: the parent, or the child of one segment."""

    state: str
    segment: int | None
    """The short's segment, for a child."""
    attempts: int
    error: str
    exit_code: int | None
    stopped_reason: str | None
    container: str | None
    task_arn: str | None
    recovered: bool = False
    """A later attempt of the same job succeeded."""
    window: int | None = None
    """The transcription window, for a shard."""

    @property
    def log_stream(self) -> str | None:
        """The task's ``awslogs`` stream, when the task and its container are known."""
        if self.task_arn is None or self.container not in JOB_STREAM_PREFIXES:
            return None
        task_id = self.task_arn.rpartition("/")[2]
        return f"{JOB_STREAM_PREFIXES[self.container]}/{self.container}/{task_id}"

    def describe(self) -> str:
        """One line: which job, how many attempts, the exit code and what it means."""
        where = self.state
        if self.segment is not None:
            where += f" segment {self.segment}"
        if self.window is not None:
            where += f" window {self.window}"
        tries = f"{self.attempts} failed attempt{'s' if self.attempts > 1 else ''}"
        if self.exit_code is not None:
            meaning = EXIT_MEANINGS.get(self.exit_code, "error")
            what = f"exit {self.exit_code} ({meaning})"
        else:
            what = self.error
        recovered = ", then succeeded" if self.recovered else ""
        return f"{where}: {what}, {tries}{recovered}"


@dataclass(frozen=True)
class Status:
    """Where an execution stands, why it failed, and what it produced so far."""

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
    reason: str | None = None
    """The cause in a sentence (:func:`describe_cause`)."""
    failed_segments: tuple[int, ...] = ()
    job_failures: tuple[JobFailure, ...] = ()


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first."""
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


def job_failures(events: list[dict[str, Any]]) -> tuple[JobFailure, ...]:
    """The failed job attempts in an execution's history: the last one of each job.

    Each ``TaskFailed`` cause of ``runTask.sync`` is the ECS task description (exit code,
    stopped reason, task ARN); a ``TaskTimedOut`` gets the task from its submission.
    """
    by_id = {event["id"]: event for event in events}
    last: dict[tuple[str, int | None, int | None], JobFailure] = {}
    for event in events:
        entered, submitted = _attempt(event, by_id)
        if entered is None or entered.get("name") not in _JOB_STATES:
            continue
        state_input = _json(entered.get("input"))
        key = (entered["name"], _number(state_input, "segment"), _number(state_input, "shard"))
        previous = last.get(key)
        if event["type"] == "TaskSucceeded":
            if previous is not None:
                last[key] = replace(previous, recovered=True)
            continue
        details = event.get(_TASK_FAILURES[event["type"]]) or {}
        task = _task_description(details.get("cause")) or _submitted_task(submitted)
        last[key] = _job_failure(key, details, task, previous.attempts + 1 if previous else 1)
    return tuple(
        sorted(last.values(), key=lambda f: (_JOB_STATES[f.state], f.window or 0, f.segment or 0))
    )


def _attempt(
    event: Mapping[str, Any], by_id: Mapping[int, Mapping[str, Any]]
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The ``TaskStateEntered`` details of the attempt ``event`` ends, and its submission."""
    if event.get("type") not in (*_TASK_FAILURES, "TaskSucceeded"):
        return None, None
    submitted = None
    current = by_id.get(event.get("previousEventId", 0))
    while current is not None:
        if current.get("type") == "TaskSubmitted" and submitted is None:
            submitted = current.get("taskSubmittedEventDetails")
        if current.get("type") == "TaskStateEntered":
            return current.get("stateEnteredEventDetails"), submitted
        current = by_id.get(current.get("previousEventId", 0))
    return None, None


def _job_failure(
    key: tuple[str, int | None, int | None],
    details: Mapping[str, Any],
    task: Mapping[str, Any],
    attempts: int,
) -> JobFailure:
    containers = task.get("Containers") or [{}]
    container = containers[0] if isinstance(containers[0], Mapping) else {}
    exit_code = container.get("ExitCode")
    return JobFailure(
        state=key[0],
        segment=key[1],
        attempts=attempts,
        error=str(details.get("error") or "States.TaskFailed"),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        stopped_reason=container.get("Reason") or task.get("StoppedReason") or None,
        container=container.get("Name"),
        task_arn=task.get("TaskArn"),
        window=key[2],
    )


def _number(document: Any, field: str) -> int | None:
    """The integer ``field`` of a state's input (a child's segment, a shard's window)."""
    value = document.get(field) if isinstance(document, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _task_description(text: Any) -> Mapping[str, Any] | None:
    document = _json(text)
    return document if isinstance(document, Mapping) and "TaskArn" in document else None


def _submitted_task(details: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The task a ``runTask.sync`` submission started (a timed-out attempt has no other)."""
    document = _json((details or {}).get("output"))
    tasks = document.get("Tasks") if isinstance(document, Mapping) else None
    return tasks[0] if isinstance(tasks, list) and tasks and isinstance(tasks[0], Mapping) else {}


def describe_cause(cause: str | None) -> tuple[str | None, tuple[int, ...]]:
    """An execution's failure cause in a sentence, and the segments whose shorts failed.

    The Fail states' causes are JSON: ``{"Error", "Cause"}`` of the caught error (nested
    when a job re-raised it), or ``{"Error": "Klippers.ShortsFailed", "Shorts": [...]}``.
    """
    document = _json(cause)
    if not isinstance(document, Mapping):
        return cause, ()
    shorts = document.get(FAILED_SHORTS_FIELD)
    if isinstance(shorts, list):
        return _failed_shorts(shorts)
    chain = _error_chain(document)
    meaning = ERROR_MEANINGS.get(chain[0]) if chain else None
    text = ": ".join(chain)
    return (f"{text} ({meaning})" if meaning else text) or None, ()


def _failed_shorts(shorts: list[Any]) -> tuple[str, tuple[int, ...]]:
    failed = [
        (short[OUTCOME_SEGMENT], str(short.get(OUTCOME_ERROR)))
        for short in shorts
        if isinstance(short, Mapping) and isinstance(short.get(OUTCOME_SEGMENT), int)
    ]
    listed = ", ".join(f"{n} ({ERROR_MEANINGS.get(error, error)})" for n, error in failed)
    return f"failed shorts: segment {listed}", tuple(n for n, _ in failed)


def _error_chain(document: Mapping[str, Any]) -> list[str]:
    """The error names from the outermost to the original, then what the task said."""
    chain: list[str] = []
    current: Any = document
    while isinstance(current, Mapping) and "Error" in current:
        if isinstance(window := current.get(FAILED_SHARD_FIELD), int):
            chain.append(f"window {window}")
        chain.append(str(current["Error"]))
        inner = current.get("Cause")
        task = _task_description(inner)
        if task is not None:
            failure = _job_failure(("", None, None), {}, task, 1)
            code = "no exit code" if failure.exit_code is None else f"exit {failure.exit_code}"
            chain.append(f"{code}, {failure.stopped_reason or 'no stopped reason'}")
            break
        current = _json(inner)
        if not isinstance(current, Mapping) and inner:
            chain.append(str(inner))
    return chain


def execution_status(sfn: Any, storage: Storage, execution_arn: str) -> Status:
    """Describe an execution: open states, why it failed (job by job), shorts so far."""
    with aws_errors(f"describe execution {execution_arn}"):
        described = sfn.describe_execution(executionArn=execution_arn)
    ref = _input_ref(described.get("input", ""), execution_arn)
    status = described["status"]
    events = execution_history(sfn, execution_arn) if status != "SUCCEEDED" else []
    current = (
        tuple((name, count) for name, count in open_states(events) if name not in _WRAPPERS)
        if status == "RUNNING"
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
    error = described.get("error") or None
    cause = described.get("cause") or None
    reason, failed_segments = describe_cause(cause)
    return Status(
        arn=described["executionArn"],
        name=described["name"],
        ref=ref,
        status=status,
        started=described["startDate"],
        stopped=described.get("stopDate"),
        current_states=current,
        error=error,
        cause=cause,
        shorts=shorts,
        shorts_expected=expected,
        reason=reason,
        failed_segments=failed_segments,
        job_failures=job_failures(events),
    )
