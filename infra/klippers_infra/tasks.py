"""Fargate task sizing and container definitions, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klippers.cloud import FARGATE_SIZES, fargate_size_problem
from klippers.contract import ENV_BUCKET, ENV_LOG_FORMAT

MIN_EPHEMERAL_GIB = 21
MAX_EPHEMERAL_GIB = 200
STOP_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class TaskSize:
    """CPU units, memory (MiB) and ephemeral storage (GiB) of one Fargate task."""

    cpu: int
    memory: int
    ephemeral_gib: int

    def __post_init__(self) -> None:
        if self.cpu / 1024 not in FARGATE_SIZES:
            allowed = ", ".join(str(round(v * 1024)) for v in FARGATE_SIZES)
            raise ValueError(f"cpu: Fargate allows {allowed} CPU units (got {self.cpu})")
        problem = fargate_size_problem(self.cpu / 1024, self.memory / 1024)
        if problem is not None:
            raise ValueError(f"memory: {self.memory} MiB is not a Fargate size: {problem}")
        if not MIN_EPHEMERAL_GIB <= self.ephemeral_gib <= MAX_EPHEMERAL_GIB:
            raise ValueError(
                f"ephemeral_gib: must be from {MIN_EPHEMERAL_GIB} to {MAX_EPHEMERAL_GIB} "
                f"(got {self.ephemeral_gib})"
            )


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
