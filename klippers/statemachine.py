"""The Step Functions definition (Amazon States Language) of the cloud pipeline, as a plain dict.

Flow: run the parent Fargate task -> read ``shorts_config.json`` from S3 -> check
``segment_count`` (0 ends successfully) -> a Map of child Fargate tasks, one per segment,
at most ``max_concurrency`` at a time -> succeed, or fail naming the shorts that failed.
With a shard task definition, the parent is preceded by sharded transcription: plan the
windows (``SHARD=plan``) -> read ``transcript-shards/plan.json`` -> for more than one
window, a Map of shard tasks (``SHARD=N``) -> the parent, which merges them.

Failures and retries. ``ecs:runTask.sync`` reports a container's non-zero exit as
``States.TaskFailed`` whose cause is the ECS task description (JSON with
``Containers[].ExitCode`` and ``StoppedReason``); Retry rules match error names only. So
each job runs inside a one-branch Parallel state: the task's Catch hands the error to a
Choice that classifies the attempt by raising one of three errors of our own:

- ``Klippers.BadInput``: the container exited with ``EXIT_BAD_INPUT`` (2). Not retried.
- ``Klippers.TimedOut``: the attempt ran past its ``TimeoutSeconds``. Not retried.
- ``Klippers.JobFailed``: anything else (exit 75 or 1, a container killed or never
  started, a Fargate Spot interruption whatever the exit code, ECS API errors). The
  Parallel state retries it after 30 s and 60 s.

Each carries the original error and cause as JSON in its cause. Every child catches its
own final failure and returns a marker, so one bad short never cancels its siblings; the
execution then ends in ``ChildTasksFailed`` naming the failed segments. The Fail states
take their cause from the state's input (``CausePath``), so ``klip cloud status`` and the
console show why.

This module is pure (no pulumi, no boto3): the infrastructure fills in real ARNs with
``Output.all(...).apply(lambda a: json.dumps(build_definition(**a)))`` and
``klip cloud definition`` prints it with placeholders.

Examples
--------
>>> definition = build_definition(**PLACEHOLDERS)
>>> definition["StartAt"]
'ParentJob'
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from klippers.aws import (
    CHILD_CAPACITIES,
    CHILD_CONTAINER,
    DEFAULT_CHILD_CAPACITY,
    FARGATE,
    ON_DEMAND,
    PARENT_CONTAINER,
    SHARD_CONTAINER,
    bucket_name_problem,
)
from klippers.contract import (
    ENV_BUCKET,
    ENV_SEGMENT,
    ENV_SHARD,
    ENV_USER_ID,
    ENV_VIDEO_ID,
    EXIT_BAD_INPUT,
    MAX_SEGMENT_COUNT,
    MAX_SHARD_COUNT,
    SHARD_PLAN,
    SHARD_PLAN_TASK,
    SHARDS_DIR,
    SHORTS_CONFIG,
    WAREHOUSE_ROOT,
    VideoRef,
)

# Execution input: {"user_id": ..., "video_id": ...}
INPUT_USER_ID = "user_id"
INPUT_VIDEO_ID = "video_id"

# State names. The top-level Fail states' names double as the execution's error names.
PARENT_JOB = "ParentJob"
RUN_PARENT = "RunParent"
READ_CONFIG = "ReadConfig"
CHECK_SEGMENT_COUNT = "CheckSegmentCount"
LIST_SEGMENTS = "ListSegments"
RENDER_SHORTS = "RenderShorts"
SHORT_JOB = "ShortJob"
RENDER_SHORT = "RenderShort"
SHORT_RENDERED = "ShortRendered"
SHORT_FAILED = "ShortFailed"
CHECK_SHORTS = "CheckShorts"
REPORT_FAILED_SHORTS = "ReportFailedShorts"
DONE = "Done"
PARENT_TASK_FAILED = "ParentTaskFailed"
READ_CONFIG_FAILED = "ReadConfigFailed"
INVALID_SEGMENT_COUNT = "InvalidSegmentCount"
CHILD_TASKS_FAILED = "ChildTasksFailed"
# Sharded transcription (with a shard task definition): before the parent.
PLAN_JOB = "PlanShards"
RUN_PLAN = "RunShardPlan"
READ_SHARD_PLAN = "ReadShardPlan"
CHECK_SHARD_COUNT = "CheckShardCount"
LIST_SHARDS = "ListShards"
TRANSCRIBE_SHARDS = "TranscribeShards"
SHARD_JOB = "ShardJob"
TRANSCRIBE_SHARD = "TranscribeShard"
SHARD_FAILED = "ShardFailed"
REPORT_SHARD_FAILURE = "ReportShardFailure"
SHARD_PLAN_FAILED = "ShardPlanFailed"
INVALID_SHARD_COUNT = "InvalidShardCount"
SHARD_TASKS_FAILED = "ShardTasksFailed"

RUN_TASK_SYNC = "arn:aws:states:::ecs:runTask.sync"
S3_GET_OBJECT = "arn:aws:states:::aws-sdk:s3:getObject"

# Errors raised by the definition itself, in the causes of the Fail states.
ERROR_BAD_INPUT = "Klippers.BadInput"
"""The job exited with ``EXIT_BAD_INPUT``: not retried."""
ERROR_TIMED_OUT = "Klippers.TimedOut"
"""One attempt ran past its ``TimeoutSeconds``: not retried."""
ERROR_JOB_FAILED = "Klippers.JobFailed"
"""Any other failure of an attempt (exit 75 or 1, a task that never ran): retried."""
ERROR_SHORTS_FAILED = "Klippers.ShortsFailed"
"""Some children failed for good; the cause lists them."""
ERROR_SHARD_FAILED = "Klippers.ShardFailed"
"""A transcription window failed for good; the cause names it (``Shard``) and its error."""
TIMEOUT_ERROR = "States.Timeout"

JOB_RETRY = {"IntervalSeconds": 30, "MaxAttempts": 2, "BackoffRate": 2.0}
"""Retry schedule of both jobs: two more attempts, after 30 s and 60 s."""
CHILD_RETRY = JOB_RETRY
"""The children's schedule (the local engine retries its renders on it too)."""
S3_RETRY_ERRORS = ("S3.SdkClientException", "S3.S3Exception")

# The error object a Catch stores in the state's input, and the fields of a child's outcome.
ERROR_PATH = "$.error"
RENDERED_PATH = "$.rendered"
OUTCOME_SEGMENT = "segment"
OUTCOME_FAILED = "failed"
OUTCOME_ERROR = "error"
FAILED_SHORTS_FIELD = "Shorts"
FAILED_SHARD_FIELD = "Shard"
TRANSCRIPTION_PATH = "$.transcription"
# Forms the exit code takes in the task description of a cause: AWS writes compact JSON.
_BAD_INPUT_PATTERNS = tuple(
    f'*"ExitCode":{space}{EXIT_BAD_INPUT}{end}*' for space in ("", " ") for end in (",", "}")
)
SPOT_INTERRUPTION = "SpotInterruption"
"""ECS's ``StopCode`` of a Fargate Spot task stopped to take its capacity back (its container
got SIGTERM: exit 143, or no exit code when it never ran). Always ``Klippers.JobFailed``."""
_SPOT_PATTERNS = tuple(f'*"StopCode":{space}"{SPOT_INTERRUPTION}"*' for space in ("", " "))

DEFAULT_MAX_CONCURRENCY = 10
DEFAULT_PARENT_TIMEOUT_SECONDS = 2 * 3600
DEFAULT_CHILD_TIMEOUT_SECONDS = 3600
DEFAULT_SHARD_TIMEOUT_SECONDS = 3600
DEFAULT_EXECUTION_TIMEOUT_SECONDS = 8 * 3600
MAX_MAP_CONCURRENCY = 1000
MAX_TIMEOUT_SECONDS = 365 * 24 * 3600

PLACEHOLDERS: dict[str, Any] = {
    "cluster_arn": "arn:aws:ecs:us-east-1:123456789012:cluster/klippers",
    "parent_task_definition_arn": (
        "arn:aws:ecs:us-east-1:123456789012:task-definition/klippers-parent:1"
    ),
    "child_task_definition_arn": (
        "arn:aws:ecs:us-east-1:123456789012:task-definition/klippers-child:1"
    ),
    "subnets": ["subnet-0123456789abcdef0"],
    "security_groups": ["sg-0123456789abcdef0"],
    "bucket": "klippers-warehouse-example",
}

_ARN = re.compile(r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:(cluster|task-definition)/\S+")


class DefinitionError(ValueError):
    """A parameter of the state machine definition is invalid."""


def execution_input(ref: VideoRef) -> dict[str, str]:
    """The execution input that processes ``ref``."""
    return {INPUT_USER_ID: ref.user_id, INPUT_VIDEO_ID: ref.video_id}


def build_definition(
    *,
    cluster_arn: str,
    parent_task_definition_arn: str,
    child_task_definition_arn: str,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    bucket: str,
    parent_container: str = PARENT_CONTAINER,
    child_container: str = CHILD_CONTAINER,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    parent_timeout_seconds: int = DEFAULT_PARENT_TIMEOUT_SECONDS,
    child_timeout_seconds: int = DEFAULT_CHILD_TIMEOUT_SECONDS,
    execution_timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT_SECONDS,
    assign_public_ip: bool = True,
    child_capacity: str = DEFAULT_CHILD_CAPACITY,
    shard_task_definition_arn: str | None = None,
    shard_container: str = SHARD_CONTAINER,
    shard_timeout_seconds: int = DEFAULT_SHARD_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Build the ASL definition of ``klippers-video-processing``.

    Parameters
    ----------
    cluster_arn, parent_task_definition_arn, child_task_definition_arn
        ECS ARNs the tasks run with.
    subnets, security_groups
        Fargate network placement (``awsvpc``).
    bucket
        The warehouse bucket, passed to the jobs as ``VIDEO_WAREHOUSE_S3_BUCKET_NAME``.
    parent_container, child_container
        Container names in the task definitions (the overrides target them).
    max_concurrency
        Child tasks running at once.
    parent_timeout_seconds, child_timeout_seconds, execution_timeout_seconds
        Time limits of one parent attempt, one child attempt and the whole execution.
    assign_public_ip
        Give tasks a public IP (needed in public subnets without a NAT gateway).
    child_capacity
        ``on-demand`` or ``spot``: the children run with ``LaunchType: FARGATE`` or with a
        ``FARGATE_SPOT`` capacity provider strategy (the cluster must have that provider).
        The parent always runs on demand.
    shard_task_definition_arn, shard_container, shard_timeout_seconds
        With a shard task definition, the execution first plans the transcription windows
        (``SHARD=plan``), reads ``transcript-shards/plan.json`` and, for more than one
        window, transcribes them in a Map of shard tasks (``SHARD=N``, on demand, the
        children's retries and ``max_concurrency``) before the parent, which merges them.
        A window that fails for good ends the execution in ``ShardTasksFailed``, naming it.

    Returns
    -------
    dict
        The definition, ready for ``json.dumps``.
    """
    _check_arn("cluster_arn", cluster_arn, "cluster")
    _check_arn("parent_task_definition_arn", parent_task_definition_arn, "task-definition")
    _check_arn("child_task_definition_arn", child_task_definition_arn, "task-definition")
    _check_names("subnets", subnets)
    _check_names("security_groups", security_groups)
    _check_names("container names", [parent_container, child_container, shard_container])
    if shard_task_definition_arn is not None:
        _check_arn("shard_task_definition_arn", shard_task_definition_arn, "task-definition")
    if (problem := bucket_name_problem(bucket)) is not None:
        raise DefinitionError(f"bucket: {problem}")
    if child_capacity not in CHILD_CAPACITIES:
        allowed = ", ".join(CHILD_CAPACITIES)
        raise DefinitionError(f"child_capacity: must be one of {allowed} (got {child_capacity!r})")
    check_limits(
        max_concurrency=max_concurrency,
        parent_timeout_seconds=parent_timeout_seconds,
        child_timeout_seconds=child_timeout_seconds,
        execution_timeout_seconds=execution_timeout_seconds,
        shard_timeout_seconds=shard_timeout_seconds,
    )

    network = {
        "AwsvpcConfiguration": {
            "Subnets": list(subnets),
            "SecurityGroups": list(security_groups),
            "AssignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
        }
    }
    bucket_env = {"Name": ENV_BUCKET, "Value": bucket}
    video_env = [
        {"Name": ENV_USER_ID, "Value.$": f"$.{INPUT_USER_ID}"},
        {"Name": ENV_VIDEO_ID, "Value.$": f"$.{INPUT_VIDEO_ID}"},
    ]
    parent_task = _run_task(
        cluster_arn,
        parent_task_definition_arn,
        parent_container,
        _placement(ON_DEMAND),
        network,
        [*video_env, bucket_env],
    )
    child_task = _run_task(
        cluster_arn,
        child_task_definition_arn,
        child_container,
        _placement(child_capacity),
        network,
        [
            *video_env,
            {"Name": ENV_SEGMENT, "Value.$": "States.Format('{}', $.segment)"},
            bucket_env,
        ],
    )
    sharding: dict[str, Any] = {}
    if shard_task_definition_arn is not None:
        shard_tasks = {
            task: _run_task(
                cluster_arn,
                shard_task_definition_arn,
                shard_container,
                _placement(ON_DEMAND),
                network,
                [*video_env, {"Name": ENV_SHARD, **value}, bucket_env],
            )
            for task, value in (
                (RUN_PLAN, {"Value": SHARD_PLAN_TASK}),
                (TRANSCRIBE_SHARD, {"Value.$": "States.Format('{}', $.shard)"}),
            )
        }
        sharding = _sharding_states(bucket, shard_tasks, shard_timeout_seconds, max_concurrency)
    return {
        "Comment": "Klippers: a parent Fargate task picks segments, child tasks render shorts.",
        "StartAt": PLAN_JOB if sharding else PARENT_JOB,
        "TimeoutSeconds": execution_timeout_seconds,
        "States": {
            **sharding,
            PARENT_JOB: {
                **_job(PARENT_NAMES, parent_task, parent_timeout_seconds),
                "Catch": [_catch(PARENT_TASK_FAILED)],
                "Next": READ_CONFIG,
            },
            READ_CONFIG: _read_json(
                bucket, _key_expression(SHORTS_CONFIG), "$.shorts.config", READ_CONFIG_FAILED
            )
            | {"Next": CHECK_SEGMENT_COUNT},
            CHECK_SEGMENT_COUNT: _count_choice(
                "$.shorts.config.segment_count",
                (1, MAX_SEGMENT_COUNT, LIST_SEGMENTS),
                (0, DONE),
                INVALID_SEGMENT_COUNT,
            ),
            LIST_SEGMENTS: {
                "Type": "Pass",
                "Parameters": {
                    "numbers.$": "States.ArrayRange(1, $.shorts.config.segment_count, 1)"
                },
                "ResultPath": "$.segments",
                "Next": RENDER_SHORTS,
            },
            RENDER_SHORTS: _render_shorts(child_task, child_timeout_seconds, max_concurrency),
            CHECK_SHORTS: {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": f"{RENDERED_PATH}.any_failed",
                        "BooleanEquals": True,
                        "Next": REPORT_FAILED_SHORTS,
                    }
                ],
                "Default": DONE,
            },
            REPORT_FAILED_SHORTS: {
                "Type": "Pass",
                "Parameters": {
                    "Error": ERROR_SHORTS_FAILED,
                    f"{FAILED_SHORTS_FIELD}.$": (
                        f"{RENDERED_PATH}.shorts[?(@.{OUTCOME_FAILED} == true)]"
                    ),
                },
                "ResultPath": ERROR_PATH,
                "Next": CHILD_TASKS_FAILED,
            },
            DONE: {"Type": "Succeed"},
            PARENT_TASK_FAILED: _fail(PARENT_TASK_FAILED),
            READ_CONFIG_FAILED: _fail(READ_CONFIG_FAILED),
            INVALID_SEGMENT_COUNT: {
                "Type": "Fail",
                "Error": INVALID_SEGMENT_COUNT,
                "Cause": f"{SHORTS_CONFIG} has no segment_count from 0 to {MAX_SEGMENT_COUNT}.",
            },
            CHILD_TASKS_FAILED: _fail(CHILD_TASKS_FAILED),
        },
    }


def check_limits(
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    parent_timeout_seconds: int = DEFAULT_PARENT_TIMEOUT_SECONDS,
    child_timeout_seconds: int = DEFAULT_CHILD_TIMEOUT_SECONDS,
    execution_timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT_SECONDS,
    shard_timeout_seconds: int = DEFAULT_SHARD_TIMEOUT_SECONDS,
) -> None:
    """Raise :class:`DefinitionError` naming the first concurrency or timeout out of range.

    :func:`build_definition` calls this; callers that learn ARNs late (Pulumi) call it
    first to fail before any resource is created.
    """
    _check_count("max_concurrency", max_concurrency, MAX_MAP_CONCURRENCY)
    for name, seconds in (
        ("parent_timeout_seconds", parent_timeout_seconds),
        ("child_timeout_seconds", child_timeout_seconds),
        ("execution_timeout_seconds", execution_timeout_seconds),
        ("shard_timeout_seconds", shard_timeout_seconds),
    ):
        _check_count(name, seconds, MAX_TIMEOUT_SECONDS)


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of ``definition`` by name, including those inside Parallel and Map states.

    State names are unique across a whole state machine, so the result is flat.
    """
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", ()):
            found.update(all_states(branch))
        if "ItemProcessor" in state:
            found.update(all_states(state["ItemProcessor"]))
    return found


def definition_json(**overrides: Any) -> str:
    """The definition as indented JSON, with placeholder ARNs unless overridden.

    This is what ``klip cloud definition`` prints.
    """
    return json.dumps(build_definition(**{**PLACEHOLDERS, **overrides}), indent=2) + "\n"


def _run_task(
    cluster_arn: str,
    task_definition_arn: str,
    container: str,
    placement: dict[str, Any],
    network: dict[str, Any],
    environment: list[dict[str, str]],
) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": RUN_TASK_SYNC,
        "Parameters": {
            "Cluster": cluster_arn,
            "TaskDefinition": task_definition_arn,
            **placement,
            "NetworkConfiguration": network,
            "Overrides": {"ContainerOverrides": [{"Name": container, "Environment": environment}]},
        },
    }


def _placement(capacity: str) -> dict[str, Any]:
    """RunTask's ``LaunchType`` on demand, else a one-provider capacity provider strategy
    (RunTask refuses the two together)."""
    if capacity == ON_DEMAND:
        return {"LaunchType": FARGATE}
    provider = CHILD_CAPACITIES[capacity]
    return {"CapacityProviderStrategy": [{"CapacityProvider": provider, "Weight": 1}]}


def _key_expression(relative: str) -> str:
    """``States.Format`` building ``klippers_warehouse/{user}/{video}/<relative>``."""
    template = f"{WAREHOUSE_ROOT}/{{}}/{{}}/{relative}"
    return f"States.Format('{template}', $.{INPUT_USER_ID}, $.{INPUT_VIDEO_ID})"


def _read_json(bucket: str, key_expression: str, result_path: str, failed: str) -> dict[str, Any]:
    """Read a JSON object of the video's folder into ``result_path`` (its parent path gets
    ``{"<last part>": document}``), retrying S3's transient errors; else go to ``failed``."""
    parent_path, _, name = result_path.rpartition(".")
    return {
        "Type": "Task",
        "Resource": S3_GET_OBJECT,
        "Parameters": {"Bucket": bucket, "Key.$": key_expression},
        "ResultSelector": {f"{name}.$": "States.StringToJson($.Body)"},
        "ResultPath": parent_path,
        "TimeoutSeconds": 60,
        "Retry": [
            {
                "ErrorEquals": list(S3_RETRY_ERRORS),
                "IntervalSeconds": 2,
                "MaxAttempts": 3,
                "BackoffRate": 2.0,
            }
        ],
        "Catch": [_catch(failed)],
    }


def _sharding_states(
    bucket: str, tasks: dict[str, dict[str, Any]], timeout_seconds: int, max_concurrency: int
) -> dict[str, Any]:
    """Plan the transcription windows, read the plan, transcribe the windows (if several)."""
    count = f"{TRANSCRIPTION_PATH}.plan.shard_count"
    shard = {f"{FAILED_SHARD_FIELD}.$": "$.shard"}
    return {
        PLAN_JOB: {
            **_job(PLAN_NAMES, tasks[RUN_PLAN], timeout_seconds),
            "Catch": [_catch(SHARD_PLAN_FAILED)],
            "Next": READ_SHARD_PLAN,
        },
        READ_SHARD_PLAN: _read_json(
            bucket,
            _key_expression(f"{SHARDS_DIR}/{SHARD_PLAN}"),
            f"{TRANSCRIPTION_PATH}.plan",
            SHARD_PLAN_FAILED,
        )
        | {"Next": CHECK_SHARD_COUNT},
        CHECK_SHARD_COUNT: _count_choice(
            count, (2, MAX_SHARD_COUNT, LIST_SHARDS), (1, PARENT_JOB), INVALID_SHARD_COUNT
        ),
        LIST_SHARDS: {
            "Type": "Pass",
            "Parameters": {"numbers.$": f"States.ArrayRange(1, {count}, 1)"},
            "ResultPath": f"{TRANSCRIPTION_PATH}.shards",
            "Next": TRANSCRIBE_SHARDS,
        },
        TRANSCRIBE_SHARDS: {
            "Type": "Map",
            "ItemsPath": f"{TRANSCRIPTION_PATH}.shards.numbers",
            "MaxConcurrency": max_concurrency,
            "ItemSelector": {
                f"{INPUT_USER_ID}.$": f"$.{INPUT_USER_ID}",
                f"{INPUT_VIDEO_ID}.$": f"$.{INPUT_VIDEO_ID}",
                "shard.$": "$$.Map.Item.Value",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": SHARD_JOB,
                "States": {
                    SHARD_JOB: {
                        **_job(SHARD_NAMES, tasks[TRANSCRIBE_SHARD], timeout_seconds),
                        "Catch": [_catch(SHARD_FAILED)],
                        "End": True,
                    },
                    SHARD_FAILED: {
                        "Type": "Pass",
                        "Parameters": {
                            **shard,
                            "Error.$": f"{ERROR_PATH}.Error",
                            "Cause.$": f"{ERROR_PATH}.Cause",
                        },
                        "ResultPath": ERROR_PATH,
                        "Next": REPORT_SHARD_FAILURE,
                    },
                    REPORT_SHARD_FAILURE: {
                        "Type": "Fail",
                        "Error": ERROR_SHARD_FAILED,
                        "CausePath": f"States.JsonToString({ERROR_PATH})",
                    },
                },
            },
            "ResultPath": None,
            "Catch": [_catch(SHARD_TASKS_FAILED)],
            "Next": PARENT_JOB,
        },
        SHARD_PLAN_FAILED: _fail(SHARD_PLAN_FAILED),
        INVALID_SHARD_COUNT: {
            "Type": "Fail",
            "Error": INVALID_SHARD_COUNT,
            "Cause": f"{SHARDS_DIR}/{SHARD_PLAN} has no shard_count from 1 to {MAX_SHARD_COUNT}.",
        },
        SHARD_TASKS_FAILED: _fail(SHARD_TASKS_FAILED),
    }


def _count_choice(
    count: str, many: tuple[int, int, str], single: tuple[int, str], invalid: str
) -> dict[str, Any]:
    """A Choice on the number at ``count``: from ``many[0]`` to ``many[1]`` goes to
    ``many[2]``, exactly ``single[0]`` to ``single[1]``, anything else (missing, not a
    number, out of range) to ``invalid``."""
    numeric = [{"Variable": count, "IsPresent": True}, {"Variable": count, "IsNumeric": True}]
    low, high, then = many
    value, otherwise = single
    return {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    *numeric,
                    {"Variable": count, "NumericGreaterThanEquals": low},
                    {"Variable": count, "NumericLessThanEquals": high},
                ],
                "Next": then,
            },
            {"And": [*numeric, {"Variable": count, "NumericEquals": value}], "Next": otherwise},
        ],
        "Default": invalid,
    }


@dataclass(frozen=True)
class JobStates:
    """The states of one job: the retried Parallel wrapper, its task and its classification."""

    wrapper: str
    task: str
    check_exit: str
    bad_input: str
    timed_out: str
    attempt_failed: str


PARENT_NAMES = JobStates(
    PARENT_JOB,
    RUN_PARENT,
    "CheckParentExit",
    "ParentBadInput",
    "ParentTimedOut",
    "ParentAttemptFailed",
)
CHILD_NAMES = JobStates(
    SHORT_JOB,
    RENDER_SHORT,
    "CheckShortExit",
    "ShortBadInput",
    "ShortTimedOut",
    "ShortAttemptFailed",
)
PLAN_NAMES = JobStates(
    PLAN_JOB,
    RUN_PLAN,
    "CheckShardPlanExit",
    "ShardPlanBadInput",
    "ShardPlanTimedOut",
    "ShardPlanAttemptFailed",
)
SHARD_NAMES = JobStates(
    SHARD_JOB,
    TRANSCRIBE_SHARD,
    "CheckShardExit",
    "ShardBadInput",
    "ShardTimedOut",
    "ShardAttemptFailed",
)


def _job(names: JobStates, task: dict[str, Any], timeout_seconds: int) -> dict[str, Any]:
    """A one-branch Parallel state running ``task`` once per attempt, retrying ``JobFailed``.

    Inside, the task's failure goes to a Choice that re-raises it as ``BadInput``,
    ``TimedOut`` or ``JobFailed`` with the original error and cause as JSON.
    """
    error_cause = "States.JsonToString($.error)"
    return {
        "Type": "Parallel",
        "Branches": [
            {
                "StartAt": names.task,
                "States": {
                    names.task: {
                        **task,
                        "TimeoutSeconds": timeout_seconds,
                        "ResultPath": None,
                        "Catch": [_catch(names.check_exit)],
                        "End": True,
                    },
                    names.check_exit: _check_exit(names),
                    names.bad_input: {
                        "Type": "Fail",
                        "Error": ERROR_BAD_INPUT,
                        "CausePath": error_cause,
                    },
                    names.timed_out: {
                        "Type": "Fail",
                        "Error": ERROR_TIMED_OUT,
                        "CausePath": error_cause,
                    },
                    names.attempt_failed: {
                        "Type": "Fail",
                        "Error": ERROR_JOB_FAILED,
                        "CausePath": error_cause,
                    },
                },
            }
        ],
        "ResultPath": None,
        "Retry": [{"ErrorEquals": [ERROR_JOB_FAILED], **JOB_RETRY}],
    }


def _check_exit(names: JobStates) -> dict[str, Any]:
    """Classify a failed attempt. Rules are tried in order, so each guards the next."""
    cause = f"{ERROR_PATH}.Cause"
    return {
        "Type": "Choice",
        "Choices": [
            {
                "Variable": f"{ERROR_PATH}.Error",
                "StringEquals": TIMEOUT_ERROR,
                "Next": names.timed_out,
            },
            {"Variable": cause, "IsPresent": False, "Next": names.attempt_failed},
            {"Variable": cause, "IsString": False, "Next": names.attempt_failed},
            # An interrupted Spot task may exit with any code its shutdown gives.
            *(
                {"Variable": cause, "StringMatches": p, "Next": names.attempt_failed}
                for p in _SPOT_PATTERNS
            ),
            {
                "Or": [{"Variable": cause, "StringMatches": p} for p in _BAD_INPUT_PATTERNS],
                "Next": names.bad_input,
            },
        ],
        "Default": names.attempt_failed,
    }


def _render_shorts(
    child_task: dict[str, Any], timeout_seconds: int, max_concurrency: int
) -> dict[str, Any]:
    """The Map of children: each ends in an outcome, so a failure never stops the others."""
    segment = {f"{OUTCOME_SEGMENT}.$": "$.segment"}
    return {
        "Type": "Map",
        "ItemsPath": "$.segments.numbers",
        "MaxConcurrency": max_concurrency,
        "ItemSelector": {
            f"{INPUT_USER_ID}.$": f"$.{INPUT_USER_ID}",
            f"{INPUT_VIDEO_ID}.$": f"$.{INPUT_VIDEO_ID}",
            "segment.$": "$$.Map.Item.Value",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": SHORT_JOB,
            "States": {
                SHORT_JOB: {
                    **_job(CHILD_NAMES, child_task, timeout_seconds),
                    "Catch": [_catch(SHORT_FAILED)],
                    "Next": SHORT_RENDERED,
                },
                SHORT_RENDERED: {
                    "Type": "Pass",
                    "Parameters": {**segment, OUTCOME_FAILED: False},
                    "End": True,
                },
                SHORT_FAILED: {
                    "Type": "Pass",
                    "Parameters": {
                        **segment,
                        OUTCOME_FAILED: True,
                        f"{OUTCOME_ERROR}.$": f"{ERROR_PATH}.Error",
                    },
                    "End": True,
                },
            },
        },
        "ResultSelector": {
            "any_failed.$": f"States.ArrayContains($[*].{OUTCOME_FAILED}, true)",
            "shorts.$": "$",
        },
        "ResultPath": RENDERED_PATH,
        "Catch": [_catch(CHILD_TASKS_FAILED)],
        "Next": CHECK_SHORTS,
    }


def _catch(target: str) -> dict[str, Any]:
    return {"ErrorEquals": ["States.ALL"], "ResultPath": ERROR_PATH, "Next": target}


def _fail(error: str) -> dict[str, Any]:
    """A Fail state whose cause is the caught error object as JSON."""
    return {"Type": "Fail", "Error": error, "CausePath": f"States.JsonToString({ERROR_PATH})"}


def _check_arn(name: str, value: str, kind: str) -> None:
    match = _ARN.fullmatch(value) if isinstance(value, str) else None
    if match is None or match.group(1) != kind:
        raise DefinitionError(f"{name}: not an ECS {kind} ARN (got {value!r})")


def _check_names(name: str, values: Sequence[str]) -> None:
    if isinstance(values, str) or not values:
        raise DefinitionError(f"{name}: must be a non-empty list (got {values!r})")
    for value in values:
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise DefinitionError(f"{name}: invalid entry {value!r}")


def _check_count(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise DefinitionError(f"{name}: must be an integer from 1 to {maximum} (got {value!r})")
