"""How long the jobs' work takes: measured CPU per stage, and wall time on a number of cores.

One model for ``klip cloud estimate`` (:mod:`klippers.cloud.cost`) and for the parent job,
which refuses up front an attempt it cannot finish in its time limit
(:mod:`klippers.jobs.parent`). Pure: the standard library only.

Examples
--------
>>> round(asr_cpu_per_second("tiny.en"), 3)
0.165
>>> [s.name for s in parent_stages(
...     vcpu=2, original_megabytes=100, audio_seconds=600, asr_model=None,
...     segment_seconds=60, segment_megabytes=1)]
['start', 'download original', 'smart cut', 'upload segments']
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ASR_CPU_PER_SECOND_TINY_EN = 0.165
"""CPU seconds per second of audio of the pipeline's faster-whisper tiny.en (int8, beam 5,
word timestamps, VAD, a worker per core), measured on this machine's 2 AVX2 cores, quiet,
2026-12-06: 0.158 on a generated 5-minute talk, 0.168 on 84 s of real speech."""
ASR_MEASURED_CORES = 2
ASR_BUSY_ON_MEASURED_CORES = 0.89
"""Share of the ``ASR_MEASURED_CORES`` cores the transcription kept busy on the 5-minute
talk (wall 0.089 s per audio second); 0.68 on the 84 s of real speech, too short for every
worker to get a window."""
ASR_MODEL_CPU_FACTOR: Mapping[str, float] = {
    "tiny.en": 1.0,
    "tiny": 1.0,
    "base.en": 3.0,
    "base": 3.0,
    "small.en": 9.0,
    "small": 9.0,
}
"""CPU relative to tiny.en. Only tiny.en is measured; base ~3x and small ~9x are estimates
from the models' sizes (39 M, 74 M, 244 M parameters) and published relative speeds."""
SMART_CUT_CPU_PER_SEGMENT_SECOND = 0.1
"""Frame-accurate cut (re-encode of the GOP edges, copy between): measured on 2 cores,
to be re-measured with the final cutter."""
PARALLEL_EFFICIENCY = 0.75
"""Assumed share of the extra vCPUs a stage turns into speed (not measured above 2 cores)."""
TASK_STARTUP_SECONDS = 60.0
"""Assumed Fargate start: ENI, image pull (~1.5 GB image with the ASR model), container start;
billed (billing starts at the image pull)."""
S3_MEGABYTES_PER_SECOND = 100.0
"""Assumed S3 <-> Fargate throughput in one region."""


def cpu_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPU cores this process may use: those it may run on, lowered by a cgroup v2 CPU quota
    (``cpu.max``: a container's ``--cpus``, a task's CPU limit) rounded to the nearest core,
    at least 1. A container limited to 2 CPUs on a 64-core host sees 64 cores otherwise."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.floor(int(quota) / int(period) + 0.5))
    return max(1, cores)


class UnknownModelError(ValueError):
    """No CPU figure for an ASR model."""


@dataclass(frozen=True)
class Stage:
    """One stage of the model: where it runs, its CPU seconds and its wall seconds."""

    name: str
    task: str
    cpu_seconds: float
    wall_seconds: float


def wall_seconds(cpu_seconds: float, vcpu: float) -> float:
    """Wall seconds of ``cpu_seconds`` of work on ``vcpu`` (one vCPU is fully used)."""
    effective = 1 + (vcpu - 1) * PARALLEL_EFFICIENCY if vcpu > 1 else vcpu
    return cpu_seconds / effective


def asr_wall_seconds(cpu_seconds: float, vcpu: float) -> float:
    """Wall seconds of ASR: on the measured ``ASR_MEASURED_CORES`` as busy as measured,
    each further vCPU adding ``PARALLEL_EFFICIENCY`` of one."""
    if vcpu < ASR_MEASURED_CORES:
        return wall_seconds(cpu_seconds, vcpu)
    measured = ASR_MEASURED_CORES * ASR_BUSY_ON_MEASURED_CORES
    return cpu_seconds / (measured + (vcpu - ASR_MEASURED_CORES) * PARALLEL_EFFICIENCY)


def asr_cpu_per_second(model: str) -> float:
    """CPU seconds ``model`` spends per second of audio; :class:`UnknownModelError` when
    there is no figure for it."""
    if model not in ASR_MODEL_CPU_FACTOR:
        known = ", ".join(ASR_MODEL_CPU_FACTOR)
        raise UnknownModelError(f"no CPU figure for ASR model {model!r} (known: {known})")
    return ASR_CPU_PER_SECOND_TINY_EN * ASR_MODEL_CPU_FACTOR[model]


def parent_stages(
    *,
    vcpu: float,
    original_megabytes: float,
    audio_seconds: float,
    asr_model: str | None,
    segment_seconds: float,
    segment_megabytes: float,
) -> tuple[Stage, ...]:
    """One parent attempt on ``vcpu`` cores: start, download the original, transcribe its
    ``audio_seconds`` with ``asr_model`` (None: no transcription, the transcript is current
    or merged from windows), cut ``segment_seconds`` of segments and upload them."""
    cut_cpu = segment_seconds * SMART_CUT_CPU_PER_SEGMENT_SECOND
    transcribe: tuple[Stage, ...] = ()
    if asr_model is not None:
        asr_cpu = audio_seconds * asr_cpu_per_second(asr_model)
        transcribe = (
            Stage(f"transcribe ({asr_model})", "parent", asr_cpu, asr_wall_seconds(asr_cpu, vcpu)),
        )
    return (
        Stage("start", "parent", 0.0, TASK_STARTUP_SECONDS),
        Stage("download original", "parent", 0.0, original_megabytes / S3_MEGABYTES_PER_SECOND),
        *transcribe,
        Stage("smart cut", "parent", cut_cpu, wall_seconds(cut_cpu, vcpu)),
        Stage("upload segments", "parent", 0.0, segment_megabytes / S3_MEGABYTES_PER_SECOND),
    )
