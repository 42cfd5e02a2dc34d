"""The cost and latency model behind ``klip cloud estimate`` (pure: no AWS calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from klippers.aws import (
    RECOMMENDED_CHILD_SIZE,
    RECOMMENDED_PARENT_SIZE,
    SIZE_PROFILES,
    TaskSize,
    TaskSizeError,
    smallest_size,
)
from klippers.cli import cli
from klippers.cloud.clients import CloudInputError
from klippers.cloud.cost import (
    CHILD_STORAGE_GB,
    FARGATE_GB_HOUR,
    FARGATE_SPOT_DISCOUNT,
    FARGATE_STORAGE_GB_HOUR,
    FARGATE_VCPU_HOUR,
    FARGATE_VCPU_QUOTA,
    LATENCY_HEADROOM,
    PARENT_STORAGE_GB,
    PRICES_TAKEN,
    PUBLIC_IPV4_HOUR,
    SEED_DOLLARS,
    SEED_MINUTES,
    SEED_SIZE,
    STATE_TRANSITIONS_FIXED,
    STATE_TRANSITIONS_PER_SHORT,
    STEP_FUNCTIONS_OVERHEAD_SECONDS,
    estimate,
    recommend,
    task_dollars,
)
from klippers.workload import (
    ASR_BUSY_ON_MEASURED_CORES,
    ASR_CPU_PER_SECOND_TINY_EN,
    ASR_MEASURED_CORES,
    PARALLEL_EFFICIENCY,
)

ASR_ON_MEASURED_CORES = ASR_MEASURED_CORES * ASR_BUSY_ON_MEASURED_CORES


def klip(*args: str) -> Result:
    return CliRunner().invoke(cli, ["cloud", *args])


def test_estimate_follows_the_model() -> None:
    size = TaskSize(4, 8)
    e = estimate(hours=1, shorts=5, parent=size, child=TaskSize(2, 4), asr_model="tiny.en")
    stages = {(s.task, s.name): s for s in e.stages}
    asr = stages[("parent", "transcribe (tiny.en)")]
    assert asr.cpu_seconds == pytest.approx(3600 * ASR_CPU_PER_SECOND_TINY_EN)
    assert asr.wall_seconds == pytest.approx(
        asr.cpu_seconds / (ASR_ON_MEASURED_CORES + 2 * PARALLEL_EFFICIENCY)
    )
    assert stages[("parent", "smart cut")].cpu_seconds == pytest.approx(5 * 60 * 0.1)
    assert stages[("child", "render")].cpu_seconds == pytest.approx(60 * 1.1)
    assert stages[("child", "reframe analysis")].cpu_seconds == pytest.approx(60 * 0.11)
    assert e.wall_seconds == pytest.approx(
        STEP_FUNCTIONS_OVERHEAD_SECONDS + e.parent_seconds + e.child_seconds
    )
    per_task_hour = 4 * FARGATE_VCPU_HOUR + 8 * FARGATE_GB_HOUR
    parent_dollars = task_dollars(TaskSize(4, 8), e.parent_seconds, PARENT_STORAGE_GB)
    assert parent_dollars > per_task_hour * e.parent_seconds / 3600
    assert e.fargate_dollars == pytest.approx(
        parent_dollars + 5 * task_dollars(TaskSize(2, 4), e.child_seconds, CHILD_STORAGE_GB)
    )
    assert (PARENT_STORAGE_GB, CHILD_STORAGE_GB) == (100, 21)
    assert e.state_transitions == STATE_TRANSITIONS_FIXED + STATE_TRANSITIONS_PER_SHORT * 5
    assert e.notes == ()
    base = estimate(hours=1, shorts=5, parent=size, child=TaskSize(2, 4))
    assert base.stages[2].cpu_seconds == pytest.approx(3 * asr.cpu_seconds)
    assert "estimate" in base.notes[0]


def test_doubling_shorts_doubles_child_cpu_and_adds_waves() -> None:
    sizes: dict[str, Any] = {"parent": TaskSize(4, 8), "child": TaskSize(1, 3)}
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
    chosen = estimate(hours=1, shorts=5)
    assert (
        f"children: ${chosen.child_dollars:.3f} on demand, "
        f"${chosen.child_spot_dollars:.3f} on Fargate Spot"
    ) in result.output
    assert chosen.child_spot_dollars < chosen.child_dollars
    bad = klip("estimate", "--hours", "1", "--parent-vcpu", "3")
    assert bad.exit_code == 2
    assert "vCPU must be one of" in bad.output
    too_long = klip("estimate", "--hours", "0")
    assert too_long.exit_code == 2


# --- golden values: the defaults and the README's table -----------------------------------

README = Path(__file__).resolve().parents[3] / "README.md"
GOLDEN = {
    "recommended": (TaskSize(16, 32), TaskSize(2, 4), 5.7, 0.067),
    "seed sizes": (SEED_SIZE, SEED_SIZE, 5.1, 0.149),
}
"""1-hour video, 5 shorts of 60 s, ASR base: (parent, child, minutes, dollars)."""


def _readme_rows() -> dict[str, tuple[str, str, str]]:
    """The README's cost table: label -> (sizes, minutes, dollars)."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| sizes (parent / child) |") :].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        sizes, minutes, dollars = (cell.strip() for cell in line.strip("|").split("|"))
        label, _, described = sizes.partition(":")
        rows[label] = (described.strip(), minutes, dollars)
    return rows


def _described(parent: TaskSize, child: TaskSize) -> str:
    if parent == child:
        return f"{parent.vcpu:g} vCPU / {parent.memory_gb:g} GB each"
    return (
        f"{parent.vcpu:g} vCPU / {parent.memory_gb:g} GB, {child.vcpu:g} vCPU / "
        f"{child.memory_gb:g} GB"
    )


@pytest.mark.parametrize("label", sorted(GOLDEN))
def test_the_model_gives_the_pinned_figures_and_the_readme_shows_them(label: str) -> None:
    parent, child, minutes, dollars = GOLDEN[label]
    e = estimate(hours=1, shorts=5, parent=parent, child=child)
    assert (round(e.wall_minutes, 1), round(e.total_dollars, 3)) == (minutes, dollars)
    assert _readme_rows()[label] == (_described(parent, child), f"{minutes}", f"{dollars}")


def test_the_default_task_sizes_are_the_models_recommendation() -> None:
    best = recommend(hours=1, shorts=5, short_seconds=60, max_concurrency=10, asr_model="base")
    assert (best.parent, best.child) == (RECOMMENDED_PARENT_SIZE, RECOMMENDED_CHILD_SIZE)
    assert (best.parent, best.child) == GOLDEN["recommended"][:2]
    assert SIZE_PROFILES["recommended"] == (best.parent, best.child)
    assert SIZE_PROFILES["seed"] == (SEED_SIZE, SEED_SIZE) == (TaskSize(16, 64), TaskSize(16, 64))
    readme = README.read_text(encoding="utf-8")
    units = (
        f"`pulumi config set klippers:parentCpu {best.parent.cpu_units}`, "
        f"`parentMemory {best.parent.memory_mib}`, `childCpu {best.child.cpu_units}`, "
        f"`childMemory {best.child.memory_mib}`"
    )
    assert units in " ".join(readme.split())


def test_peak_vcpu_is_what_the_fargate_quota_must_hold() -> None:
    e = estimate(hours=1, shorts=5, parent=TaskSize(8, 16), child=TaskSize(2, 4))
    assert e.peak_vcpu == 10  # five children of 2 vCPU outweigh the 8-vCPU parent
    capped = estimate(
        hours=1, shorts=50, parent=TaskSize(8, 16), child=TaskSize(1, 3), max_concurrency=10
    )
    assert capped.peak_vcpu == 10
    assert estimate(hours=1, shorts=1, parent=TaskSize(8, 16), child=TaskSize(1, 3)).peak_vcpu == 8
    result = klip("estimate", "--hours", "1", "--shorts", "5")
    assert f"up to 16 per running video (service quota '{FARGATE_VCPU_QUOTA}')" in result.output
    readme = " ".join(README.read_text(encoding="utf-8").split())
    assert FARGATE_VCPU_QUOTA in readme


# --- Fargate Spot children (childCapacity spot) ----------------------------------------------


def test_spot_children_cost_the_discounted_vcpu_and_memory_and_the_same_ip() -> None:
    assert FARGATE_SPOT_DISCOUNT == 0.70
    child = TaskSize(2, 4)
    e = estimate(hours=1, shorts=5, parent=TaskSize(4, 8), child=child)
    hours = e.child_seconds / 3600
    compute = 2 * FARGATE_VCPU_HOUR + 4 * FARGATE_GB_HOUR
    fixed = (CHILD_STORAGE_GB - 20) * FARGATE_STORAGE_GB_HOUR + PUBLIC_IPV4_HOUR
    assert e.child_dollars == pytest.approx(5 * hours * (compute + fixed))
    assert e.child_spot_dollars == pytest.approx(5 * hours * (0.3 * compute + fixed))
    assert task_dollars(child, 5, spot=True) == pytest.approx(task_dollars(child, 60, spot=True))
    parent = task_dollars(TaskSize(4, 8), e.parent_seconds, PARENT_STORAGE_GB)
    assert e.fargate_dollars == pytest.approx(parent + e.child_dollars)  # on demand by default


def test_spot_saves_most_of_the_childrens_cost_of_the_default_estimate() -> None:
    e = estimate(hours=1, shorts=5)
    assert 0.55 * e.child_dollars < e.child_dollars - e.child_spot_dollars < 0.7 * e.child_dollars
    seed = estimate(hours=1, shorts=5, parent=SEED_SIZE, child=SEED_SIZE)
    assert seed.child_spot_dollars == pytest.approx(0.3 * seed.child_dollars, rel=0.05)


# --- sharded transcription --------------------------------------------------------------------


def test_sharded_estimate_adds_plan_and_shard_tasks_and_frees_the_parent() -> None:
    from klippers.aws import SHARD_SIZE
    from klippers.cloud.cost import STATE_TRANSITIONS_PER_SHARD, STATE_TRANSITIONS_SHARDED_FIXED
    from klippers.contract import SHARD_OVERLAP_SECONDS
    from klippers.workload import TASK_STARTUP_SECONDS

    single = estimate(hours=2, shorts=5, asr_model="tiny.en")
    sharded = estimate(hours=2, shorts=5, asr_model="tiny.en", shards=4, child=single.child)

    stages = {(s.task, s.name): s for s in sharded.stages}
    asr = stages[("shard", "transcribe (tiny.en)")]
    audio = 1800 + 2 * SHARD_OVERLAP_SECONDS
    assert asr.cpu_seconds == pytest.approx(audio * ASR_CPU_PER_SECOND_TINY_EN)
    assert asr.wall_seconds == pytest.approx(asr.cpu_seconds / ASR_ON_MEASURED_CORES)
    assert ("parent", "transcribe (tiny.en)") not in stages
    assert sharded.parent == smallest_size(2, 4)
    assert sharded.plan_seconds >= TASK_STARTUP_SECONDS
    assert sharded.wall_seconds == pytest.approx(
        STEP_FUNCTIONS_OVERHEAD_SECONDS
        + sharded.plan_seconds
        + sharded.shard_seconds
        + sharded.parent_seconds
        + sharded.child_seconds
    )
    expected = (
        task_dollars(sharded.parent, sharded.parent_seconds, PARENT_STORAGE_GB)
        + 5 * task_dollars(single.child, sharded.child_seconds, CHILD_STORAGE_GB)
        + task_dollars(SHARD_SIZE, sharded.plan_seconds, PARENT_STORAGE_GB)
        + 4 * task_dollars(SHARD_SIZE, sharded.shard_seconds, PARENT_STORAGE_GB)
    )
    assert sharded.fargate_dollars == pytest.approx(expected)
    assert sharded.state_transitions == single.state_transitions + (
        STATE_TRANSITIONS_SHARDED_FIXED + 4 * STATE_TRANSITIONS_PER_SHARD
    )
    assert sharded.peak_vcpu == max(4 * SHARD_SIZE.vcpu, 5 * single.child.vcpu)


def test_more_windows_than_the_concurrency_run_in_waves() -> None:
    e = estimate(hours=3, shorts=1, shards=6, max_concurrency=4)
    assert e.shard_waves == 2
    assert e.wall_seconds == pytest.approx(
        STEP_FUNCTIONS_OVERHEAD_SECONDS
        + e.plan_seconds
        + 2 * e.shard_seconds
        + e.parent_seconds
        + e.child_seconds
    )


def test_sharding_pays_only_for_long_videos() -> None:
    """Two more task starts and downloads: a loss at 1 h, a clear win at 3 h (base)."""
    from klippers.cloud.cost import best_shards

    one_hour = best_shards(hours=1, shorts=5)
    assert one_hour.wall_seconds > estimate(hours=1, shorts=5).wall_seconds
    three_hours = best_shards(hours=3, shorts=5)
    assert three_hours.wall_minutes < 0.75 * estimate(hours=3, shorts=5).wall_minutes
    with pytest.raises(CloudInputError, match="shards must be"):
        estimate(hours=1, shorts=5, shards=0)


def test_estimate_command_compares_single_pass_and_sharded() -> None:
    result = klip("estimate", "--hours", "3", "--shorts", "5")
    assert result.exit_code == 0, result.output
    assert "single pass" in result.output
    assert "sharded, plan: 10" in result.output
    assert "recommended for 3 h: 10 window(s), stack config shardTranscription true" in (
        result.output
    )
    one = klip("estimate", "--hours", "1", "--shorts", "5")
    assert "recommended for 1 h: 1 window(s), stack config shardTranscription off" in one.output
