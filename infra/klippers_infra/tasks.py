"""Fargate task sizes from the stack config and container definitions, as pure functions."""

from __future__ import annotations

import contextlib
from typing import Any

from klippers.aws import (
    FARGATE_SIZES,
    SIZE_PROFILES,
    VCPU_UNITS,
    TaskSize,
    TaskSizeError,
    smallest_size,
)
from klippers.contract import ENV_BUCKET, ENV_LOG_FORMAT

MIN_EPHEMERAL_GIB = 21
MAX_EPHEMERAL_GIB = 200
STOP_TIMEOUT_SECONDS = 120


def task_size(*, cpu: int, memory: int) -> TaskSize:
    """The Fargate size from the stack config's units (CPU units, MiB); errors name the key."""
    _check_cpu(cpu)
    try:
        return TaskSize.from_units(cpu=cpu, memory_mib=memory)
    except TaskSizeError as exc:
        raise ValueError(f"memory: {memory} MiB is not a Fargate size: {exc}") from exc


def _check_cpu(cpu: int) -> None:
    if cpu / VCPU_UNITS not in FARGATE_SIZES:
        allowed = ", ".join(str(round(v * VCPU_UNITS)) for v in FARGATE_SIZES)
        raise ValueError(f"cpu: Fargate allows {allowed} CPU units (got {cpu})")


def job_sizes(
    profile: str,
    *,
    parent_cpu: int | None = None,
    parent_memory: int | None = None,
    child_cpu: int | None = None,
    child_memory: int | None = None,
) -> tuple[TaskSize, TaskSize]:
    """The (parent, child) sizes of a named profile, overridden by the units given.

    ``profile`` is the stack config ``sizes`` (``recommended`` or ``seed``); the overrides
    are ``parentCpu``, ``parentMemory``, ``childCpu`` and ``childMemory`` in ECS units. A CPU
    given alone gets the least memory Fargate allows with it that covers the profile's.
    """
    if profile not in SIZE_PROFILES:
        raise ValueError(f"sizes: must be one of {', '.join(SIZE_PROFILES)} (got {profile!r})")
    parent, child = SIZE_PROFILES[profile]
    return _override(parent, parent_cpu, parent_memory), _override(child, child_cpu, child_memory)


def _override(size: TaskSize, cpu: int | None, memory: int | None) -> TaskSize:
    if cpu and not memory:
        _check_cpu(cpu)
        with contextlib.suppress(TaskSizeError):
            return smallest_size(cpu / VCPU_UNITS, size.memory_gb)
    return task_size(cpu=cpu or size.cpu_units, memory=memory or size.memory_mib)


def check_ephemeral_gib(gib: int) -> int:
    """``gib`` when Fargate accepts it as a task's ephemeral storage, else ValueError."""
    if not MIN_EPHEMERAL_GIB <= gib <= MAX_EPHEMERAL_GIB:
        raise ValueError(
            f"ephemeral_gib: must be from {MIN_EPHEMERAL_GIB} to {MAX_EPHEMERAL_GIB} (got {gib})"
        )
    return gib


def container_definitions(
    *,
    container: str,
    image: str,
    command: list[str],
    bucket: str,
    log_group: str,
    region: str,
    stream_prefix: str,
) -> list[dict[str, Any]]:
    """The single-container definition of one job (image by digest, awslogs, JSON logs)."""
    if "@sha256:" not in image:
        raise ValueError(f"image: must be referenced by digest (got {image!r})")
    return [
        {
            "name": container,
            "image": image,
            "essential": True,
            "command": command,
            "environment": [
                {"name": ENV_BUCKET, "value": bucket},
                {"name": ENV_LOG_FORMAT, "value": "json"},
            ],
            "linuxParameters": {"initProcessEnabled": True},
            "stopTimeout": STOP_TIMEOUT_SECONDS,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group,
                    "awslogs-region": region,
                    "awslogs-stream-prefix": stream_prefix,
                    "mode": "non-blocking",
                    "max-buffer-size": "25m",
                },
            },
        }
    ]
