"""Klippers on AWS: S3 warehouse, job image, Fargate jobs and the Step Functions pipeline.

Stack config (``pulumi config set klippers:KEY VALUE``); every key has a default:

Resource names derive from the stack's name (``klippers-<stack>-...``), so stacks coexist.

- ``existingBucketName``: use this bucket instead of creating one.
- ``kmsKeyArn``: the warehouse's SSE-KMS key (a key ARN): a created bucket encrypts with
  it, and the jobs, the state machine and the ``klip cloud`` user policy may use it through
  S3 (give an existing bucket that uses SSE-KMS its key here).
- ``forceDestroy``: let ``pulumi destroy`` delete the created bucket and every object in it
  (default false: the bucket and its settings are kept).
- ``sizes``: ``recommended`` (default: parent 16 vCPU / 32 GB, child 2 vCPU / 4 GB) or
  ``seed`` (16 vCPU / 64 GB each).
- ``parentCpu`` / ``parentMemory`` / ``childCpu`` / ``childMemory``: Fargate CPU units and
  MiB, overriding ``sizes`` one at a time.
- ``parentStorageGib`` / ``childStorageGib``: task disks (default 100 / 21, from 21 to 200).
- ``maxConcurrency``: child tasks at once (default 10).
- ``childCapacity``: ``on-demand`` (default) or ``spot``: children run on Fargate Spot
  (about 70 % cheaper; an interrupted child is retried like any transient failure). The
  parent always runs on demand.
- ``parentTimeoutSeconds`` / ``childTimeoutSeconds``: one attempt's limit (the parent
  refuses up front a video it cannot finish in its limit).
- ``shardTranscription``: transcribe videos of 90 minutes and more in windows on parallel
  Fargate tasks (2 vCPU / 4 GB each) before the parent, which merges them (default false).
  ``shardTimeoutSeconds`` is one window's limit (default 3600).
- ``logRetentionDays``: CloudWatch retention (default 30).
- ``vpcId`` + ``subnetIds`` (JSON list): run there instead of the default VPC.
- ``assignPublicIp``: give tasks a public IP (default true; needed without a NAT gateway).
- ``asrModel``: faster-whisper model baked into the image (default: klippers' default).
- ``llmModel`` (+ ``llmProvider`` openai|bedrock, default openai; ``llmBaseUrl``, an https://
  OpenAI-compatible endpoint; ``llmRegion`` for Bedrock; ``llmApiKeySecretArn``, a Secrets
  Manager secret holding the API key): the LLM a video's ``scorer: llm`` asks (default:
  none, and such a video fails as bad input naming the missing setting).
- ``notify``: an e-mail address, SQS queue ARN or Lambda function ARN that gets every ended
  execution (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) through an SNS topic (default: none).
"""

from __future__ import annotations

import pulumi
from klippers_infra import (
    JobImage,
    Jobs,
    LLMSettings,
    Notifications,
    Pipeline,
    TaskNetwork,
    Warehouse,
    child_capacity,
    child_spec,
    job_sizes,
    parent_spec,
    shard_spec,
)

from klippers import statemachine
from klippers.aws import (
    CHILD_EPHEMERAL_GIB,
    DEFAULT_SIZE_PROFILE,
    PARENT_EPHEMERAL_GIB,
    SHARD_EPHEMERAL_GIB,
    SHARD_SIZE,
    StackNames,
)
from klippers.contract import DEFAULT_ASR_MODEL

config = pulumi.Config()
names = StackNames.for_stack(pulumi.get_stack())
existing_bucket = config.get("existingBucketName")
kms_key_arn = config.get("kmsKeyArn")
force_destroy = config.get_bool("forceDestroy") is True
parent_size, child_size = job_sizes(
    config.get("sizes") or DEFAULT_SIZE_PROFILE,
    parent_cpu=config.get_int("parentCpu"),
    parent_memory=config.get_int("parentMemory"),
    child_cpu=config.get_int("childCpu"),
    child_memory=config.get_int("childMemory"),
)
parent_disk_gib = config.get_int("parentStorageGib") or PARENT_EPHEMERAL_GIB
child_disk_gib = config.get_int("childStorageGib") or CHILD_EPHEMERAL_GIB
max_concurrency = config.get_int("maxConcurrency") or statemachine.DEFAULT_MAX_CONCURRENCY
children_capacity = child_capacity(config.get("childCapacity"))
parent_timeout = config.get_int("parentTimeoutSeconds") or (
    statemachine.DEFAULT_PARENT_TIMEOUT_SECONDS
)
child_timeout = config.get_int("childTimeoutSeconds") or statemachine.DEFAULT_CHILD_TIMEOUT_SECONDS
sharded = config.get_bool("shardTranscription") is True
shard_timeout = config.get_int("shardTimeoutSeconds") or statemachine.DEFAULT_SHARD_TIMEOUT_SECONDS
log_retention_days = config.get_int("logRetentionDays") or 30
vpc_id = config.get("vpcId")
subnet_ids = [str(s) for s in config.get_object("subnetIds") or []]
assign_public_ip = config.get_bool("assignPublicIp")
asr_model = config.get("asrModel") or DEFAULT_ASR_MODEL
notify = config.get("notify")
llm_model = config.get("llmModel")
LLM_KEYS = ("llmProvider", "llmBaseUrl", "llmRegion", "llmApiKeySecretArn")
if not llm_model and (given := [key for key in LLM_KEYS if config.get(key)]):
    raise ValueError(f"llmModel: must be set when {', '.join(given)} is")
llm = (
    LLMSettings(
        provider=config.get("llmProvider") or "openai",
        model=llm_model,
        base_url=config.get("llmBaseUrl"),
        region=config.get("llmRegion"),
        api_key_secret_arn=config.get("llmApiKeySecretArn"),
    )
    if llm_model
    else None
)
statemachine.check_limits(
    max_concurrency=max_concurrency,
    parent_timeout_seconds=parent_timeout,
    child_timeout_seconds=child_timeout,
    shard_timeout_seconds=shard_timeout,
)

warehouse = Warehouse(
    "warehouse",
    existing_bucket_name=existing_bucket,
    force_destroy=force_destroy,
    kms_key_arn=kms_key_arn,
)
image = JobImage(
    "klippers-jobs",
    context="..",
    dockerfile="../images/Dockerfile",
    asr_model=asr_model,
)
network = TaskNetwork("klippers-tasks", vpc_id=vpc_id, subnet_ids=subnet_ids)
jobs = Jobs(
    "klippers",
    names=names,
    image_uri=image.image_uri,
    repository_arn=image.repository_arn,
    bucket_name=warehouse.bucket_name,
    bucket_arn=warehouse.bucket_arn,
    parent=parent_spec(names, parent_size, parent_disk_gib, llm, timeout_seconds=parent_timeout),
    child=child_spec(names, child_size, child_disk_gib),
    shard=shard_spec(names, SHARD_SIZE, SHARD_EPHEMERAL_GIB) if sharded else None,
    log_retention_days=log_retention_days,
    kms_key_arn=kms_key_arn,
    child_capacity=children_capacity,
)
pipeline = Pipeline(
    "klippers-video-processing",
    names=names,
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
        "child_capacity": children_capacity,
        **(
            {
                "shard_task_definition_arn": jobs.shard_task_definition_arn,
                "shard_timeout_seconds": shard_timeout,
            }
            if sharded
            else {}
        ),
    },
    passable_role_arns=jobs.passable_role_arns,
    bucket_arn=warehouse.bucket_arn,
    log_retention_days=log_retention_days,
    kms_key_arn=kms_key_arn,
)
notifications = (
    Notifications(
        "klippers-notifications",
        names=names,
        state_machine_arn=pipeline.state_machine_arn,
        subscriber=notify,
    )
    if notify
    else None
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
if jobs.shard_task_definition_arn is not None:
    pulumi.export("shardTaskDefinitionArn", jobs.shard_task_definition_arn)
if notifications is not None:
    pulumi.export("notificationTopicArn", notifications.topic_arn)
