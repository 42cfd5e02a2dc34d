"""Klippers on AWS: S3 warehouse, job image, Fargate jobs and the Step Functions pipeline.

Stack config (``pulumi config set klippers:KEY VALUE``); every key has a default:

- ``existingBucketName``: use this bucket instead of creating one.
- ``parentCpu`` / ``parentMemory`` / ``childCpu`` / ``childMemory``: Fargate CPU units and
  MiB (default 16384 / 65536, the seed's 16 vCPU / 64 GB).
- ``ephemeralStorageGib``: task disk for long videos (default 100, at most 200).
- ``maxConcurrency``: child tasks at once (default 10).
- ``parentTimeoutSeconds`` / ``childTimeoutSeconds``: one attempt's limit.
- ``logRetentionDays``: CloudWatch retention (default 30).
- ``vpcId`` + ``subnetIds`` (JSON list): run there instead of the default VPC.
- ``assignPublicIp``: give tasks a public IP (default true; needed without a NAT gateway).
- ``asrModel``: faster-whisper model baked into the image (default: klippers' default).
"""

from __future__ import annotations

import pulumi
from klippers_infra import (
    JobImage,
    Jobs,
    Pipeline,
    TaskNetwork,
    Warehouse,
    child_spec,
    parent_spec,
    task_size,
)

from klippers import statemachine
from klippers.contract import DEFAULT_ASR_MODEL

config = pulumi.Config()
existing_bucket = config.get("existingBucketName")
disk_gib = config.get_int("ephemeralStorageGib") or 100
parent_size = task_size(
    cpu=config.get_int("parentCpu") or 16384,
    memory=config.get_int("parentMemory") or 65536,
)
child_size = task_size(
    cpu=config.get_int("childCpu") or 16384,
    memory=config.get_int("childMemory") or 65536,
)
max_concurrency = config.get_int("maxConcurrency") or statemachine.DEFAULT_MAX_CONCURRENCY
parent_timeout = config.get_int("parentTimeoutSeconds") or (
    statemachine.DEFAULT_PARENT_TIMEOUT_SECONDS
)
child_timeout = config.get_int("childTimeoutSeconds") or statemachine.DEFAULT_CHILD_TIMEOUT_SECONDS
log_retention_days = config.get_int("logRetentionDays") or 30
vpc_id = config.get("vpcId")
subnet_ids = [str(s) for s in config.get_object("subnetIds") or []]
assign_public_ip = config.get_bool("assignPublicIp")
asr_model = config.get("asrModel") or DEFAULT_ASR_MODEL
statemachine.check_limits(
    max_concurrency=max_concurrency,
    parent_timeout_seconds=parent_timeout,
    child_timeout_seconds=child_timeout,
)

warehouse = Warehouse("warehouse", existing_bucket_name=existing_bucket)
image = JobImage(
    "klippers-jobs",
    context="..",
    dockerfile="../images/Dockerfile",
    asr_model=asr_model,
)
network = TaskNetwork("klippers-tasks", vpc_id=vpc_id, subnet_ids=subnet_ids)
jobs = Jobs(
    "klippers",
    image_uri=image.image_uri,
    repository_arn=image.repository_arn,
    bucket_name=warehouse.bucket_name,
    bucket_arn=warehouse.bucket_arn,
    parent=parent_spec(parent_size, disk_gib),
    child=child_spec(child_size, disk_gib),
    log_retention_days=log_retention_days,
)
pipeline = Pipeline(
    "klippers-video-processing",
    definition_args={
        "cluster_arn": jobs.cluster_arn,
        "parent_task_definition_arn": jobs.parent_task_definition_arn,
        "child_task_definition_arn": jobs.child_task_definition_arn,
        "subnets": network.subnet_ids,
        "security_groups": [network.security_group_id],
        "bucket": warehouse.bucket_name,
        "max_concurrency": max_concurrency,
        "parent_timeout_seconds": parent_timeout,
        "child_timeout_seconds": child_timeout,
        "assign_public_ip": assign_public_ip is not False,
    },
    passable_role_arns=jobs.passable_role_arns,
    bucket_arn=warehouse.bucket_arn,
    log_retention_days=log_retention_days,
)

pulumi.export("stateMachineArn", pipeline.state_machine_arn)
pulumi.export("stateMachineName", pipeline.state_machine_name)
pulumi.export("stateMachineLogGroup", pipeline.log_group_name)
pulumi.export("bucketName", warehouse.bucket_name)
pulumi.export("clusterArn", jobs.cluster_arn)
pulumi.export("clusterName", jobs.cluster_name)
pulumi.export("jobsLogGroup", jobs.log_group_name)
pulumi.export("parentTaskDefinitionArn", jobs.parent_task_definition_arn)
pulumi.export("childTaskDefinitionArn", jobs.child_task_definition_arn)
pulumi.export("imageUri", image.image_uri)
