"""The Step Functions side: log group, the state machine's role and the state machine."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from klippers.aws import StackNames
from klippers.statemachine import build_definition
from klippers_infra.policies import (
    STATES_SERVICE,
    assume_role_policy,
    state_machine_policy,
    state_machine_source,
)

SHARD_TASK_DEFINITION = "shard_task_definition_arn"
_JOB_TASK_DEFINITIONS = ("parent_task_definition_arn", "child_task_definition_arn")


def _task_definitions(args: dict[str, Any]) -> list[str]:
    """The task definitions the state machine runs, from its resolved definition args."""
    names = [
        *_JOB_TASK_DEFINITIONS,
        *([SHARD_TASK_DEFINITION] if SHARD_TASK_DEFINITION in args else []),
    ]
    return [args[name] for name in names]


class Pipeline(pulumi.ComponentResource):
    """``klippers-<stack>-video-processing``: logging ALL with execution data, X-Ray tracing.

    Its log group is under ``/aws/vendedlogs/states/``, the prefix AWS recommends for
    vended logs (the log delivery resource policy stays small however many there are).

    ``definition_args`` are passed to :func:`klippers.statemachine.build_definition`
    after every Output in them resolves; with a ``shard_task_definition_arn`` among them the
    role may also run that job and read ``transcript-shards/plan.json``.
    """

    state_machine_arn: pulumi.Output[str]
    state_machine_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        names: StackNames,
        definition_args: dict[str, Any],
        passable_role_arns: pulumi.Input[list[str]],
        bucket_arn: pulumi.Input[str],
        log_retention_days: int,
        kms_key_arn: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("klippers:pipeline:Pipeline", name, None, opts)
        options = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=names.state_machine_log_group,
            retention_in_days=log_retention_days,
            opts=options,
        )
        role = aws.iam.Role(
            f"{name}-role",
            name=names.state_machine_role,
            # Only this state machine (by name, in the cluster's account and region).
            assume_role_policy=pulumi.Output.from_input(definition_args["cluster_arn"]).apply(
                lambda arn: json.dumps(
                    assume_role_policy(
                        STATES_SERVICE, state_machine_source(arn, names.state_machine)
                    )
                )
            ),
            description="Klippers state machine: run the jobs, read shorts_config.json",
            opts=options,
        )
        resolved = pulumi.Output.all(**definition_args)
        policy = aws.iam.RolePolicy(
            f"{name}-role",
            role=role.id,
            policy=pulumi.Output.all(resolved, passable_role_arns, bucket_arn).apply(
                lambda a: json.dumps(
                    state_machine_policy(
                        cluster_arn=a[0]["cluster_arn"],
                        task_definition_arns=_task_definitions(a[0]),
                        passable_role_arns=a[1],
                        bucket_arn=a[2],
                        kms_key_arn=kms_key_arn,
                        reads_shard_plan=SHARD_TASK_DEFINITION in a[0],
                    )
                )
            ),
            opts=options,
        )
        machine = aws.sfn.StateMachine(
            name,
            name=names.state_machine,
            type="STANDARD",
            role_arn=role.arn,
            definition=resolved.apply(lambda args: json.dumps(build_definition(**args))),
            logging_configuration={
                "log_destination": log_group.arn.apply(lambda arn: f"{arn}:*"),
                "include_execution_data": True,
                "level": "ALL",
            },
            tracing_configuration={"enabled": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.state_machine_arn = machine.arn
        self.state_machine_name = machine.name
        self.log_group_name = log_group.name
        self.register_outputs(
            {"stateMachineArn": self.state_machine_arn, "logGroupName": self.log_group_name}
        )
