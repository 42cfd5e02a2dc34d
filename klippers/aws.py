"""AWS names and Fargate task sizes shared by the cloud client and the infrastructure.

Pure: no boto3, no pulumi, no click. Every name derives from the Pulumi stack
(:class:`StackNames`), so two stacks live side by side in one account and region; the
Pulumi program creates resources with these names and sizes, and ``klip cloud`` finds
them by the same names.

Examples
--------
>>> TaskSize(2, 4).cpu_units, TaskSize.from_units(cpu=2048, memory_mib=4096)
(2048, TaskSize(vcpu=2.0, memory_gb=4.0))
>>> bucket_name_problem("My_Bucket")
"invalid S3 bucket name 'My_Bucket' (3-63 characters: a-z, 0-9, '.', '-')"
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

PROJECT = "klippers"
STATE_MACHINE_ARN_ENV = "KLIPPERS_STATE_MACHINE_ARN"
"""Environment variable holding the state machine ARN (the stack output ``stateMachineArn``)."""
STACK_ENV = "KLIPPERS_STACK"
"""Environment variable naming the Pulumi stack ``klip cloud`` works with (``--stack``)."""

PARENT_CONTAINER = "klippers-parent"
CHILD_CONTAINER = "klippers-child"
SHARD_CONTAINER = "klippers-shard"
JOB_STREAM_PREFIXES: Mapping[str, str] = {
    PARENT_CONTAINER: "parent",
    CHILD_CONTAINER: "child",
    SHARD_CONTAINER: "shard",
}
"""``awslogs-stream-prefix`` of each job container; streams are ``prefix/container/task-id``."""

STATE_MACHINE_SUFFIX = "-video-processing"
VENDED_LOGS_ROOT = "/aws/vendedlogs/states/"
"""Step Functions log groups live here: AWS sizes the log delivery policy for this prefix."""
MAX_STACK_SLUG = 32
"""Longest stack part of a name: IAM role and EventBridge rule names stop at 64 characters."""
_SLUG_DIGEST = 8
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_STATE_MACHINE = re.compile(rf"{PROJECT}-([a-z0-9-]+){STATE_MACHINE_SUFFIX}")


def stack_slug(stack: str) -> str:
    """``stack`` as it appears in resource names: a-z, 0-9 and ``-``, at most 32 characters.

    A valid slug is its own slug. Any other name (capitals, ``.``, ``_``, too long) is
    shortened and gets a digest of the original, so two stacks never share a slug.
    """
    if not isinstance(stack, str) or not stack.strip():
        raise ValueError(f"stack: must be a non-empty name (got {stack!r})")
    cleaned = _NOT_SLUG.sub("-", stack.lower()).strip("-")
    if cleaned == stack and len(stack) <= MAX_STACK_SLUG:
        return stack
    digest = hashlib.sha256(stack.encode()).hexdigest()[:_SLUG_DIGEST]
    head = cleaned[: MAX_STACK_SLUG - _SLUG_DIGEST - 1].strip("-")
    return f"{head}-{digest}" if head else digest


@dataclass(frozen=True)
class StackNames:
    """The AWS names of one Pulumi stack's resources; two stacks never share one.

    Examples
    --------
    >>> names = StackNames.for_stack("dev")
    >>> names.state_machine, names.state_machine_log_group
    ('klippers-dev-video-processing', '/aws/vendedlogs/states/klippers-dev-video-processing')
    >>> StackNames.from_state_machine("klippers-dev-video-processing") == names
    True
    """

    slug: str

    def __post_init__(self) -> None:
        if stack_slug(self.slug) != self.slug:
            raise ValueError(f"stack: {self.slug!r} is not a stack slug (see stack_slug)")

    @classmethod
    def for_stack(cls, stack: str) -> StackNames:
        """The names of Pulumi stack ``stack``."""
        return cls(stack_slug(stack))

    @classmethod
    def from_state_machine(cls, name: str) -> StackNames | None:
        """The names of the stack whose state machine is called ``name``, if it is one."""
        match = _STATE_MACHINE.fullmatch(name)
        if match is None or stack_slug(match.group(1)) != match.group(1):
            return None
        return cls(match.group(1))

    @property
    def prefix(self) -> str:
        """``klippers-<stack>``: the start of every name."""
        return f"{PROJECT}-{self.slug}"

    @property
    def state_machine(self) -> str:
        """The state machine (stack output ``stateMachineName``)."""
        return f"{self.prefix}{STATE_MACHINE_SUFFIX}"

    @property
    def state_machine_log_group(self) -> str:
        """The state machine's log group (stack output ``stateMachineLogGroup``)."""
        return f"{VENDED_LOGS_ROOT}{self.state_machine}"

    @property
    def state_machine_role(self) -> str:
        """The IAM role the state machine runs as."""
        return f"{self.prefix}-step-functions-role"

    @property
    def jobs_log_group(self) -> str:
        """The Fargate jobs' log group (stack output ``jobsLogGroup``)."""
        return f"/ecs/{self.prefix}-jobs"

    @property
    def cluster(self) -> str:
        """The ECS cluster."""
        return self.prefix

    @property
    def parent_family(self) -> str:
        """The parent job's task definition family."""
        return f"{self.prefix}-parent"

    @property
    def child_family(self) -> str:
        """The child job's task definition family."""
        return f"{self.prefix}-child"

    @property
    def shard_family(self) -> str:
        """The transcription shard job's task definition family."""
        return f"{self.prefix}-shard"

    @property
    def notifications(self) -> str:
        """The SNS topic and EventBridge rule of execution notifications."""
        return f"{self.prefix}-executions"


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


SEED_TASK_SIZE = TaskSize(16, 64)
"""The seed's size for both jobs (stack config ``sizes: seed``)."""
RECOMMENDED_PARENT_SIZE = TaskSize(16, 32)
RECOMMENDED_CHILD_SIZE = TaskSize(2, 4)
"""The default sizes: what ``klippers.cloud.cost.recommend`` picks for a 1-hour video and 5
shorts of 60 s with the ``base`` model (``klip cloud estimate --hours 1 --shorts 5``)."""
SHARD_SIZE = TaskSize(2, 4)
"""The transcription shard job (plan, and one window of about 12 minutes): ASR on 2 vCPU."""
SIZE_PROFILES: Mapping[str, tuple[TaskSize, TaskSize]] = {
    "recommended": (RECOMMENDED_PARENT_SIZE, RECOMMENDED_CHILD_SIZE),
    "seed": (SEED_TASK_SIZE, SEED_TASK_SIZE),
}
"""Stack config ``sizes``: (parent, child) sizes by name."""
DEFAULT_SIZE_PROFILE = "recommended"

PARENT_EPHEMERAL_GIB = 100
"""Parent disk: the whole original (a 3-hour 1080p upload can pass 20 GB), its audio and
the cut segments."""
CHILD_EPHEMERAL_GIB = 21
"""Child disk, Fargate's minimum: the image, one segment, a background and one short
(well under 2 GB)."""
SHARD_EPHEMERAL_GIB = PARENT_EPHEMERAL_GIB
"""Shard disk: each shard downloads the whole original."""

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"
"""ECS's two Fargate capacity providers: on demand, and Spot (spare capacity, interruptible)."""
ON_DEMAND = "on-demand"
SPOT = "spot"
CHILD_CAPACITIES: Mapping[str, str] = {ON_DEMAND: FARGATE, SPOT: FARGATE_SPOT}
"""Stack config ``childCapacity`` -> the capacity provider the children run on. The parent
always runs on demand: it is long, and an interruption would repeat all of it."""
DEFAULT_CHILD_CAPACITY = ON_DEMAND
