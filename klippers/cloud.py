"""``klip cloud``'s logic: upload a video, run, watch and fetch the pipeline on AWS.

The state machine ``klippers-video-processing`` (see :mod:`klippers.statemachine`) runs
the parent Fargate task, then one child task per short. This module talks to it with
boto3 and moves files through :class:`klippers.storage.S3Storage`; it never prints or
exits. ``klippers.cloud_cli`` is the thin click layer on top.

Executions are named ``klippers-<user>-<video>-<hash>-<n>``: ``<user>-<video>`` is a
readable (possibly shortened) form of the IDs, ``<hash>`` makes the name unique per
video and ``<n>`` counts the runs of that video. Step Functions accepts a second start
with the same name and input as a no-op, so :func:`start_run` refuses by itself when
an execution of the video is RUNNING.

The cost and latency model behind ``klip cloud estimate`` is :func:`estimate`.

Examples
--------
>>> from klippers.contract import VideoRef
>>> execution_name(VideoRef("alice", "talk-1"), 1)
'klippers-alice-talk-1-7885110b-1'
>>> round(estimate(hours=1, shorts=5).total_dollars, 3) <= TARGET_DOLLARS_PER_HOUR
True
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klippers.contract import (
    ENV_BUCKET,
    ENV_USER_ID,
    ENV_VIDEO_ID,
    SEGMENTS_DIR,
    SHORTS_DIR,
    ContractError,
    ShortsConfig,
    VideoRef,
    validate_id,
    video_id_for,
)
from klippers.statemachine import (
    CHILD_CONTAINER,
    INPUT_USER_ID,
    INPUT_VIDEO_ID,
    PARENT_CONTAINER,
    READ_CONFIG,
    STATE_MACHINE_LOG_GROUP,
    STATE_MACHINE_NAME,
    execution_input,
)
from klippers.storage import Progress, S3Storage, Storage, StorageError

STATE_MACHINE_ARN_ENV = "KLIPPERS_STATE_MACHINE_ARN"
"""Environment variable holding the state machine ARN (the stack output ``stateMachineArn``)."""

JOBS_LOG_GROUP = "/ecs/klippers-jobs"
"""CloudWatch log group of the Fargate jobs (the stack output ``jobsLogGroup``)."""

JOB_STREAM_PREFIXES: Mapping[str, str] = {PARENT_CONTAINER: "parent", CHILD_CONTAINER: "child"}
"""``awslogs-stream-prefix`` of each job container; streams are ``prefix/container/task-id``."""

STATE_MACHINE_SOURCE = "state-machine"
""":attr:`LogLine.source` of the state machine's own log events (job lines name their stream)."""

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
_TASK_ARN = re.compile(r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task/[^/\s\"]+/([A-Za-z0-9-]+)")
_MAX_LOG_STREAMS_PER_CALL = 100
_MAX_DETAIL_CHARS = 2000
_THUMBNAIL_WIDTH = 640


class CloudError(Exception):
    """An AWS call failed or the cloud is not in the state a command needs.

    ``code`` is the AWS error code when an AWS call failed.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class CloudInputError(CloudError, ValueError):
    """The user's input is invalid: IDs, files, flags, or a missing uploaded input."""


class MissingInputsError(CloudInputError):
    """Inputs the pipeline needs are not in the warehouse; ``keys`` names them."""

    def __init__(self, where: str, keys: tuple[str, ...]) -> None:
        listed = ", ".join(keys)
        super().__init__(
            f"missing in {where}: {listed} (upload first: klip cloud upload VIDEO.mp4 ...)"
        )
        self.keys = keys


class AlreadyRunningError(CloudError):
    """An execution of the same video is RUNNING; ``execution_arn`` names it."""

    def __init__(self, execution_arn: str) -> None:
        super().__init__(
            f"an execution of this video is already running: {execution_arn} "
            "(follow it with klip cloud status / logs, or end it with klip cloud stop)"
        )
        self.execution_arn = execution_arn


# --- AWS clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clients:
    """boto3 clients for Step Functions, CloudWatch Logs and S3.

    boto3 finds credentials, region and endpoints as usual (``AWS_PROFILE``,
    ``AWS_REGION``, ``AWS_ENDPOINT_URL``...).
    """

    sfn: Any
    logs: Any
    s3: Any

    @classmethod
    def connect(cls, region: str | None = None, max_attempts: int = 8) -> Clients:
        """Create the clients with botocore's ``standard`` retries."""
        try:
            import boto3  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]
        except ImportError as exc:
            raise CloudError("klip cloud needs boto3: pip install 'klippers[aws]'") from exc
        session = boto3.session.Session(region_name=region)
        if session.region_name is None:
            raise CloudInputError("no AWS region: set AWS_REGION (or a profile's region)")
        config = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"})
        return cls(
            sfn=session.client("stepfunctions", config=config),
            logs=session.client("logs", config=config),
            s3=session.client("s3", config=config),
        )

    def warehouse(self, bucket: str) -> S3Storage:
        """The warehouse bucket as a :class:`~klippers.storage.S3Storage`."""
        try:
            return S3Storage(bucket, client=self.s3)
        except StorageError as exc:
            raise CloudInputError(str(exc)) from exc


@contextmanager
def _aws(action: str) -> Iterator[None]:
    """Turn botocore errors into :class:`CloudError` naming ``action``."""
    import botocore.exceptions  # type: ignore[import-untyped]

    try:
        yield
    except botocore.exceptions.NoCredentialsError as exc:
        raise CloudError(
            f"{action}: no AWS credentials found (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)"
        ) from exc
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        raise CloudError(f"{action}: {code}: {error.get('Message', exc)}", code) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise CloudError(f"{action}: {exc}") from exc


def bucket_name(flag: str | None, environ: Mapping[str, str]) -> str:
    """The warehouse bucket: ``flag``, else ``VIDEO_WAREHOUSE_S3_BUCKET_NAME``."""
    bucket = (flag or environ.get(ENV_BUCKET, "")).strip()
    if not bucket:
        raise CloudInputError(f"no bucket: pass --bucket or set {ENV_BUCKET}")
    return bucket


def video_ref(user: str | None, video: str | None, environ: Mapping[str, str]) -> VideoRef:
    """The video from flags, else the seed's ``USER_ID`` / ``VIDEO_ID`` variables."""
    values = []
    for value, env_name, option in (
        (user, ENV_USER_ID, "--user"),
        (video, ENV_VIDEO_ID, "--video"),
    ):
        chosen = value if value is not None else environ.get(env_name)
        if chosen is None:
            raise CloudInputError(f"no {option[2:]} ID: pass {option} or set {env_name}")
        values.append(chosen)
    try:
        return VideoRef(*values)
    except ContractError as exc:
        raise CloudInputError(str(exc)) from exc


# --- upload -----------------------------------------------------------------------------------


def slug(file_name: str) -> str:
    """A video ID from a file name (see :func:`klippers.contract.video_id_for`)."""
    try:
        return video_id_for(file_name)
    except ContractError as exc:
        raise CloudInputError(f"{exc}; pass --video") from exc


@dataclass(frozen=True)
class Upload:
    """What :func:`upload` stored: every key, and whether the video was already current."""

    ref: VideoRef
    keys: tuple[str, ...]
    config: ShortsConfig
    video_already_current: bool
    duration_seconds: float


def upload(
    storage: Storage,
    video: Path,
    ref: VideoRef,
    *,
    shorts: int,
    short_seconds: float,
    progress: Progress | None = None,
) -> Upload:
    """Check ``video`` and store ``original.mp4``, ``thumbnail.png`` and ``shorts_config.json``.

    The config is written last, so a warehouse holding it holds the whole input. An
    ``original.mp4`` already holding the same bytes (by SHA-256) is not sent again.

    Raises
    ------
    klipmedia.errors.MediaError
        ``video`` is missing, empty, unreadable or has no video stream.
    CloudInputError
        ``shorts`` or ``short_seconds`` break the ``shorts_config.json`` contract.
    """
    from klipmedia.probe import probe
    from klipmedia.thumbnail import thumbnail

    info = probe(video)
    try:
        config = ShortsConfig(
            segment_count=shorts,
            target_short_video_duration_in_seconds=short_seconds,
            user_id=ref.user_id,
            video_id=ref.video_id,
        )
    except ContractError as exc:
        raise CloudInputError(str(exc)) from exc
    current = storage.is_current(ref.original_video, video)
    if not current:
        storage.upload(video, ref.original_video, progress)
    with tempfile.TemporaryDirectory(prefix="klippers-thumb-") as folder:
        still = thumbnail(video, Path(folder) / "thumbnail.png", width=_THUMBNAIL_WIDTH)
        storage.upload(still, ref.thumbnail)
    storage.write_bytes(ref.shorts_config, config.to_json().encode("utf-8"))
    return Upload(ref, ref.input_keys(), config, current, info.duration)


# --- the state machine ------------------------------------------------------------------------


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
    with _aws(f"describe state machine {chosen}"):
        described = sfn.describe_state_machine(stateMachineArn=chosen)
    return StateMachine(
        described["stateMachineArn"],
        described["name"],
        _definition_bucket(described.get("definition", "")),
    )


def _state_machine_arn_by_name(sfn: Any) -> str:
    with _aws("list state machines"):
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


# --- execution names --------------------------------------------------------------------------


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
    with _aws("list executions"):
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
    with _aws(f"describe execution {execution_arn}"):
        described = sfn.describe_execution(executionArn=execution_arn)
    return _input_ref(described.get("input", ""), execution_arn)


def _input_ref(text: str, execution_arn: str) -> VideoRef:
    try:
        data = json.loads(text)
        return VideoRef(data[INPUT_USER_ID], data[INPUT_VIDEO_ID])
    except (ValueError, KeyError, TypeError) as exc:
        raise CloudError(f"{execution_arn}: input does not name a klippers video") from exc


# --- run --------------------------------------------------------------------------------------


def check_inputs(storage: Storage, ref: VideoRef) -> ShortsConfig:
    """Raise :class:`MissingInputsError` unless every uploaded input of ``ref`` exists.

    One listing of the video folder (no ``HeadObject``, which answers 403 instead of 404
    without ``s3:ListBucket``); then ``shorts_config.json`` is read and validated.
    """
    present = set(storage.list(ref.prefix))
    missing = tuple(key for key in ref.input_keys() if key not in present)
    if missing:
        raise MissingInputsError(storage.describe(), missing)
    try:
        return ShortsConfig.from_json(storage.read_bytes(ref.shorts_config).decode("utf-8"))
    except (ContractError, UnicodeDecodeError) as exc:
        raise CloudInputError(f"{storage.describe(ref.shorts_config)}: {exc}") from exc


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
        with _aws(f"start execution {name}"):
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
    with _aws(f"describe execution {execution_arn}"):
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
    if status != "RUNNING":
        raise CloudError(f"{execution_arn} is not running (status {status})")
    with _aws(f"stop execution {execution_arn}"):
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


# --- status -----------------------------------------------------------------------------------


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


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with _aws(f"execution history of {execution_arn}"):
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
    with _aws(f"describe execution {execution_arn}"):
        described = sfn.describe_execution(executionArn=execution_arn)
    ref = _input_ref(described.get("input", ""), execution_arn)
    current = open_states(_history(sfn, execution_arn)) if described["status"] == "RUNNING" else ()
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


# --- download ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Downloaded:
    """Files :func:`download` wrote or found current."""

    written: tuple[Path, ...]
    already_current: tuple[Path, ...]


def download(storage: Storage, ref: VideoRef, dest: Path) -> Downloaded:
    """Fetch the shorts, the manifest and the segment SRTs of ``ref`` into ``dest`` (flat).

    Files already holding the stored content are left alone.
    """
    keys = [
        key
        for key in storage.list(ref.prefix)
        if (key.startswith(f"{ref.prefix}{SHORTS_DIR}/") and key.endswith(".mp4"))
        or (key.startswith(f"{ref.prefix}{SEGMENTS_DIR}/") and key.endswith(".srt"))
        or key == ref.manifest
    ]
    if not any(key.startswith(f"{ref.prefix}{SHORTS_DIR}/") for key in keys):
        raise CloudInputError(
            f"no shorts in {storage.describe()}{ref.prefix} yet (see klip cloud status)"
        )
    if dest.exists() and not dest.is_dir():
        raise CloudInputError(f"{dest}: not a folder")
    written: list[Path] = []
    current: list[Path] = []
    for key in keys:
        target = dest / key.rpartition("/")[2]
        if target.is_file() and storage.is_current(key, target):
            current.append(target)
            continue
        storage.download(key, target)
        written.append(target)
    return Downloaded(tuple(written), tuple(current))


# --- logs -------------------------------------------------------------------------------------


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
            with _aws(f"read log group {group}"):
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
    follow: bool = False,
    poll_seconds: float = 5.0,
    state_machine_group: str = STATE_MACHINE_LOG_GROUP,
    jobs_group: str = JOBS_LOG_GROUP,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The execution's state machine log events and its Fargate tasks' log lines, in time order.

    With ``follow`` it polls every ``poll_seconds`` until the execution has ended, then
    yields what arrived last and returns.
    """
    seen: set[str] = set()
    while True:
        with _aws(f"describe execution {execution_arn}"):
            described = sfn.describe_execution(executionArn=execution_arn)
        start_ms = int(described["startDate"].timestamp() * 1000) - 1000
        ended = described["status"] != "RUNNING"
        streams = job_streams(_history(sfn, execution_arn))
        batch = [*_state_machine_lines(logs, state_machine_group, execution_arn, start_ms)]
        if streams:
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


# --- the cost and latency model ---------------------------------------------------------------

PRICES_TAKEN = "2026-03"
"""When the prices below were read: aws.amazon.com/fargate/pricing and
aws.amazon.com/step-functions/pricing, us-east-1, Linux/x86, on demand."""
FARGATE_VCPU_HOUR = 0.04048
FARGATE_GB_HOUR = 0.004445
FARGATE_STORAGE_GB_HOUR = 0.000111
"""Ephemeral storage above the included 20 GB."""
FARGATE_INCLUDED_STORAGE_GB = 20
FARGATE_MINIMUM_BILLED_SECONDS = 60
PUBLIC_IPV4_HOUR = 0.005
"""Each task gets a public IPv4 address (``assignPublicIp``, the default without NAT)."""
STEP_FUNCTIONS_TRANSITION = 0.025 / 1000
"""Standard workflows; S3 requests (a few dozen per run) are left out: well under $0.001."""

ASR_RTF_TINY_EN_2_CORES = 0.036
"""faster-whisper tiny.en int8: processing time / audio time on this machine's 2 cores."""
ASR_MEASURED_CORES = 2
ASR_MODEL_CPU_FACTOR: Mapping[str, float] = {
    "tiny.en": 1.0,
    "tiny": 1.0,
    "base.en": 3.0,
    "base": 3.0,
    "small.en": 9.0,
    "small": 9.0,
}
"""CPU relative to tiny.en. Only tiny.en is measured; base ~3x and small ~9x are estimates
from the models' sizes (39 M, 74 M, 244 M parameters) and published relative speeds."""
SMART_CUT_CPU_PER_SEGMENT_SECOND = 0.1
"""Frame-accurate cut (re-encode of the GOP edges, copy between): measured on 2 cores,
to be re-measured with the final cutter."""
RENDER_CPU_PER_OUTPUT_SECOND = 1.1
"""Vertical 1080x1920 render, libx264 veryfast, captions: CPU seconds per output second."""
REFRAME_CPU_PER_VIDEO_SECOND = 0.11
"""Face-following crop analysis of the segment a child renders, per second of video."""
PARALLEL_EFFICIENCY = 0.75
"""Assumed share of the extra vCPUs a stage turns into speed (not measured above 2 cores)."""
TASK_STARTUP_SECONDS = 60.0
"""Assumed Fargate start: ENI, image pull (~1.5 GB image with the ASR model), container start;
billed (billing starts at the image pull)."""
S3_MEGABYTES_PER_SECOND = 100.0
"""Assumed S3 <-> Fargate throughput in one region."""
VIDEO_MEGABITS_PER_SECOND = 5.0
"""Assumed bitrate of the uploaded 1080p original (the parent downloads all of it)."""
SHORT_MEGABITS_PER_SECOND = 8.0
"""Bitrate of a cut segment / rendered short (children download one, upload one)."""
STATE_TRANSITIONS_FIXED = 7
"""RunParent, ReadConfig, CheckSegmentCount, ListSegments, RenderShorts, Done, + start."""
STATE_TRANSITIONS_PER_SHORT = 1
STEP_FUNCTIONS_OVERHEAD_SECONDS = 5.0
"""ReadConfig, Choice, Map scheduling and the ``.sync`` polling between tasks."""
PARENT_MEMORY_NEED_GB = 4.0
"""Decoding, the ASR model and segment cutting (base model); assumed with margin."""
CHILD_MEMORY_NEED_GB = 3.0
"""One 1080x1920 render with the background and face tracking; assumed with margin."""
EPHEMERAL_STORAGE_GB = 100
"""Task disk configured by the stack (``ephemeralStorageGib``)."""

SEED_MINUTES = 30.0
SEED_DOLLARS = 3.50
"""What the seed's pipeline took for a 1-hour video and 5 shorts (16 vCPU / 64 GB tasks)."""
SEED_SIZE_VCPU = 16.0
SEED_SIZE_GB = 64.0
TARGET_MINUTES_PER_HOUR = 8.0
TARGET_DOLLARS_PER_HOUR = 0.35
"""Targets for a 1-hour video: <= 8 minutes and <= $0.35."""
LATENCY_HEADROOM = 0.75
""":func:`recommend` keeps the modelled wall time within this share of the target."""


def _gb(low: int, high: int, step: int) -> tuple[float, ...]:
    return tuple(float(m) for m in range(low, high + 1, step))


# Fargate CPU (vCPU) -> the memory sizes (GB) it allows (the one table; infra uses it too).
FARGATE_SIZES: Mapping[float, tuple[float, ...]] = {
    0.25: (0.5, 1.0, 2.0),
    0.5: _gb(1, 4, 1),
    1.0: _gb(2, 8, 1),
    2.0: _gb(4, 16, 1),
    4.0: _gb(8, 30, 1),
    8.0: _gb(16, 60, 4),
    16.0: _gb(32, 120, 8),
}


def fargate_size_problem(vcpu: float, memory_gb: float) -> str | None:
    """Why Fargate refuses ``vcpu`` with ``memory_gb``, or None when it allows them."""
    if vcpu not in FARGATE_SIZES:
        allowed = ", ".join(f"{v:g}" for v in FARGATE_SIZES)
        return f"vCPU must be one of {allowed} (got {vcpu:g})"
    choices = FARGATE_SIZES[vcpu]
    if memory_gb not in choices:
        listed = ", ".join(f"{m:g}" for m in choices)
        return (
            f"{vcpu:g} vCPU takes {choices[0]:g} to {choices[-1]:g} GB: {listed} "
            f"(got {memory_gb:g})"
        )
    return None


@dataclass(frozen=True)
class TaskSize:
    """A Fargate task size: vCPU and memory (GB), validated against Fargate's combinations."""

    vcpu: float
    memory_gb: float

    def __post_init__(self) -> None:
        problem = fargate_size_problem(self.vcpu, self.memory_gb)
        if problem is not None:
            raise CloudInputError(problem)

    @property
    def cpu_units(self) -> int:
        """ECS CPU units (1024 per vCPU), as the stack config ``parentCpu`` wants them."""
        return round(self.vcpu * 1024)

    @property
    def memory_mib(self) -> int:
        """Memory in MiB, as the stack config ``parentMemory`` wants it."""
        return round(self.memory_gb * 1024)

    def dollars(self, seconds: float, storage_gb: float = EPHEMERAL_STORAGE_GB) -> float:
        """On-demand price of one task running ``seconds`` (one-minute minimum)."""
        hours = max(seconds, FARGATE_MINIMUM_BILLED_SECONDS) / 3600
        extra_storage = max(0.0, storage_gb - FARGATE_INCLUDED_STORAGE_GB)
        return hours * (
            self.vcpu * FARGATE_VCPU_HOUR
            + self.memory_gb * FARGATE_GB_HOUR
            + extra_storage * FARGATE_STORAGE_GB_HOUR
            + PUBLIC_IPV4_HOUR
        )


def smallest_size(vcpu: float, memory_need_gb: float) -> TaskSize:
    """The least memory Fargate allows with ``vcpu`` that covers ``memory_need_gb``."""
    if vcpu not in FARGATE_SIZES:
        TaskSize(vcpu, 1.0)  # raises the readable error
    memory = next((m for m in FARGATE_SIZES[vcpu] if m >= memory_need_gb), None)
    if memory is None:
        raise CloudInputError(f"{vcpu:g} vCPU cannot have {memory_need_gb:g} GB")
    return TaskSize(vcpu, memory)


SEED_SIZE = TaskSize(SEED_SIZE_VCPU, SEED_SIZE_GB)


@dataclass(frozen=True)
class Stage:
    """One stage of the model: where it runs, its CPU seconds and its wall seconds."""

    name: str
    task: str
    cpu_seconds: float
    wall_seconds: float


@dataclass(frozen=True)
class Estimate:
    """Wall time and dollars of one video through the pipeline (see :func:`estimate`)."""

    hours: float
    shorts: int
    short_seconds: float
    asr_model: str
    parent: TaskSize
    child: TaskSize
    max_concurrency: int
    stages: tuple[Stage, ...]
    parent_seconds: float
    child_seconds: float
    waves: int
    wall_seconds: float
    fargate_dollars: float
    state_transitions: int
    step_functions_dollars: float
    notes: tuple[str, ...] = field(default=())

    @property
    def total_dollars(self) -> float:
        """Fargate plus Step Functions (S3 requests are negligible)."""
        return self.fargate_dollars + self.step_functions_dollars

    @property
    def wall_minutes(self) -> float:
        """End-to-end minutes from the start of the execution."""
        return self.wall_seconds / 60

    @property
    def child_cpu_seconds(self) -> float:
        """CPU seconds of all children together."""
        return sum(s.cpu_seconds for s in self.stages if s.task == "child") * self.shorts

    @property
    def target_minutes(self) -> float:
        """The latency target scaled to this video's length."""
        return TARGET_MINUTES_PER_HOUR * self.hours

    @property
    def target_dollars(self) -> float:
        """The cost target scaled to this video's length."""
        return TARGET_DOLLARS_PER_HOUR * self.hours

    @property
    def meets_targets(self) -> bool:
        """Whether both scaled targets are met."""
        return (
            self.wall_minutes <= self.target_minutes and self.total_dollars <= self.target_dollars
        )


def _wall(cpu_seconds: float, vcpu: float) -> float:
    """Wall seconds of ``cpu_seconds`` of work on ``vcpu`` (one vCPU is fully used)."""
    effective = 1 + (vcpu - 1) * PARALLEL_EFFICIENCY if vcpu > 1 else vcpu
    return cpu_seconds / effective


def _asr_cpu_per_second(model: str) -> float:
    if model not in ASR_MODEL_CPU_FACTOR:
        known = ", ".join(ASR_MODEL_CPU_FACTOR)
        raise CloudInputError(f"no CPU figure for ASR model {model!r} (known: {known})")
    return ASR_RTF_TINY_EN_2_CORES * ASR_MEASURED_CORES * ASR_MODEL_CPU_FACTOR[model]


def estimate(
    *,
    hours: float,
    shorts: int,
    short_seconds: float = 60.0,
    parent: TaskSize | None = None,
    child: TaskSize | None = None,
    max_concurrency: int = 10,
    asr_model: str = "base",
) -> Estimate:
    """Model one execution: per-stage CPU seconds -> wall seconds on the task sizes -> dollars.

    Parent: start, download the original, transcribe it, cut ``shorts`` segments,
    upload them. Children (``max_concurrency`` at a time, in waves): start, download one
    segment, analyse faces, render, upload. Sizes default to :func:`recommend`'s.
    """
    if not (math.isfinite(hours) and hours > 0):
        raise CloudInputError(f"hours must be a positive number (got {hours})")
    if shorts < 0:
        raise CloudInputError(f"shorts must be 0 or more (got {shorts})")
    if not (math.isfinite(short_seconds) and short_seconds > 0):
        raise CloudInputError(f"short duration must be positive (got {short_seconds})")
    if max_concurrency < 1:
        raise CloudInputError(f"max concurrency must be at least 1 (got {max_concurrency})")
    if parent is None or child is None:
        best = recommend(
            hours=hours,
            shorts=shorts,
            short_seconds=short_seconds,
            max_concurrency=max_concurrency,
            asr_model=asr_model,
        )
        parent = parent or best.parent
        child = child or best.child
    video_seconds = hours * 3600
    segment_seconds = shorts * short_seconds
    asr_cpu = video_seconds * _asr_cpu_per_second(asr_model)
    cut_cpu = segment_seconds * SMART_CUT_CPU_PER_SEGMENT_SECOND
    reframe_cpu = short_seconds * REFRAME_CPU_PER_VIDEO_SECOND
    render_cpu = short_seconds * RENDER_CPU_PER_OUTPUT_SECOND
    original_mb = video_seconds * VIDEO_MEGABITS_PER_SECOND / 8
    short_mb = short_seconds * SHORT_MEGABITS_PER_SECOND / 8
    stages = (
        Stage("start", "parent", 0.0, TASK_STARTUP_SECONDS),
        Stage("download original", "parent", 0.0, original_mb / S3_MEGABYTES_PER_SECOND),
        Stage(f"transcribe ({asr_model})", "parent", asr_cpu, _wall(asr_cpu, parent.vcpu)),
        Stage("smart cut", "parent", cut_cpu, _wall(cut_cpu, parent.vcpu)),
        Stage("upload segments", "parent", 0.0, shorts * short_mb / S3_MEGABYTES_PER_SECOND),
        Stage("start", "child", 0.0, TASK_STARTUP_SECONDS),
        Stage("reframe analysis", "child", reframe_cpu, _wall(reframe_cpu, child.vcpu)),
        Stage("render", "child", render_cpu, _wall(render_cpu, child.vcpu)),
        Stage("transfer short", "child", 0.0, 2 * short_mb / S3_MEGABYTES_PER_SECOND),
    )
    parent_seconds = sum(s.wall_seconds for s in stages if s.task == "parent")
    child_seconds = sum(s.wall_seconds for s in stages if s.task == "child")
    waves = math.ceil(shorts / max_concurrency)
    wall = STEP_FUNCTIONS_OVERHEAD_SECONDS + parent_seconds + waves * child_seconds
    fargate = parent.dollars(parent_seconds) + shorts * child.dollars(child_seconds)
    transitions = STATE_TRANSITIONS_FIXED + STATE_TRANSITIONS_PER_SHORT * shorts
    notes = []
    if asr_model not in ("tiny.en", "tiny"):
        notes.append(f"ASR CPU for {asr_model} is an estimate from tiny.en's measured RTF")
    return Estimate(
        hours=hours,
        shorts=shorts,
        short_seconds=short_seconds,
        asr_model=asr_model,
        parent=parent,
        child=child,
        max_concurrency=max_concurrency,
        stages=stages,
        parent_seconds=parent_seconds,
        child_seconds=child_seconds,
        waves=waves,
        wall_seconds=wall,
        fargate_dollars=fargate,
        state_transitions=transitions,
        step_functions_dollars=transitions * STEP_FUNCTIONS_TRANSITION,
        notes=tuple(notes),
    )


def recommend(
    *,
    hours: float,
    shorts: int,
    short_seconds: float = 60.0,
    max_concurrency: int = 10,
    asr_model: str = "base",
) -> Estimate:
    """The cheapest parent/child sizes within ``LATENCY_HEADROOM`` of the latency target.

    When no size is fast enough, the fastest.

    Each vCPU choice gets the least memory covering the stage's need; ties in cost go
    to the faster choice.
    """
    candidates = [
        estimate(
            hours=hours,
            shorts=shorts,
            short_seconds=short_seconds,
            parent=smallest_size(p, PARENT_MEMORY_NEED_GB),
            child=smallest_size(c, CHILD_MEMORY_NEED_GB),
            max_concurrency=max_concurrency,
            asr_model=asr_model,
        )
        for p in FARGATE_SIZES
        for c in FARGATE_SIZES
        if p >= 1 and c >= 1
    ]
    fast_enough = [e for e in candidates if e.wall_minutes <= e.target_minutes * LATENCY_HEADROOM]
    if fast_enough:
        return min(fast_enough, key=lambda e: (round(e.total_dollars, 6), e.wall_seconds))
    return min(candidates, key=lambda e: (e.wall_seconds, e.total_dollars))
