"""Fargate task sizes from the stack config and container definitions, as pure functions."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from klippers.aws import (
    CHILD_CAPACITIES,
    DEFAULT_CHILD_CAPACITY,
    FARGATE_SIZES,
    SIZE_PROFILES,
    VCPU_UNITS,
    TaskSize,
    TaskSizeError,
    smallest_size,
)
from klippers.contract import (
    ENV_BUCKET,
    ENV_LLM_API_KEY,
    ENV_LLM_BASE_URL,
    ENV_LLM_MODEL,
    ENV_LLM_PROVIDER,
    ENV_LLM_REGION,
    ENV_LOG_FORMAT,
)

LLM_PROVIDERS = ("openai", "bedrock")
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


def child_capacity(setting: str | None) -> str:
    """The stack config ``childCapacity`` (default ``on-demand``); errors name the key."""
    capacity = setting or DEFAULT_CHILD_CAPACITY
    if capacity not in CHILD_CAPACITIES:
        allowed = ", ".join(CHILD_CAPACITIES)
        raise ValueError(f"childCapacity: must be one of {allowed} (got {setting!r})")
    return capacity


@dataclass(frozen=True)
class LLMSettings:
    """The LLM that a config's ``scorer: llm`` asks, set on the parent job (stack config
    ``llmProvider``, ``llmModel``, ``llmBaseUrl``, ``llmRegion``, ``llmApiKeySecretArn``).

    The API key stays in Secrets Manager: ECS injects it into the parent's container, so it
    is in neither the task definition nor the Pulumi state.
    """

    provider: str
    model: str
    base_url: str | None = None
    region: str | None = None
    api_key_secret_arn: str | None = None

    def __post_init__(self) -> None:
        if self.provider not in LLM_PROVIDERS:
            raise ValueError(
                f"llmProvider: must be one of {', '.join(LLM_PROVIDERS)} (got {self.provider!r})"
            )
        if not self.model.strip():
            raise ValueError("llmModel: must name the model (or the Bedrock model id)")
        if self.provider == "openai" and not (self.base_url or "").startswith("https://"):
            raise ValueError(
                "llmBaseUrl: the openai provider needs an https:// endpoint "
                f"(got {self.base_url!r})"
            )
        secret = self.api_key_secret_arn
        if secret is not None and ":secretsmanager:" not in secret:
            raise ValueError(f"llmApiKeySecretArn: must be a Secrets Manager ARN (got {secret!r})")

    def environment(self) -> dict[str, str]:
        """The parent container's ``KLIPPERS_LLM_*`` variables (never the key)."""
        values = {
            ENV_LLM_PROVIDER: self.provider,
            ENV_LLM_MODEL: self.model,
            ENV_LLM_BASE_URL: self.base_url,
            ENV_LLM_REGION: self.region,
        }
        return {name: value for name, value in values.items() if value}

    def secrets(self) -> dict[str, str]:
        """The variables ECS fills from Secrets Manager: the API key, when there is one."""
        return {ENV_LLM_API_KEY: self.api_key_secret_arn} if self.api_key_secret_arn else {}


def container_definitions(
    *,
    container: str,
    image: str,
    command: list[str],
    bucket: str,
    log_group: str,
    region: str,
    stream_prefix: str,
    environment: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The single-container definition of one job (image by digest, awslogs, JSON logs),
    with extra ``environment`` values and ``secrets`` (variable name to secret ARN)."""
    if "@sha256:" not in image:
        raise ValueError(f"image: must be referenced by digest (got {image!r})")
    variables = {ENV_BUCKET: bucket, ENV_LOG_FORMAT: "json", **(environment or {})}
    injected = [{"name": name, "valueFrom": arn} for name, arn in (secrets or {}).items()]
    return [
        {
            "name": container,
            "image": image,
            "essential": True,
            "command": command,
            "environment": [{"name": k, "value": v} for k, v in variables.items()],
            **({"secrets": injected} if injected else {}),
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
