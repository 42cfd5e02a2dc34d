"""The local engine sizes itself to the machine: render workers by cores and free memory,
and a video too big for the warehouse's disk is refused before any copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from klippers import local
from klippers.cli import cli
from klippers.contract import EXIT_BAD_INPUT
from klippers.local import RENDER_MEMORY_BYTES, available_memory, default_workers
from tests.support.talk import talk_video

GIB = 2**30


@pytest.mark.parametrize(
    ("cores", "memory", "workers"),
    [
        (8, None, 8),
        (8, 64 * GIB, 8),
        (8, 3 * RENDER_MEMORY_BYTES + 1, 3),
        (2, 100 * 2**20, 1),
        (0, None, 1),
    ],
)
def test_workers_default_to_cores_as_memory_allows(
    cores: int, memory: int | None, workers: int
) -> None:
    assert default_workers(cores, memory) == workers


def test_available_memory_takes_the_lower_of_the_kernel_and_the_container_limit(
    tmp_path: Path,
) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 16000000 kB\nMemAvailable:    8000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert available_memory(meminfo, cgroup) == 8_000_000 * 1024
    (cgroup / "memory.max").write_text("2147483648\n")
    (cgroup / "memory.current").write_text("1073741824\n")
    assert available_memory(meminfo, cgroup) == GIB
    (cgroup / "memory.max").write_text("max\n")
    assert available_memory(meminfo, cgroup) == 8_000_000 * 1024
    assert available_memory(tmp_path / "absent", tmp_path / "absent") is None


def test_klip_run_passes_the_memory_aware_default_to_the_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(local, "available_memory", lambda: 2 * RENDER_MEMORY_BYTES)
    monkeypatch.setattr(local.os, "cpu_count", lambda: 16)

    class Scheduler:
        def __init__(self, job: Any, workers: int, *args: Any) -> None:
            seen.update(workers=workers, threads=job.threads)

        def run(self) -> dict[int, Any]:
            return {}

    monkeypatch.setattr(local, "_Scheduler", Scheduler)
    options = local.RunOptions()
    local.render_children(Path("out"), local.VideoRef("u", "v"), [1, 2, 3, 4], options, None)  # type: ignore[arg-type]
    assert seen == {"workers": 2, "threads": local.encoder_threads(16, 2)}


def test_a_video_bigger_than_the_free_disk_is_refused_before_any_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(
        "klippers.jobs.runner.shutil.disk_usage",
        lambda path: real(path)._replace(free=1_000_000),
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(talk_video()), "--out", str(out)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "needs about" in result.output
    assert "--out" in result.output
    assert not [p for p in out.rglob("*") if p.is_file()]
