"""The cost and latency model behind ``klip cloud estimate``: stage CPU -> wall time -> dollars.

The measured CPU figures and the parent's stages are :mod:`klippers.workload`'s.

Examples
--------
>>> round(estimate(hours=1, shorts=5).total_dollars, 3) <= TARGET_DOLLARS_PER_HOUR
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from klippers.aws import (
    CHILD_EPHEMERAL_GIB,
    FARGATE_SIZES,
    PARENT_EPHEMERAL_GIB,
    SEED_TASK_SIZE,
    SHARD_EPHEMERAL_GIB,
    SHARD_SIZE,
    TaskSize,
    smallest_size,
)
from klippers.cloud.clients import CloudInputError
from klippers.contract import MAX_SHARD_COUNT, SHARD_OVERLAP_SECONDS
from klippers.workload import (
    S3_MEGABYTES_PER_SECOND,
    TASK_STARTUP_SECONDS,
    Stage,
    UnknownModelError,
    asr_cpu_per_second,
    asr_wall_seconds,
    parent_stages,
    wall_seconds,
)

PRICES_TAKEN = "2026-03"
"""When the prices below were read: aws.amazon.com/fargate/pricing and
aws.amazon.com/step-functions/pricing, us-east-1, Linux/x86, on demand."""
FARGATE_VCPU_HOUR = 0.04048
FARGATE_GB_HOUR = 0.004445
FARGATE_STORAGE_GB_HOUR = 0.000111
"""Ephemeral storage above the included 20 GB."""
FARGATE_INCLUDED_STORAGE_GB = 20
FARGATE_SPOT_DISCOUNT = 0.70
"""Fargate Spot's vCPU and memory prices below on demand (stack config ``childCapacity
spot``): AWS's "up to 70 %" (aws.amazon.com/fargate/pricing). The Spot price follows
supply and demand, so this is the best case; storage and the public IPv4 address cost
the same on Spot."""
FARGATE_MINIMUM_BILLED_SECONDS = 60
PUBLIC_IPV4_HOUR = 0.005
"""Each task gets a public IPv4 address (``assignPublicIp``, the default without NAT)."""
STEP_FUNCTIONS_TRANSITION = 0.025 / 1000
"""Standard workflows; S3 requests (a few dozen per run) are left out: well under $0.001."""

RENDER_CPU_PER_OUTPUT_SECOND = 1.1
"""Vertical 1080x1920 render, libx264 veryfast, captions: CPU seconds per output second."""
REFRAME_CPU_PER_VIDEO_SECOND = 0.11
"""Face-following crop analysis of the segment a child renders, per second of video."""
VIDEO_MEGABITS_PER_SECOND = 5.0
"""Assumed bitrate of the uploaded 1080p original (the parent downloads all of it)."""
SHORT_MEGABITS_PER_SECOND = 8.0
"""Bitrate of a cut segment / rendered short (children download one, upload one)."""
STATE_TRANSITIONS_FIXED = 9
"""Start, ParentJob, RunParent, ReadConfig, CheckSegmentCount, ListSegments, RenderShorts,
CheckShorts, Done."""
STATE_TRANSITIONS_PER_SHORT = 3
"""ShortJob, RenderShort, ShortRendered."""
STATE_TRANSITIONS_SHARDED_FIXED = 6
"""PlanShards, RunShardPlan, ReadShardPlan, CheckShardCount, ListShards, TranscribeShards."""
STATE_TRANSITIONS_PER_SHARD = 2
"""ShardJob, TranscribeShard."""
STEP_FUNCTIONS_OVERHEAD_SECONDS = 5.0
"""ReadConfig, Choice, Map scheduling and the ``.sync`` polling between tasks."""
PARENT_MEMORY_NEED_GB = 4.0
"""Decoding, the ASR model and segment cutting (base model); assumed with margin."""
CHILD_MEMORY_NEED_GB = 3.0
"""One 1080x1920 render with the background and face tracking; assumed with margin."""
PARENT_STORAGE_GB = PARENT_EPHEMERAL_GIB
CHILD_STORAGE_GB = CHILD_EPHEMERAL_GIB
"""Task disks the stack configures by default (``parentStorageGib``, ``childStorageGib``)."""

SEED_MINUTES = 30.0
SEED_DOLLARS = 3.50
"""What the seed's pipeline took for a 1-hour video and 5 shorts (16 vCPU / 64 GB tasks)."""
TARGET_MINUTES_PER_HOUR = 8.0
TARGET_DOLLARS_PER_HOUR = 0.35
"""Targets for a 1-hour video: <= 8 minutes and <= $0.35."""
FARGATE_VCPU_QUOTA = "Fargate On-Demand vCPU resource count"
"""The Service Quotas entry (code L-3032A538) that every running task's vCPUs count against."""
SHARDED_PARENT_VCPU = 2.0
"""The parent's vCPUs when the windows are transcribed by shard tasks: it only merges, measures
loudness and cuts."""
LATENCY_HEADROOM = 0.75
""":func:`recommend` keeps the modelled wall time within this share of the target."""


def task_dollars(
    size: TaskSize, seconds: float, storage_gb: float = CHILD_STORAGE_GB, *, spot: bool = False
) -> float:
    """Price of one task of ``size`` running ``seconds`` (one-minute minimum), on demand or
    on Fargate Spot (``spot``, uninterrupted)."""
    hours = max(seconds, FARGATE_MINIMUM_BILLED_SECONDS) / 3600
    extra_storage = max(0.0, storage_gb - FARGATE_INCLUDED_STORAGE_GB)
    compute_share = 1 - FARGATE_SPOT_DISCOUNT if spot else 1.0
    return hours * (
        compute_share * (size.vcpu * FARGATE_VCPU_HOUR + size.memory_gb * FARGATE_GB_HOUR)
        + extra_storage * FARGATE_STORAGE_GB_HOUR
        + PUBLIC_IPV4_HOUR
    )


def _children_dollars(child: TaskSize, seconds: float, shorts: int, *, spot: bool = False) -> float:
    """Price of ``shorts`` children of ``child`` size running ``seconds`` each."""
    return shorts * task_dollars(child, seconds, CHILD_STORAGE_GB, spot=spot)


SEED_SIZE = SEED_TASK_SIZE


@dataclass(frozen=True)
class Estimate:
    """Wall time and dollars of one video through the pipeline (see :func:`estimate`)."""

    hours: float
    shorts: int
    short_seconds: float
    asr_model: str
    parent: TaskSize
    child: TaskSize
    max_concurrency: int
    stages: tuple[Stage, ...]
    parent_seconds: float
    child_seconds: float
    waves: int
    wall_seconds: float
    fargate_dollars: float
    state_transitions: int
    step_functions_dollars: float
    notes: tuple[str, ...] = field(default=())
    shards: int = 1
    """Transcription windows; above 1 a plan task and ``shards`` shard tasks transcribe."""
    shard: TaskSize = SHARD_SIZE
    plan_seconds: float = 0.0
    shard_seconds: float = 0.0
    shard_waves: int = 0

    @property
    def total_dollars(self) -> float:
        """Fargate plus Step Functions (S3 requests are negligible)."""
        return self.fargate_dollars + self.step_functions_dollars

    @property
    def child_dollars(self) -> float:
        """Fargate dollars of all children on demand (the default ``childCapacity``), part of
        :attr:`fargate_dollars`."""
        return _children_dollars(self.child, self.child_seconds, self.shorts)

    @property
    def child_spot_dollars(self) -> float:
        """The same children on Fargate Spot (``childCapacity spot``) when none is
        interrupted; an interrupted one is billed for the time it ran, then retried."""
        return _children_dollars(self.child, self.child_seconds, self.shorts, spot=True)

    @property
    def wall_minutes(self) -> float:
        """End-to-end minutes from the start of the execution."""
        return self.wall_seconds / 60

    @property
    def child_cpu_seconds(self) -> float:
        """CPU seconds of all children together."""
        return sum(s.cpu_seconds for s in self.stages if s.task == "child") * self.shorts

    @property
    def peak_vcpu(self) -> float:
        """Most vCPUs running at once: the parent, or a wave of up to ``max_concurrency``
        children (they never overlap)."""
        shards = min(self.shards, self.max_concurrency) * self.shard.vcpu if self.shard_waves else 0
        return max(
            self.parent.vcpu, shards, min(self.shorts, self.max_concurrency) * self.child.vcpu
        )

    @property
    def target_minutes(self) -> float:
        """The latency target scaled to this video's length."""
        return TARGET_MINUTES_PER_HOUR * self.hours

    @property
    def target_dollars(self) -> float:
        """The cost target scaled to this video's length."""
        return TARGET_DOLLARS_PER_HOUR * self.hours

    @property
    def meets_targets(self) -> bool:
        """Whether both scaled targets are met."""
        return (
            self.wall_minutes <= self.target_minutes and self.total_dollars <= self.target_dollars
        )


def _asr_cpu_per_second(model: str) -> float:
    try:
        return asr_cpu_per_second(model)
    except UnknownModelError as exc:
        raise CloudInputError(str(exc)) from None


def estimate(
    *,
    hours: float,
    shorts: int,
    short_seconds: float = 60.0,
    parent: TaskSize | None = None,
    child: TaskSize | None = None,
    max_concurrency: int = 10,
    asr_model: str = "base",
    shards: int = 1,
    shard: TaskSize = SHARD_SIZE,
) -> Estimate:
    """Model one execution: per-stage CPU seconds -> wall seconds on the task sizes -> dollars.

    Parent: start, download the original, transcribe it, cut ``shorts`` segments,
    upload them. Children (``max_concurrency`` at a time, in waves): start, download one
    segment, analyse faces, render, upload. Sizes default to :func:`recommend`'s.

    With ``shards`` above 1 (the stack's sharded transcription), a plan task first starts,
    downloads and probes the original; then ``shards`` tasks of ``shard`` size (in waves of
    ``max_concurrency``) each start, download the original and transcribe their share plus
    the overlap on either side; then the parent (default ``SHARDED_PARENT_VCPU``) merges
    instead of transcribing. Shard ASR runs at the speed measured on ``ASR_MEASURED_CORES``
    cores (:func:`~klippers.workload.asr_wall_seconds`); the parent's stages are
    :func:`~klippers.workload.parent_stages`.
    """
    if not (math.isfinite(hours) and hours > 0):
        raise CloudInputError(f"hours must be a positive number (got {hours})")
    if shorts < 0:
        raise CloudInputError(f"shorts must be 0 or more (got {shorts})")
    if not (math.isfinite(short_seconds) and short_seconds > 0):
        raise CloudInputError(f"short duration must be positive (got {short_seconds})")
    if max_concurrency < 1:
        raise CloudInputError(f"max concurrency must be at least 1 (got {max_concurrency})")
    if not 1 <= shards <= MAX_SHARD_COUNT:
        raise CloudInputError(f"shards must be from 1 to {MAX_SHARD_COUNT} (got {shards})")
    if shards > 1 and parent is None:
        parent = smallest_size(SHARDED_PARENT_VCPU, PARENT_MEMORY_NEED_GB)
    if parent is None or child is None:
        best = recommend(
            hours=hours,
            shorts=shorts,
            short_seconds=short_seconds,
            max_concurrency=max_concurrency,
            asr_model=asr_model,
        )
        parent = parent or best.parent
        child = child or best.child
    video_seconds = hours * 3600
    asr_per_second = _asr_cpu_per_second(asr_model)
    reframe_cpu = short_seconds * REFRAME_CPU_PER_VIDEO_SECOND
    render_cpu = short_seconds * RENDER_CPU_PER_OUTPUT_SECOND
    original_mb = video_seconds * VIDEO_MEGABITS_PER_SECOND / 8
    short_mb = short_seconds * SHORT_MEGABITS_PER_SECOND / 8
    download = original_mb / S3_MEGABYTES_PER_SECOND
    sharding: tuple[Stage, ...] = ()
    if shards > 1:
        shard_cpu = (video_seconds / shards + 2 * SHARD_OVERLAP_SECONDS) * asr_per_second
        sharding = (
            Stage("start", "plan", 0.0, TASK_STARTUP_SECONDS),
            Stage("download original", "plan", 0.0, download),
            Stage("start", "shard", 0.0, TASK_STARTUP_SECONDS),
            Stage("download original", "shard", 0.0, download),
            Stage(
                f"transcribe ({asr_model})",
                "shard",
                shard_cpu,
                asr_wall_seconds(shard_cpu, shard.vcpu),
            ),
        )
    stages = (
        *sharding,
        *parent_stages(
            vcpu=parent.vcpu,
            original_megabytes=original_mb,
            audio_seconds=video_seconds,
            asr_model=None if shards > 1 else asr_model,
            segment_seconds=shorts * short_seconds,
            segment_megabytes=shorts * short_mb,
        ),
        Stage("start", "child", 0.0, TASK_STARTUP_SECONDS),
        Stage("reframe analysis", "child", reframe_cpu, wall_seconds(reframe_cpu, child.vcpu)),
        Stage("render", "child", render_cpu, wall_seconds(render_cpu, child.vcpu)),
        Stage("transfer short", "child", 0.0, 2 * short_mb / S3_MEGABYTES_PER_SECOND),
    )
    seconds = {task: sum(s.wall_seconds for s in stages if s.task == task) for task in _TASKS}
    parent_seconds, child_seconds = seconds["parent"], seconds["child"]
    waves = math.ceil(shorts / max_concurrency)
    shard_waves = math.ceil(shards / max_concurrency) if shards > 1 else 0
    wall = (
        STEP_FUNCTIONS_OVERHEAD_SECONDS
        + seconds["plan"]
        + shard_waves * seconds["shard"]
        + parent_seconds
        + waves * child_seconds
    )
    fargate = task_dollars(parent, parent_seconds, PARENT_STORAGE_GB) + _children_dollars(
        child, child_seconds, shorts
    )
    transitions = STATE_TRANSITIONS_FIXED + STATE_TRANSITIONS_PER_SHORT * shorts
    if shards > 1:
        fargate += task_dollars(
            shard, seconds["plan"], SHARD_EPHEMERAL_GIB
        ) + shards * task_dollars(shard, seconds["shard"], SHARD_EPHEMERAL_GIB)
        transitions += STATE_TRANSITIONS_SHARDED_FIXED + STATE_TRANSITIONS_PER_SHARD * shards
    notes = []
    if asr_model not in ("tiny.en", "tiny"):
        notes.append(f"ASR CPU for {asr_model} is an estimate from tiny.en's measured CPU")
    return Estimate(
        hours=hours,
        shorts=shorts,
        short_seconds=short_seconds,
        asr_model=asr_model,
        parent=parent,
        child=child,
        max_concurrency=max_concurrency,
        stages=stages,
        parent_seconds=parent_seconds,
        child_seconds=child_seconds,
        waves=waves,
        wall_seconds=wall,
        fargate_dollars=fargate,
        state_transitions=transitions,
        step_functions_dollars=transitions * STEP_FUNCTIONS_TRANSITION,
        notes=tuple(notes),
        shards=shards,
        shard=shard,
        plan_seconds=seconds["plan"],
        shard_seconds=seconds["shard"],
        shard_waves=shard_waves,
    )


_TASKS = ("plan", "shard", "parent", "child")


def best_shards(
    *,
    hours: float,
    shorts: int,
    short_seconds: float = 60.0,
    child: TaskSize | None = None,
    max_concurrency: int = 10,
    asr_model: str = "base",
) -> Estimate:
    """The fastest sharded estimate (2 to ``MAX_SHARD_COUNT`` windows; ties go to the
    cheaper), with the default sharded parent and ``child`` (default: :func:`recommend`'s)."""
    common: dict[str, Any] = {
        "hours": hours,
        "shorts": shorts,
        "short_seconds": short_seconds,
        "max_concurrency": max_concurrency,
        "asr_model": asr_model,
    }
    child = child or recommend(**common).child
    candidates = [estimate(**common, child=child, shards=n) for n in range(2, MAX_SHARD_COUNT + 1)]
    return min(candidates, key=lambda e: (round(e.wall_seconds, 1), e.total_dollars))


def recommend(
    *,
    hours: float,
    shorts: int,
    short_seconds: float = 60.0,
    max_concurrency: int = 10,
    asr_model: str = "base",
) -> Estimate:
    """The cheapest parent/child sizes within ``LATENCY_HEADROOM`` of the latency target.

    When no size is fast enough, the fastest.

    Each vCPU choice gets the least memory covering the stage's need; ties in cost go
    to the faster choice.
    """
    candidates = [
        estimate(
            hours=hours,
            shorts=shorts,
            short_seconds=short_seconds,
            parent=smallest_size(p, PARENT_MEMORY_NEED_GB),
            child=smallest_size(c, CHILD_MEMORY_NEED_GB),
            max_concurrency=max_concurrency,
            asr_model=asr_model,
        )
        for p in FARGATE_SIZES
        for c in FARGATE_SIZES
        if p >= 1 and c >= 1
    ]
    fast_enough = [e for e in candidates if e.wall_minutes <= e.target_minutes * LATENCY_HEADROOM]
    if fast_enough:
        return min(fast_enough, key=lambda e: (round(e.total_dollars, 6), e.wall_seconds))
    return min(candidates, key=lambda e: (e.wall_seconds, e.total_dollars))
