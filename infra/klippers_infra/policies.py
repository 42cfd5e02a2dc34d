"""IAM and bucket policy documents, as pure functions of ARNs (least privilege, no ``*`` action).

``Resource: "*"`` appears only for actions that AWS does not scope to a resource:
``ecr:GetAuthorizationToken``, CloudWatch Logs log delivery and X-Ray.

Every principal may list the bucket only below its prefixes (an ``s3:prefix`` condition).
S3 then answers a ``HeadObject``/``GetObject`` of a missing key with 403, not 404, so the
jobs ask whether a key exists by listing it (:meth:`klippers.storage.S3Storage.exists`).
``tests/klippers/cloud/test_iam_e2e.py`` runs the real jobs and ``klip cloud``'s storage
calls under exactly these documents and evaluates every call with AWS's semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from klippers.contract import (
    MANIFEST,
    RECIPE_SUFFIX,
    SEGMENTS_DIR,
    SHARD_PLAN,
    SHARDS_DIR,
    SHARED_BACKGROUNDS,
    SHORTS_CONFIG,
    SHORTS_DIR,
    THUMBNAIL_RECIPE,
    TRANSCRIPT_RECIPE,
    WAREHOUSE_ROOT,
    validate_id,
)

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
# What S3 does with the bucket's SSE-KMS key on a caller's behalf: encrypt what it writes,
# decrypt what it reads (and the parts of a multipart upload).
KMS_READ_ACTIONS = ("kms:Decrypt",)
KMS_READ_WRITE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
_DNS_SUFFIXES = {"aws-cn": "amazonaws.com.cn"}
# Prefixes of Bedrock's cross-region inference profile ids.
BEDROCK_GEOGRAPHIES = frozenset({"us", "eu", "apac", "us-gov", "global", "ca", "jp", "au"})

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


def assume_role_policy(service: str, source_arn: str | None = None) -> Document:
    """Trust policy letting ``service`` assume the role.

    With ``source_arn`` (an ARN pattern such as :func:`ecs_tasks_source` gives), the
    service may assume it only on behalf of matching resources of that ARN's account
    (``aws:SourceArn`` and ``aws:SourceAccount``): no other account can make the service
    act with this role (the confused deputy).
    """
    statement: Document = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_arn is not None:
        statement["Condition"] = {
            "StringEquals": {"aws:SourceAccount": _account(source_arn)},
            "ArnLike": {"aws:SourceArn": source_arn},
        }
    return _document(statement)


def ecs_tasks_source(cluster_arn: str) -> str:
    """``aws:SourceArn`` pattern for roles ECS tasks assume: ECS resources of the cluster's
    account and region (``arn:aws:ecs:REGION:ACCOUNT:*``, as the ECS guide gives it)."""
    cluster = Arn.parse(cluster_arn)
    return f"arn:{cluster.partition}:ecs:{cluster.region}:{_account(cluster_arn)}:*"


def state_machine_source(account_arn: str, name: str) -> str:
    """``aws:SourceArn`` of the state machine ``name`` in the account and region of
    ``account_arn`` (any ARN there, the cluster's say): the role exists before the machine."""
    arn = Arn.parse(account_arn)
    return f"arn:{arn.partition}:states:{arn.region}:{_account(account_arn)}:stateMachine:{name}"


def _account(arn: str) -> str:
    account = Arn.parse(arn).account
    if not (len(account) == 12 and account.isdigit()):
        raise ValueError(f"{arn}: needs a 12-digit account ID")
    return account


def warehouse_objects(bucket_arn: str) -> str:
    """ARN pattern of every object under ``klippers_warehouse/``."""
    return f"{bucket_arn}/{WAREHOUSE_ROOT}/*"


def shared_backgrounds(bucket_arn: str) -> str:
    """ARN pattern of the shared background library ``backgrounds/``."""
    return f"{bucket_arn}/{SHARED_BACKGROUNDS}/*"


PARENT_JOB, CHILD_JOB, SHARD_JOB = "parent", "child", "shard"
JOBS = (PARENT_JOB, CHILD_JOB, SHARD_JOB)


def _video_objects(bucket_arn: str) -> str:
    """ARN pattern of every video folder ``klippers_warehouse/USER/VIDEO``."""
    return f"{bucket_arn}/{WAREHOUSE_ROOT}/*/*"


def writable_objects(bucket_arn: str, job: str) -> str:
    """What ``job`` writes: the parent anything under the warehouse prefix, a child only
    ``.../videos-cropped-stacked/...``, a transcription shard only ``.../transcript-shards/...``."""
    if job == CHILD_JOB:
        return f"{_video_objects(bucket_arn)}/{SHORTS_DIR}/*"
    if job == SHARD_JOB:
        return f"{_video_objects(bucket_arn)}/{SHARDS_DIR}/*"
    return warehouse_objects(bucket_arn)


def replaced_outputs(bucket_arn: str, job: str) -> list[str]:
    """What a re-run of ``job`` deletes before it writes again: a child, its short's recipe;
    a shard, its window's recipe; the parent, the manifest, its recipes, and stale segment
    files, shorts and their recipes. Never an input (``original.mp4``,
    ``shorts_config.json``, ``thumbnail.png``)."""
    video = _video_objects(bucket_arn)
    if job == CHILD_JOB:
        return [f"{video}/{SHORTS_DIR}/*{RECIPE_SUFFIX}"]
    if job == SHARD_JOB:
        return [f"{video}/{SHARDS_DIR}/*{RECIPE_SUFFIX}"]
    return [
        f"{video}/{MANIFEST}",
        f"{video}/{TRANSCRIPT_RECIPE}",
        f"{video}/{THUMBNAIL_RECIPE}",
        f"{video}/{SEGMENTS_DIR}/*",
        f"{video}/{SHORTS_DIR}/*",
    ]


def _listing(sid: str, bucket_arn: str, prefix: str) -> Document:
    """``s3:ListBucket`` on the bucket, only for prefixes below ``prefix/``."""
    return _statement(
        sid,
        ["s3:ListBucket"],
        [bucket_arn],
        Condition={"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
    )


def kms_statement(key_arn: str, actions: Sequence[str]) -> Document:
    """Use of the bucket's SSE-KMS key ``key_arn`` (a key ARN, not an alias), through S3 only
    (``kms:ViaService``)."""
    key = Arn.parse(key_arn)
    if key.service != "kms" or not key.resource.startswith("key/"):
        raise ValueError(
            f"kmsKeyArn: must be a KMS key ARN (arn:...:kms:...:key/ID), got {key_arn}"
        )
    suffix = _DNS_SUFFIXES.get(key.partition, "amazonaws.com")
    via = {"StringEquals": {"kms:ViaService": f"s3.{key.region}.{suffix}"}}
    return _statement("UseWarehouseKey", actions, [key_arn], Condition=via)


def task_role_policy(bucket_arn: str, job: str, *, kms_key_arn: str | None = None) -> Document:
    """What ``job`` (``parent``, ``child`` or ``shard``) may do: read its warehouse objects
    and write some of them, nothing else.

    Every job reads anywhere under the warehouse prefix; it writes only
    :func:`writable_objects` and deletes only what its re-run replaces
    (:func:`replaced_outputs`). A child also reads the shared ``backgrounds/``. Listing is
    allowed only below the prefixes a job reads. With ``kms_key_arn`` (the bucket's SSE-KMS
    key) it may use that key through S3.
    """
    if job not in JOBS:
        raise ValueError(f"job: must be one of {', '.join(JOBS)} (got {job!r})")
    statements = [
        _statement("ReadWarehouse", ["s3:GetObject"], [warehouse_objects(bucket_arn)]),
        _statement(
            "WriteWarehouse",
            ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            [writable_objects(bucket_arn, job)],
        ),
        _statement("DeleteStaleOutputs", ["s3:DeleteObject"], replaced_outputs(bucket_arn, job)),
        _listing("ListWarehouse", bucket_arn, WAREHOUSE_ROOT),
    ]
    if job == CHILD_JOB:
        statements += [
            _statement("ReadSharedBackgrounds", ["s3:GetObject"], [shared_backgrounds(bucket_arn)]),
            _listing("ListSharedBackgrounds", bucket_arn, SHARED_BACKGROUNDS),
        ]
    if kms_key_arn is not None:
        statements.append(kms_statement(kms_key_arn, KMS_READ_WRITE_ACTIONS))
    return _document(*statements)


def warehouse_user_policy(
    bucket_arn: str, user_id: str = "*", *, kms_key_arn: str | None = None
) -> Document:
    """What a person needs for ``klip cloud upload``, ``download`` and ``status`` in the
    warehouse: read, write and list the folders of ``user_id``'s videos and nothing else
    (``"*"``: every user's, for an operator).

    Running and following executions (``run``, ``status``, ``logs``, ``stop``) needs Step
    Functions and CloudWatch Logs permissions besides, which this document does not grant.
    Attach it to the person's IAM user, group or role.
    """
    if user_id != "*":
        validate_id(user_id, "user_id")
    folder = f"{WAREHOUSE_ROOT}/{user_id}"
    objects = [f"{bucket_arn}/{folder}/*"]
    statements = [
        _statement("ReadOwnVideos", ["s3:GetObject"], objects),
        _statement(
            "WriteOwnVideos",
            ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            objects,
        ),
        _listing("ListOwnVideos", bucket_arn, folder),
    ]
    if kms_key_arn is not None:
        statements.append(kms_statement(kms_key_arn, KMS_READ_WRITE_ACTIONS))
    return _document(*statements)


def bedrock_statement(model: str, *, region: str, account: str, partition: str) -> Document:
    """Invoking one Bedrock model (``Converse`` is authorised as ``bedrock:InvokeModel``).

    ``model`` is a model ARN, a foundation-model id, or a cross-region inference profile id
    (``us.``/``eu.``/``apac.``/``global.`` + model id), which also needs the model itself in
    every region the profile routes to.
    """
    if model.startswith("arn:"):
        resources = [model]
    else:
        geo, _, base = model.partition(".")
        resources = [f"arn:{partition}:bedrock:{region}::foundation-model/{model}"]
        if geo in BEDROCK_GEOGRAPHIES and base:
            resources = [
                f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model}",
                f"arn:{partition}:bedrock:*::foundation-model/{base}",
            ]
    return _statement("InvokeScorerModel", ["bedrock:InvokeModel"], resources)


def execution_role_policy(
    repository_arn: str, log_group_arn: str, secret_arns: Sequence[str] = ()
) -> Document:
    """What ECS needs to start a job: pull its image, ship its logs, and read the secrets
    (``secret_arns``) it injects into a container."""
    statements = [
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
    ]
    if secret_arns:
        statements.append(
            _statement("InjectSecrets", ["secretsmanager:GetSecretValue"], secret_arns)
        )
    return _document(*statements)


def state_machine_policy(
    *,
    cluster_arn: str,
    task_definition_arns: Sequence[str],
    passable_role_arns: Sequence[str],
    bucket_arn: str,
    kms_key_arn: str | None = None,
    reads_shard_plan: bool = False,
) -> Document:
    """What ``klippers-step-functions-role`` may do to run the pipeline: run the jobs of
    ``task_definition_arns`` on the cluster, pass them their roles, read
    ``shorts_config.json`` (and with ``reads_shard_plan``, ``transcript-shards/plan.json``;
    with ``kms_key_arn``, decrypt them under the bucket's SSE-KMS key)."""
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
            "ReadShortsConfig", ["s3:GetObject"], [f"{_video_objects(bucket_arn)}/{SHORTS_CONFIG}"]
        ),
        *(
            [
                _statement(
                    "ReadShardPlan",
                    ["s3:GetObject"],
                    [f"{_video_objects(bucket_arn)}/{SHARDS_DIR}/{SHARD_PLAN}"],
                )
            ]
            if reads_shard_plan
            else []
        ),
        _statement("DeliverLogs", LOG_DELIVERY_ACTIONS, ["*"]),
        _statement("Tracing", XRAY_ACTIONS, ["*"]),
        *([kms_statement(kms_key_arn, KMS_READ_ACTIONS)] if kms_key_arn else []),
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


EVENTS_SERVICE = "events.amazonaws.com"


def notification_topic_policy(topic_arn: str, rule_arn: str) -> Document:
    """Topic policy letting only the execution-status rule ``rule_arn`` publish to the topic."""
    return _document(
        {
            "Sid": "ExecutionStatusRulePublishes",
            "Effect": "Allow",
            "Principal": {"Service": EVENTS_SERVICE},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }
    )
