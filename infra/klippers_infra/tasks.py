"""Fargate task sizes from the stack config and container definitions, as pure functions."""

from __future__ import annotations

from typing import Any

from klippers.aws import FARGATE_SIZES, VCPU_UNITS, TaskSize, TaskSizeError
from klippers.contract import ENV_BUCKET, ENV_LOG_FORMAT

MIN_EPHEMERAL_GIB = 21
MAX_EPHEMERAL_GIB = 200
STOP_TIMEOUT_SECONDS = 120


def task_size(*, cpu: int, memory: int) -> TaskSize:
    """The Fargate size from the stack config's units (CPU units, MiB); errors name the key."""
    if cpu / VCPU_UNITS not in FARGATE_SIZES:
        allowed = ", ".join(str(round(v * VCPU_UNITS)) for v in FARGATE_SIZES)
        raise ValueError(f"cpu: Fargate allows {allowed} CPU units (got {cpu})")
    try:
        return TaskSize.from_units(cpu=cpu, memory_mib=memory)
    except TaskSizeError as exc:
        raise ValueError(f"memory: {memory} MiB is not a Fargate size: {exc}") from exc


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
