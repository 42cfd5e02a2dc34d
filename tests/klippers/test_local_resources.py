"""The local engine sizes itself to the machine: render workers by cores and free memory,
and a video too big for the warehouse's disk is refused before any copy."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from klippers import local, workload
from klippers.cli import cli
from klippers.contract import EXIT_BAD_INPUT
from klippers.local import RENDER_MEMORY_BYTES, available_memory, default_workers
from tests.support.talk import talk_video
from tests.support.whisper_models import ct2_tiny_en_path

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
    monkeypatch.setattr(local, "cpu_cores", lambda: 16)

    class Scheduler:
        def __init__(self, job: Any, workers: int, *args: Any) -> None:
            seen.update(workers=workers, threads=job.threads)

        def run(self) -> dict[int, Any]:
            return {}

    monkeypatch.setattr(local, "_Scheduler", Scheduler)
    options = local.RunOptions()
    local.render_children(Path("out"), local.VideoRef("u", "v"), [1, 2, 3, 4], options, None)  # type: ignore[arg-type]
    assert seen == {"workers": 2, "threads": local.encoder_threads(16, 2)}


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [
        (None, 2),  # no cgroup limit readable
        ("max 100000\n", 2),
        ("50000 100000\n", 1),  # half a CPU still gets one
        ("150000 100000\n", 2),
        ("400000 100000\n", 2),  # a quota above the cores the process may run on
        ("garbage", 2),
    ],
)
def test_cores_follow_a_container_cpu_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str | None, cores: int
) -> None:
    """``docker run --cpus 1`` on a big host: the renders and the ASR size themselves to the
    quota, not to the host's cores."""
    monkeypatch.setattr(workload.os, "sched_getaffinity", lambda pid: {0, 1})
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max)
    assert workload.cpu_cores(tmp_path) == cores


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


_FRAGMENTED_HEAP = """
import sys
from klippers.local import release_freed_memory

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

chunks = [bytearray(64 * 1024) for _ in range(3000)]  # ~190 MB of heap, not mmapped
keep = chunks[-1]  # pins the top of the heap: glibc does not shrink it on free
del chunks
before = anon_kib()
released = release_freed_memory()
print(released, before, anon_kib())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_memory_freed_before_the_renders_goes_back_to_the_system() -> None:
    """What glibc keeps of a freed heap (the parent's ASR buffers) is returned, so render
    workers can use it; ``run_local`` calls this between the parent and the renders."""
    done = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    )
    released, before, after = done.stdout.split()
    assert released == "True"
    assert int(before) - int(after) > 100_000, (before, after)


def test_run_local_releases_memory_between_the_parent_and_the_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(local, "run_parent", _recording(local.run_parent, "parent", calls))
    monkeypatch.setattr(local, "release_freed_memory", lambda: calls.append("release"))
    monkeypatch.setattr(local, "render_children", lambda *a: calls.append("render") or {})
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))

    events = _NoEvents()
    with caplog.at_level(logging.INFO, logger="klippers.jobs.parent"):
        local.run_local(talk_video(), tmp_path, local.RunOptions(shorts=1), events)

    assert calls == ["parent", "release", "render"]
    assert len(events.progress) >= 2, "the transcription's progress reaches the display"
    assert events.progress[-1][0] == pytest.approx(events.progress[-1][1])
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("transcribed ")]
    assert len(logged) == len(events.progress), "each step is in the job's log (the cloud's view)"


def _recording(function: Any, name: str, calls: list[str]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        calls.append(name)
        return result

    return wrapper


class _NoEvents:
    def __init__(self) -> None:
        self.progress: list[tuple[float, float]] = []

    def stage(self, name: str) -> None:
        pass

    def stage_progress(self, done: float, total: float) -> None:
        self.progress.append((done, total))

    def shorts_planned(self, count: int) -> None:
        pass
