"""The Step Functions definition (Amazon States Language) of the cloud pipeline, as a plain dict.

Flow: run the parent Fargate task -> read ``shorts_config.json`` from S3 -> check
``segment_count`` (0 ends successfully) -> a Map of child Fargate tasks, one per segment,
at most ``max_concurrency`` at a time -> succeed. Failures end in named Fail states.

This module is pure (no pulumi, no boto3): the infrastructure fills in real ARNs with
``Output.all(...).apply(lambda a: json.dumps(build_definition(**a)))`` and
``klip cloud definition`` prints it with placeholders.

Examples
--------
>>> definition = build_definition(**PLACEHOLDERS)
>>> definition["StartAt"]
'RunParent'
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from klippers.aws import CHILD_CONTAINER, PARENT_CONTAINER, bucket_name_problem
from klippers.contract import (
    ENV_BUCKET,
    ENV_SEGMENT,
    ENV_USER_ID,
    ENV_VIDEO_ID,
    MAX_SEGMENT_COUNT,
    SHORTS_CONFIG,
    WAREHOUSE_ROOT,
    VideoRef,
)

# Execution input: {"user_id": ..., "video_id": ...}
INPUT_USER_ID = "user_id"
INPUT_VIDEO_ID = "video_id"

# State names (the Fail states' names double as their error names).
RUN_PARENT = "RunParent"
READ_CONFIG = "ReadConfig"
CHECK_SEGMENT_COUNT = "CheckSegmentCount"
LIST_SEGMENTS = "ListSegments"
RENDER_SHORTS = "RenderShorts"
RENDER_SHORT = "RenderShort"
DONE = "Done"
PARENT_TASK_FAILED = "ParentTaskFailed"
READ_CONFIG_FAILED = "ReadConfigFailed"
INVALID_SEGMENT_COUNT = "InvalidSegmentCount"
CHILD_TASKS_FAILED = "ChildTasksFailed"

RUN_TASK_SYNC = "arn:aws:states:::ecs:runTask.sync"
S3_GET_OBJECT = "arn:aws:states:::aws-sdk:s3:getObject"

# Errors of the ECS API that a later attempt can get past (throttling, capacity, 5xx).
TRANSIENT_ECS_ERRORS = ("ECS.AmazonECSException", "ECS.ServerException")
# Child retry schedule required by the pipeline: waits of 30 s then 60 s.
CHILD_RETRY = {"IntervalSeconds": 30, "MaxAttempts": 2, "BackoffRate": 2.0}

DEFAULT_MAX_CONCURRENCY = 10
DEFAULT_PARENT_TIMEOUT_SECONDS = 2 * 3600
DEFAULT_CHILD_TIMEOUT_SECONDS = 3600
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
    _check_names("container names", [parent_container, child_container])
    if (problem := bucket_name_problem(bucket)) is not None:
        raise DefinitionError(f"bucket: {problem}")
    check_limits(
        max_concurrency=max_concurrency,
        parent_timeout_seconds=parent_timeout_seconds,
        child_timeout_seconds=child_timeout_seconds,
        execution_timeout_seconds=execution_timeout_seconds,
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
        cluster_arn, parent_task_definition_arn, parent_container, network, [*video_env, bucket_env]
    )
    child_task = _run_task(
        cluster_arn,
        child_task_definition_arn,
        child_container,
        network,
        [
            *video_env,
            {"Name": ENV_SEGMENT, "Value.$": "States.Format('{}', $.segment)"},
            bucket_env,
        ],
    )
    return {
        "Comment": "Klippers: a parent Fargate task picks segments, child tasks render shorts.",
        "StartAt": RUN_PARENT,
        "TimeoutSeconds": execution_timeout_seconds,
        "States": {
            RUN_PARENT: {
                **parent_task,
                "TimeoutSeconds": parent_timeout_seconds,
                "ResultPath": None,
                "Retry": [
                    _retry(list(TRANSIENT_ECS_ERRORS), interval=10, attempts=3),
                    # Image pulls and ENI attachment fail as a stopped task: one more try.
                    _retry(["States.TaskFailed"], interval=60, attempts=1),
                ],
                "Catch": [_catch(PARENT_TASK_FAILED)],
                "Next": READ_CONFIG,
            },
            READ_CONFIG: {
                "Type": "Task",
                "Resource": S3_GET_OBJECT,
                "Parameters": {"Bucket": bucket, "Key.$": _config_key_expression()},
                "ResultSelector": {"config.$": "States.StringToJson($.Body)"},
                "ResultPath": "$.shorts",
                "TimeoutSeconds": 60,
                "Retry": [_retry(["S3.SdkClientException", "S3.S3Exception"], 2, 3)],
                "Catch": [_catch(READ_CONFIG_FAILED)],
                "Next": CHECK_SEGMENT_COUNT,
            },
            CHECK_SEGMENT_COUNT: _check_segment_count(),
            LIST_SEGMENTS: {
                "Type": "Pass",
                "Parameters": {
                    "numbers.$": "States.ArrayRange(1, $.shorts.config.segment_count, 1)"
                },
                "ResultPath": "$.segments",
                "Next": RENDER_SHORTS,
            },
            RENDER_SHORTS: {
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
                    "StartAt": RENDER_SHORT,
                    "States": {
                        RENDER_SHORT: {
                            **child_task,
                            "TimeoutSeconds": child_timeout_seconds,
                            "ResultPath": None,
                            "Retry": [
                                {
                                    "ErrorEquals": ["States.TaskFailed", *TRANSIENT_ECS_ERRORS],
                                    **CHILD_RETRY,
                                }
                            ],
                            "End": True,
                        }
                    },
                },
                "ResultPath": None,
                "Catch": [_catch(CHILD_TASKS_FAILED)],
                "Next": DONE,
            },
            DONE: {"Type": "Succeed"},
            PARENT_TASK_FAILED: _fail(PARENT_TASK_FAILED, "The parent job failed or timed out."),
            READ_CONFIG_FAILED: _fail(
                READ_CONFIG_FAILED, f"{SHORTS_CONFIG} could not be read or is not JSON."
            ),
            INVALID_SEGMENT_COUNT: _fail(
                INVALID_SEGMENT_COUNT,
                f"{SHORTS_CONFIG} has no segment_count from 0 to {MAX_SEGMENT_COUNT}.",
            ),
            CHILD_TASKS_FAILED: _fail(
                CHILD_TASKS_FAILED, "A child job still failed after its retries."
            ),
        },
    }


def check_limits(
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    parent_timeout_seconds: int = DEFAULT_PARENT_TIMEOUT_SECONDS,
    child_timeout_seconds: int = DEFAULT_CHILD_TIMEOUT_SECONDS,
    execution_timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT_SECONDS,
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
    ):
        _check_count(name, seconds, MAX_TIMEOUT_SECONDS)


def definition_json(**overrides: Any) -> str:
    """The definition as indented JSON, with placeholder ARNs unless overridden.

    This is what ``klip cloud definition`` prints.
    """
    return json.dumps(build_definition(**{**PLACEHOLDERS, **overrides}), indent=2) + "\n"


def _run_task(
    cluster_arn: str,
    task_definition_arn: str,
    container: str,
    network: dict[str, Any],
    environment: list[dict[str, str]],
) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": RUN_TASK_SYNC,
        "Parameters": {
            "Cluster": cluster_arn,
            "TaskDefinition": task_definition_arn,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": network,
            "Overrides": {"ContainerOverrides": [{"Name": container, "Environment": environment}]},
        },
    }


def _config_key_expression() -> str:
    """``States.Format`` building ``klippers_warehouse/{user}/{video}/shorts_config.json``."""
    template = f"{WAREHOUSE_ROOT}/{{}}/{{}}/{SHORTS_CONFIG}"
    return f"States.Format('{template}', $.{INPUT_USER_ID}, $.{INPUT_VIDEO_ID})"


def _check_segment_count() -> dict[str, Any]:
    count = "$.shorts.config.segment_count"
    numeric = [{"Variable": count, "IsPresent": True}, {"Variable": count, "IsNumeric": True}]
    return {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    *numeric,
                    {"Variable": count, "NumericGreaterThanEquals": 1},
                    {"Variable": count, "NumericLessThanEquals": MAX_SEGMENT_COUNT},
                ],
                "Next": LIST_SEGMENTS,
            },
            {"And": [*numeric, {"Variable": count, "NumericEquals": 0}], "Next": DONE},
        ],
        "Default": INVALID_SEGMENT_COUNT,
    }


def _retry(errors: list[str], interval: int, attempts: int) -> dict[str, Any]:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": interval,
        "MaxAttempts": attempts,
        "BackoffRate": 2.0,
    }


def _catch(target: str) -> dict[str, Any]:
    return {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": target}


def _fail(error: str, cause: str) -> dict[str, Any]:
    return {"Type": "Fail", "Error": error, "Cause": cause}


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
