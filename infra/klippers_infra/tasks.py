"""Fargate task sizing and container definitions, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klippers.contract import ENV_BUCKET, ENV_LOG_FORMAT

# Fargate's allowed memory (MiB) for each CPU size (CPU units): (lowest, highest, step).
FARGATE_MEMORY = {
    256: (512, 2048, None),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
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
        if self.cpu not in FARGATE_MEMORY:
            allowed = ", ".join(map(str, FARGATE_MEMORY))
            raise ValueError(f"cpu: Fargate allows {allowed} CPU units (got {self.cpu})")
        low, high, step = FARGATE_MEMORY[self.cpu]
        fits = low <= self.memory <= high and (
            self.memory in (512, 1024, 2048) if step is None else (self.memory - low) % step == 0
        )
        if not fits:
            raise ValueError(
                f"memory: {self.memory} MiB is not a Fargate size for {self.cpu} CPU units "
                f"({low}-{high} MiB in steps of {step or 'powers of two'})"
            )
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
