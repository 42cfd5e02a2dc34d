"""IAM and bucket policy documents, as pure functions of ARNs (least privilege, no ``*`` action).

``Resource: "*"`` appears only for actions that AWS does not scope to a resource:
``ecr:GetAuthorizationToken``, CloudWatch Logs log delivery and X-Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from klippers.contract import SHORTS_CONFIG, SHORTS_DIR, WAREHOUSE_ROOT

VERSION = "2012-10-17"
ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"
STATES_SERVICE = "states.amazonaws.com"
# The managed rule Step Functions uses to learn that a ``.sync`` ECS task stopped.
ECS_SYNC_RULE = "StepFunctionsGetEventsForECSTaskRule"

LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)
XRAY_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)
# Actions that AWS only authorises on ``Resource: "*"``.
UNSCOPED_ACTIONS = frozenset({"ecr:GetAuthorizationToken", *LOG_DELIVERY_ACTIONS, *XRAY_ACTIONS})

Document = dict[str, Any]


@dataclass(frozen=True)
class Arn:
    """The parts of an ARN ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, arn: str) -> Arn:
        """Split ``arn``; raise ``ValueError`` if it has fewer than six parts."""
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            raise ValueError(f"not an ARN: {arn!r}")
        return cls(*parts[1:])


def _statement(
    sid: str, actions: Sequence[str], resources: Sequence[str], **extra: Any
) -> Document:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": list(resources),
        **extra,
    }


def _document(*statements: Document) -> Document:
    return {"Version": VERSION, "Statement": list(statements)}


def assume_role_policy(service: str) -> Document:
    """Trust policy letting ``service`` assume the role."""
    return _document(
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    )


def warehouse_objects(bucket_arn: str) -> str:
    """ARN pattern of every object under ``klippers_warehouse/``."""
    return f"{bucket_arn}/{WAREHOUSE_ROOT}/*"


def task_role_policy(bucket_arn: str, *, writes_only_shorts: bool) -> Document:
    """What a job may do: read and write its warehouse objects, nothing else.

    The parent writes anywhere under the prefix; a child (``writes_only_shorts``) reads
    anywhere under it but writes only ``.../videos-cropped-stacked/...``.
    Listing is allowed only below the prefix, so ``HeadObject`` of a missing key answers
    403 rather than 404 (check existence with ``ListObjectsV2`` and the key as prefix).
    """
    writable = (
        f"{bucket_arn}/{WAREHOUSE_ROOT}/*/*/{SHORTS_DIR}/*"
        if writes_only_shorts
        else warehouse_objects(bucket_arn)
    )
    return _document(
        _statement("ReadWarehouse", ["s3:GetObject"], [warehouse_objects(bucket_arn)]),
        _statement(
            "WriteWarehouse",
            ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            [writable],
        ),
        _statement(
            "ListWarehouse",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": [f"{WAREHOUSE_ROOT}/*"]}},
        ),
    )


def execution_role_policy(repository_arn: str, log_group_arn: str) -> Document:
    """What ECS needs to start a job: pull its image and ship its logs."""
    return _document(
        _statement("EcrToken", ["ecr:GetAuthorizationToken"], ["*"]),
        _statement(
            "PullImage",
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            [repository_arn],
        ),
        _statement(
            "WriteLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{log_group_arn}:log-stream:*"],
        ),
    )


def state_machine_policy(
    *,
    cluster_arn: str,
    task_definition_arns: Sequence[str],
    passable_role_arns: Sequence[str],
    bucket_arn: str,
) -> Document:
    """What ``klippers-step-functions-role`` may do to run the pipeline."""
    cluster = Arn.parse(cluster_arn)
    cluster_name = cluster.resource.removeprefix("cluster/")
    prefix = f"arn:{cluster.partition}"
    tasks = f"{prefix}:ecs:{cluster.region}:{cluster.account}:task/{cluster_name}/*"
    rule = f"{prefix}:events:{cluster.region}:{cluster.account}:rule/{ECS_SYNC_RULE}"
    on_cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
    return _document(
        _statement("RunJobs", ["ecs:RunTask"], task_definition_arns, Condition=on_cluster),
        _statement(
            "FollowJobs", ["ecs:DescribeTasks", "ecs:StopTask"], [tasks], Condition=on_cluster
        ),
        _statement(
            "PassJobRoles",
            ["iam:PassRole"],
            passable_role_arns,
            Condition={"StringEquals": {"iam:PassedToService": ECS_TASKS_SERVICE}},
        ),
        _statement(
            "SyncRule", ["events:PutTargets", "events:PutRule", "events:DescribeRule"], [rule]
        ),
        _statement(
            "ReadShortsConfig",
            ["s3:GetObject"],
            [f"{bucket_arn}/{WAREHOUSE_ROOT}/*/*/{SHORTS_CONFIG}"],
        ),
        _statement("DeliverLogs", LOG_DELIVERY_ACTIONS, ["*"]),
        _statement("Tracing", XRAY_ACTIONS, ["*"]),
    )


def tls_only_bucket_policy(bucket_arn: str) -> Document:
    """Bucket policy refusing any request that does not use TLS."""
    return _document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
