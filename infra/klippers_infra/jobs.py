"""The ECS side: cluster (with Fargate Spot when the children use it), job log group, roles
and the Fargate task definitions of the parent, the child and (when transcription is
sharded) the transcription shard."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from klippers.aws import (
    CHILD_CAPACITIES,
    CHILD_CONTAINER,
    DEFAULT_CHILD_CAPACITY,
    JOB_STREAM_PREFIXES,
    ON_DEMAND,
    PARENT_CONTAINER,
    SHARD_CONTAINER,
    StackNames,
    TaskSize,
)
from klippers.contract import (
    CHILD_JOB_MODULE,
    ENV_PARENT_TIMEOUT,
    PARENT_JOB_MODULE,
    SHARD_JOB_MODULE,
    job_command,
)
from klippers_infra.policies import (
    CHILD_JOB,
    ECS_TASKS_SERVICE,
    PARENT_JOB,
    SHARD_JOB,
    Arn,
    Document,
    assume_role_policy,
    bedrock_statement,
    ecs_tasks_source,
    execution_role_policy,
    task_role_policy,
)
from klippers_infra.tasks import LLMSettings, check_ephemeral_gib, container_definitions


@dataclass(frozen=True)
class JobSpec:
    """One job's task definition: name (``parent``, ``child`` or ``shard``, which decides its
    warehouse access), family, container, module, size, disk (GiB), extra container
    variables and, for the parent, the LLM its ``scorer: llm`` asks."""

    job: str
    family: str
    container: str
    module: str
    size: TaskSize
    ephemeral_gib: int
    llm: LLMSettings | None = None
    variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ephemeral_gib(self.ephemeral_gib)

    def environment(self) -> dict[str, str]:
        """The container's variables besides the bucket's and the log format."""
        return {**(self.llm.environment() if self.llm else {}), **self.variables}

    def secrets(self) -> dict[str, str]:
        """The variables ECS fills from Secrets Manager."""
        return self.llm.secrets() if self.llm else {}


def parent_spec(
    names: StackNames,
    size: TaskSize,
    ephemeral_gib: int,
    llm: LLMSettings | None = None,
    *,
    timeout_seconds: int | None = None,
) -> JobSpec:
    """The parent job (transcribe, choose and cut segments); with ``timeout_seconds`` (one
    attempt's limit) it refuses up front a video it cannot finish in time."""
    variables = {ENV_PARENT_TIMEOUT: str(timeout_seconds)} if timeout_seconds else {}
    return JobSpec(
        PARENT_JOB,
        names.parent_family,
        PARENT_CONTAINER,
        PARENT_JOB_MODULE,
        size,
        ephemeral_gib,
        llm,
        variables,
    )


def child_spec(names: StackNames, size: TaskSize, ephemeral_gib: int) -> JobSpec:
    """The child job (render one short)."""
    return JobSpec(
        CHILD_JOB, names.child_family, CHILD_CONTAINER, CHILD_JOB_MODULE, size, ephemeral_gib
    )


def shard_spec(names: StackNames, size: TaskSize, ephemeral_gib: int) -> JobSpec:
    """The transcription shard job (plan the windows, or transcribe one)."""
    return JobSpec(
        SHARD_JOB, names.shard_family, SHARD_CONTAINER, SHARD_JOB_MODULE, size, ephemeral_gib
    )


class Jobs(pulumi.ComponentResource):
    """ECS cluster and the jobs' Fargate task definitions with their roles and logs (the
    shard's only with a ``shard`` spec).

    With ``child_capacity`` ``spot`` the cluster gets the FARGATE and FARGATE_SPOT capacity
    providers, and ``cluster_arn`` resolves only once they are attached, so the state
    machine that runs children on FARGATE_SPOT never precedes them.
    """

    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    parent_task_definition_arn: pulumi.Output[str]
    child_task_definition_arn: pulumi.Output[str]
    shard_task_definition_arn: pulumi.Output[str] | None
    passable_role_arns: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        names: StackNames,
        image_uri: pulumi.Input[str],
        repository_arn: pulumi.Input[str],
        bucket_name: pulumi.Input[str],
        bucket_arn: pulumi.Input[str],
        parent: JobSpec,
        child: JobSpec,
        log_retention_days: int,
        shard: JobSpec | None = None,
        kms_key_arn: str | None = None,
        child_capacity: str = DEFAULT_CHILD_CAPACITY,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("klippers:jobs:Jobs", name, None, opts)
        options = pulumi.ResourceOptions(parent=self)
        cluster = aws.ecs.Cluster(
            name,
            name=names.cluster,
            settings=[{"name": "containerInsights", "value": "disabled"}],
            opts=options,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=names.jobs_log_group,
            retention_in_days=log_retention_days,
            opts=options,
        )
        # Only ECS tasks of this account and region may assume the job roles.
        self._trust = cluster.arn.apply(
            lambda arn: json.dumps(assume_role_policy(ECS_TASKS_SERVICE, ecs_tasks_source(arn)))
        )
        self._kms_key_arn = kms_key_arn
        execution_role = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=self._trust,
            description="Klippers: lets ECS pull the job image and write job logs",
            opts=options,
        )
        specs = [spec for spec in (parent, child, shard) if spec is not None]
        secret_arns = [arn for spec in specs for arn in spec.secrets().values()]
        aws.iam.RolePolicy(
            f"{name}-execution",
            role=execution_role.id,
            policy=pulumi.Output.all(repository_arn, log_group.arn).apply(
                lambda a: json.dumps(execution_role_policy(a[0], a[1], secret_arns))
            ),
            opts=options,
        )
        self._image_uri = pulumi.Output.from_input(image_uri)
        self._bucket_name = pulumi.Output.from_input(bucket_name)
        self._bucket_arn = pulumi.Output.from_input(bucket_arn)
        self._log_group = log_group
        self._execution_role = execution_role
        parent_td, parent_role = self._task_definition(name, parent)
        child_td, child_role = self._task_definition(name, child)
        shard_job = self._task_definition(name, shard) if shard else None

        self.cluster_arn = _with_capacity(name, cluster, child_capacity, options)
        self.cluster_name = cluster.name
        self.log_group_name = log_group.name
        self.parent_task_definition_arn = parent_td.arn
        self.child_task_definition_arn = child_td.arn
        self.shard_task_definition_arn = shard_job[0].arn if shard_job else None
        roles = [parent_role, child_role, *([shard_job[1]] if shard_job else [])]
        self.passable_role_arns = pulumi.Output.all(
            *[role.arn for role in roles], execution_role.arn
        )
        self.register_outputs(
            {
                "clusterArn": self.cluster_arn,
                "logGroupName": self.log_group_name,
                "parentTaskDefinitionArn": self.parent_task_definition_arn,
                "childTaskDefinitionArn": self.child_task_definition_arn,
                "shardTaskDefinitionArn": self.shard_task_definition_arn,
            }
        )

    def _task_definition(
        self, name: str, spec: JobSpec
    ) -> tuple[aws.ecs.TaskDefinition, aws.iam.Role]:
        options = pulumi.ResourceOptions(parent=self)
        job = spec.job
        role = aws.iam.Role(
            f"{name}-{job}-task",
            assume_role_policy=self._trust,
            description=f"Klippers {job} job: its warehouse objects only",
            opts=options,
        )
        aws.iam.RolePolicy(
            f"{name}-{job}-task",
            role=role.id,
            policy=pulumi.Output.all(self._bucket_arn, self._log_group.arn).apply(
                lambda a: json.dumps(self._task_policy(spec, a[0], Arn.parse(a[1])))
            ),
            opts=options,
        )
        containers = pulumi.Output.all(
            self._image_uri, self._bucket_name, self._log_group.name, self._log_group.arn
        ).apply(
            lambda a: json.dumps(
                container_definitions(
                    container=spec.container,
                    image=a[0],
                    command=job_command(spec.module),
                    bucket=a[1],
                    log_group=a[2],
                    region=Arn.parse(a[3]).region,
                    stream_prefix=JOB_STREAM_PREFIXES[spec.container],
                    environment=spec.environment(),
                    secrets=spec.secrets(),
                )
            )
        )
        definition = aws.ecs.TaskDefinition(
            f"{name}-{job}",
            family=spec.family,
            cpu=str(spec.size.cpu_units),
            memory=str(spec.size.memory_mib),
            ephemeral_storage={"size_in_gib": spec.ephemeral_gib},
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            execution_role_arn=self._execution_role.arn,
            task_role_arn=role.arn,
            container_definitions=containers,
            opts=options,
        )
        return definition, role

    def _task_policy(self, spec: JobSpec, bucket_arn: str, where: Arn) -> Document:
        """The job's warehouse access, and for a parent with a Bedrock LLM, that model."""
        policy = task_role_policy(bucket_arn, spec.job, kms_key_arn=self._kms_key_arn)
        if spec.llm is not None and spec.llm.provider == "bedrock":
            region = spec.llm.region or where.region
            policy["Statement"].append(
                bedrock_statement(
                    spec.llm.model, region=region, account=where.account, partition=where.partition
                )
            )
        return policy


def _with_capacity(
    name: str, cluster: aws.ecs.Cluster, capacity: str, options: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """The cluster's ARN, after the capacity providers that ``capacity`` needs are attached."""
    if capacity == ON_DEMAND:
        return cluster.arn
    providers = aws.ecs.ClusterCapacityProviders(
        f"{name}-capacity",
        cluster_name=cluster.name,
        capacity_providers=[CHILD_CAPACITIES[ON_DEMAND], CHILD_CAPACITIES[capacity]],
        opts=options,
    )
    return pulumi.Output.all(cluster.arn, providers.id).apply(lambda a: a[0])
