"""AWS names and Fargate task sizes shared by the cloud client and the infrastructure.

Pure: no boto3, no pulumi, no click. The Pulumi program creates resources with these
names and sizes, and ``klip cloud`` finds them by the same names.

Examples
--------
>>> TaskSize(2, 4).cpu_units, TaskSize.from_units(cpu=2048, memory_mib=4096)
(2048, TaskSize(vcpu=2.0, memory_gb=4.0))
>>> bucket_name_problem("My_Bucket")
"invalid S3 bucket name 'My_Bucket' (3-63 characters: a-z, 0-9, '.', '-')"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

STATE_MACHINE_NAME = "klippers-video-processing"
STATE_MACHINE_LOG_GROUP = f"/aws/stepfunctions/{STATE_MACHINE_NAME}"
STATE_MACHINE_ARN_ENV = "KLIPPERS_STATE_MACHINE_ARN"
"""Environment variable holding the state machine ARN (the stack output ``stateMachineArn``)."""

PARENT_CONTAINER = "klippers-parent"
CHILD_CONTAINER = "klippers-child"
JOBS_LOG_GROUP = "/ecs/klippers-jobs"
"""CloudWatch log group of the Fargate jobs (the stack output ``jobsLogGroup``)."""
JOB_STREAM_PREFIXES: Mapping[str, str] = {PARENT_CONTAINER: "parent", CHILD_CONTAINER: "child"}
"""``awslogs-stream-prefix`` of each job container; streams are ``prefix/container/task-id``."""

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def bucket_name_problem(name: str) -> str | None:
    """Why S3 refuses ``name`` as a bucket name, or None when it is a valid one."""
    if isinstance(name, str) and _BUCKET_NAME.fullmatch(name):
        return None
    return f"invalid S3 bucket name {name!r} (3-63 characters: a-z, 0-9, '.', '-')"


class TaskSizeError(ValueError):
    """A CPU and memory combination that Fargate does not offer."""


def _gb(low: int, high: int, step: int) -> tuple[float, ...]:
    return tuple(float(m) for m in range(low, high + 1, step))


FARGATE_SIZES: Mapping[float, tuple[float, ...]] = {
    0.25: (0.5, 1.0, 2.0),
    0.5: _gb(1, 4, 1),
    1.0: _gb(2, 8, 1),
    2.0: _gb(4, 16, 1),
    4.0: _gb(8, 30, 1),
    8.0: _gb(16, 60, 4),
    16.0: _gb(32, 120, 8),
}
"""Fargate vCPU -> the memory sizes (GB) it allows."""

VCPU_UNITS = 1024
"""ECS CPU units per vCPU (and MiB per GB of task memory)."""


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
    """A Fargate task size in vCPU and GB, validated against Fargate's combinations."""

    vcpu: float
    memory_gb: float

    def __post_init__(self) -> None:
        problem = fargate_size_problem(self.vcpu, self.memory_gb)
        if problem is not None:
            raise TaskSizeError(problem)

    @classmethod
    def from_units(cls, *, cpu: int, memory_mib: int) -> TaskSize:
        """The size from ECS units: CPU units (1024 per vCPU) and memory in MiB."""
        return cls(cpu / VCPU_UNITS, memory_mib / VCPU_UNITS)

    @property
    def cpu_units(self) -> int:
        """ECS CPU units, as the task definition and the stack config ``parentCpu`` want."""
        return round(self.vcpu * VCPU_UNITS)

    @property
    def memory_mib(self) -> int:
        """Memory in MiB, as the task definition and the stack config ``parentMemory`` want."""
        return round(self.memory_gb * VCPU_UNITS)


def smallest_size(vcpu: float, memory_need_gb: float) -> TaskSize:
    """The least memory Fargate allows with ``vcpu`` that covers ``memory_need_gb``."""
    if vcpu not in FARGATE_SIZES:
        raise TaskSizeError(fargate_size_problem(vcpu, memory_need_gb))
    memory = next((m for m in FARGATE_SIZES[vcpu] if m >= memory_need_gb), None)
    if memory is None:
        raise TaskSizeError(f"{vcpu:g} vCPU cannot have {memory_need_gb:g} GB")
    return TaskSize(vcpu, memory)
