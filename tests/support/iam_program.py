"""The IAM documents the Pulumi program generates, read from a run under Pulumi mocks.

The program runs with ``tests/infra/test_infra.py``'s mocks (:func:`run_program`); roles
are found the way AWS uses them: the job roles through the task definitions whose
container runs ``python -m klippers.parent|child``, the pipeline's through the state
machine. Nothing is copied by hand, so a change to the program changes what the IAM
tests enforce.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.infra.test_infra import Recorder, Run, policies, run_program

__all__ = ["STATE_MACHINE", "ProgramPolicies", "Role", "policies", "program_policies"]

Document = dict[str, Any]
STATE_MACHINE = "states"
"""The key of the state machine's role in :attr:`ProgramPolicies.roles`."""

_ROLE = "aws:iam/role:Role"
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


@dataclass(frozen=True)
class Role:
    """One IAM role: its ARN, trust policy and permission documents."""

    arn: str
    trust: Document
    policies: tuple[Document, ...]


@dataclass(frozen=True)
class ProgramPolicies:
    """What the program grants: roles by job module (and :data:`STATE_MACHINE`), and the
    bucket with its policies."""

    bucket: str
    roles: Mapping[str, Role]
    execution_roles: Mapping[str, Role]
    bucket_policies: tuple[Document, ...]
    run: Run

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"


def program_policies(config: Mapping[str, str] | None = None) -> ProgramPolicies:
    """Run the program with ``config`` and collect its IAM documents."""
    run = run_program(dict(config or {}))
    mocks = run.mocks
    roles: dict[str, Role] = {}
    execution: dict[str, Role] = {}
    for inputs in mocks.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        (container,) = json.loads(inputs["containerDefinitions"])
        module = container["command"][-1]
        roles[module] = _role(mocks, inputs["taskRoleArn"])
        execution[module] = _role(mocks, inputs["executionRoleArn"])
    machine, _ = mocks.one("aws:sfn/stateMachine:StateMachine")
    roles[STATE_MACHINE] = _role(mocks, machine["roleArn"])
    bucket_policies = tuple(
        json.loads(inputs["policy"]) for inputs in mocks.of_type("aws:s3/bucketPolicy:BucketPolicy")
    )
    return ProgramPolicies(run.exports["bucketName"], roles, execution, bucket_policies, run)


def _role(mocks: Recorder, arn: str) -> Role:
    """The role whose ARN is ``arn``, with its inline policies (``RolePolicy``)."""
    found = [
        (inputs, outputs)
        for typ, _, inputs, outputs in mocks.resources
        if typ == _ROLE and outputs.get("arn") == arn
    ]
    if len(found) != 1:
        raise LookupError(f"{len(found)} roles have the ARN {arn}")
    inputs, outputs = found[0]
    role_id = outputs["name"]  # what the mocks answer as the role's id
    if any(i.get("role") == role_id for i in mocks.of_type(_ATTACHMENT)):
        raise NotImplementedError(f"{arn}: managed policy attachments are not read here")
    policies = tuple(
        json.loads(i["policy"]) for i in mocks.of_type(_ROLE_POLICY) if i.get("role") == role_id
    )
    if not policies:
        raise LookupError(f"{arn}: no inline policy found")
    return Role(arn, json.loads(inputs["assumeRolePolicy"]), policies)
