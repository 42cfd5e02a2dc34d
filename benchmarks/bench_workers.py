"""Rendering side by side: k shorts at once on N cores against the same k one after another.

Usage: python benchmarks/bench_workers.py OUT.json [--repeats 3]

A warehouse is prepared once (the cached demo talk, one 15 s segment per core, cut by the
parent job). Then, for each k = 1..N, the first k shorts are rendered by
``klippers.local.render_children`` with ``workers=k`` (side by side) and with
``workers=1`` (one after another, each render with every core, as a single render runs),
interleaved over the repeats; the shorts are removed before every run so that each one
is rendered again. Reported per k, as medians: wall time, CPU seconds of the worker
processes, CPU utilisation (CPU s / (wall x N)) and the side-by-side CPU seconds over the
one-after-another CPU seconds of the same k shorts.

Targets (issue #17): side by side, the cores are >= 90 % busy and the CPU seconds are
<= 1.05x those of the k single renders.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from klippers.contract import VideoRef  # noqa: E402
from klippers.jobs.parent import run_parent  # noqa: E402
from klippers.local import RunOptions, prepare_inputs, render_children  # noqa: E402
from klippers.storage import LocalStorage  # noqa: E402
from tests.support.talk import talk_video  # noqa: E402
from tests.support.whisper_models import ct2_tiny_en_path  # noqa: E402

REF = VideoRef("bench", "workers")
SHORT_SECONDS = 15.0
BUSY_TARGET = 0.90
CPU_RATIO_TARGET = 1.05


class _Quiet:
    """Events that ignore progress and stop the benchmark on a failed short."""

    def stage(self, name: str) -> None:
        pass

    def shorts_planned(self, count: int) -> None:
        pass

    def short_progress(self, segment: int, done: int, total: int) -> None:
        pass

    def short_finished(self, segment: int, reused: bool) -> None:
        if reused:
            raise SystemExit(f"short {segment} was reused, not rendered")

    def short_retrying(self, segment: int, error: str, delay: float) -> None:
        raise SystemExit(f"short {segment} failed during the benchmark: {error}")


def prepare(out: Path, shorts: int) -> list[int]:
    """Cut ``shorts`` segments of the demo talk into the warehouse ``out``; their numbers."""
    storage = LocalStorage(out)
    options = RunOptions(shorts=shorts, duration=SHORT_SECONDS)
    prepare_inputs(storage, REF, talk_video(), options)
    with tempfile.TemporaryDirectory(dir=out) as work:
        parent = run_parent(REF, storage, Path(work), asr_model=str(ct2_tiny_en_path()))
    return [entry["index"] for entry in parent.segments]


def render(out: Path, segments: list[int], workers: int) -> dict[str, float]:
    """Render ``segments`` again, ``workers`` at a time; wall and worker CPU seconds."""
    storage = LocalStorage(out)
    for n in segments:
        storage.delete(REF.short_video(n))
        storage.delete(REF.short_recipe(n))
    before = _children_cpu()
    start = time.perf_counter()
    failed = render_children(out, REF, segments, RunOptions(workers=workers), _Quiet())
    wall = time.perf_counter() - start
    if failed:
        raise SystemExit(f"shorts failed during the benchmark: {failed}")
    return {"wall_s": wall, "cpu_s": _children_cpu() - before}


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (the workers and the manager)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _medians(runs: list[dict[str, float]], cores: int) -> dict[str, float]:
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    busy = statistics.median(r["cpu_s"] / (r["wall_s"] * cores) for r in runs)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cores_busy": round(busy, 3)}


def sweep(out: Path, segments: list[int], cores: int, repeats: int) -> dict[str, Any]:
    """Side-by-side and one-after-another runs of k = 1..cores shorts, interleaved."""
    runs: dict[tuple[int, int], list[dict[str, float]]] = {}
    for _ in range(repeats):
        for k in range(1, cores + 1):
            for workers in sorted({1, k}, reverse=True):
                runs.setdefault((k, workers), []).append(render(out, segments[:k], workers))
    report: dict[str, Any] = {}
    for k in range(1, cores + 1):
        together, alone = runs[(k, k)], runs[(k, 1)]
        ratios = [a["cpu_s"] / b["cpu_s"] for a, b in zip(together, alone, strict=True)]
        ratio = statistics.median(ratios)
        side = _medians(together, cores)
        report[f"k={k}"] = {
            "side_by_side": side,
            "one_after_another": _medians(alone, cores),
            "cpu_ratio_to_single_renders": round(ratio, 3),
            "busy_target_met": side["cores_busy"] >= BUSY_TARGET,
            "cpu_target_met": ratio <= CPU_RATIO_TARGET,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("bench-results/workers.json"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="workers-") as folder:
        segments = prepare(Path(folder), cores)
        if len(segments) < cores:
            raise SystemExit(f"the talk gave {len(segments)} segments, not {cores}")
        results = sweep(Path(folder), segments, cores, args.repeats)
    report = {
        "video": f"{talk_video().name}: {cores} shorts of ~{SHORT_SECONDS:g} s, 1080x1920",
        "cpus": cores,
        "repeats": args.repeats,
        "load_average_after": os.getloadavg(),
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
