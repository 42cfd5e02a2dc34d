"""The cost and latency model behind ``klip cloud estimate`` (pure: no AWS calls)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from klippers.aws import TaskSize, TaskSizeError, smallest_size
from klippers.cli import cli
from klippers.cloud.cost import (
    FARGATE_GB_HOUR,
    FARGATE_VCPU_HOUR,
    LATENCY_HEADROOM,
    PARALLEL_EFFICIENCY,
    PRICES_TAKEN,
    SEED_DOLLARS,
    SEED_MINUTES,
    SEED_SIZE,
    STATE_TRANSITIONS_FIXED,
    STEP_FUNCTIONS_OVERHEAD_SECONDS,
    estimate,
    recommend,
    task_dollars,
)


def klip(*args: str) -> Result:
    return CliRunner().invoke(cli, ["cloud", *args])


def test_estimate_follows_the_model() -> None:
    size = TaskSize(4, 8)
    e = estimate(hours=1, shorts=5, parent=size, child=TaskSize(2, 4), asr_model="tiny.en")
    stages = {(s.task, s.name): s for s in e.stages}
    asr = stages[("parent", "transcribe (tiny.en)")]
    assert asr.cpu_seconds == pytest.approx(3600 * 0.036 * 2)
    assert asr.wall_seconds == pytest.approx(asr.cpu_seconds / (1 + 3 * PARALLEL_EFFICIENCY))
    assert stages[("parent", "smart cut")].cpu_seconds == pytest.approx(5 * 60 * 0.1)
    assert stages[("child", "render")].cpu_seconds == pytest.approx(60 * 1.1)
    assert stages[("child", "reframe analysis")].cpu_seconds == pytest.approx(60 * 0.11)
    assert e.wall_seconds == pytest.approx(
        STEP_FUNCTIONS_OVERHEAD_SECONDS + e.parent_seconds + e.child_seconds
    )
    per_task_hour = 4 * FARGATE_VCPU_HOUR + 8 * FARGATE_GB_HOUR
    parent_dollars = task_dollars(TaskSize(4, 8), e.parent_seconds)
    assert parent_dollars > per_task_hour * e.parent_seconds / 3600
    assert e.fargate_dollars == pytest.approx(
        parent_dollars + 5 * task_dollars(TaskSize(2, 4), e.child_seconds)
    )
    assert e.state_transitions == STATE_TRANSITIONS_FIXED + 5
    assert e.notes == ()
    base = estimate(hours=1, shorts=5, parent=size, child=TaskSize(2, 4))
    assert base.stages[2].cpu_seconds == pytest.approx(3 * asr.cpu_seconds)
    assert "estimate" in base.notes[0]


def test_doubling_shorts_doubles_child_cpu_and_adds_waves() -> None:
    sizes = {"parent": TaskSize(4, 8), "child": TaskSize(1, 3)}
    five = estimate(hours=1, shorts=5, **sizes)
    ten = estimate(hours=1, shorts=10, **sizes)
    assert ten.child_cpu_seconds == pytest.approx(2 * five.child_cpu_seconds)
    assert (five.waves, ten.waves) == (1, 1)
    serial = estimate(hours=1, shorts=10, max_concurrency=5, **sizes)
    assert serial.waves == 2
    assert serial.wall_seconds == pytest.approx(ten.wall_seconds + ten.child_seconds)


def test_one_hour_default_meets_the_targets_and_beats_the_seed() -> None:
    e = estimate(hours=1, shorts=5)
    assert e.wall_minutes <= 8 * LATENCY_HEADROOM
    assert e.total_dollars <= 0.35
    assert e.meets_targets
    seed_sized = estimate(hours=1, shorts=5, parent=SEED_SIZE, child=SEED_SIZE)
    assert seed_sized.total_dollars > e.total_dollars
    assert e.total_dollars < SEED_DOLLARS / 10
    assert e.wall_minutes < SEED_MINUTES / 3


def test_estimate_reports_a_missed_target() -> None:
    slow = estimate(
        hours=1,
        shorts=50,
        parent=TaskSize(1, 4),
        child=TaskSize(1, 3),
        max_concurrency=1,
    )
    assert not slow.meets_targets
    result = klip(
        "estimate",
        "--hours",
        "1",
        "--shorts",
        "50",
        "--parent-vcpu",
        "1",
        "--child-vcpu",
        "1",
        "--max-concurrency",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "MISSES" in result.output


def test_fargate_sizes_are_validated_and_billed_for_at_least_a_minute() -> None:
    with pytest.raises(TaskSizeError, match="cannot have 200 GB"):
        smallest_size(16, 200)
    with pytest.raises(TaskSizeError, match="vCPU must be one of"):
        TaskSize(3, 8)
    with pytest.raises(TaskSizeError, match="16 vCPU takes 32 to 120 GB"):
        TaskSize(16, 4)
    with pytest.raises(TaskSizeError, match=r"0\.25 vCPU takes 0\.5 to 2 GB"):
        TaskSize(0.25, 1.5)  # Fargate offers 0.5, 1 and 2 GB only
    assert smallest_size(0.25, 1.2) == TaskSize(0.25, 2)
    assert smallest_size(2, 4.5) == TaskSize(2, 5)
    assert smallest_size(8, 3) == TaskSize(8, 16)
    size = TaskSize(1, 2)
    assert task_dollars(size, 5) == pytest.approx(task_dollars(size, 60))
    assert task_dollars(size, 120) == pytest.approx(2 * task_dollars(size, 60))
    assert (size.cpu_units, size.memory_mib) == (1024, 2048)


def test_estimate_cli_prints_the_table_and_recommends_sizes() -> None:
    result = klip("estimate", "--hours", "1", "--shorts", "5")
    assert result.exit_code == 0, result.output
    best = recommend(hours=1, shorts=5)
    assert "transcribe (base)" in result.output
    assert "meets" in result.output
    assert f"parentCpu {best.parent.cpu_units} parentMemory {best.parent.memory_mib}" in (
        result.output
    )
    assert "seed pipeline (reported)" in result.output
    assert PRICES_TAKEN in result.output
    bad = klip("estimate", "--hours", "1", "--parent-vcpu", "3")
    assert bad.exit_code == 2
    assert "vCPU must be one of" in bad.output
    too_long = klip("estimate", "--hours", "0")
    assert too_long.exit_code == 2
