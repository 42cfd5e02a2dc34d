"""Rendering side by side: k shorts at once on N cores against the same k one after another.

Usage: python benchmarks/bench_workers.py OUT.json [--repeats 3] [--minutes 1]

A warehouse is prepared once (the length sweep's cached talk of ``--minutes``, one 25 s
segment per core, cut by the parent job). Then, for each k = 1..N, the first k shorts are
rendered by ``klippers.local.render_children`` three ways, interleaved over the repeats:
``workers=k`` (side by side); ``workers=1`` over the k shorts (one after another in one
worker process, each render with every core); and k single renders (one
``render_children`` call per short, each with its own worker process, as ``klip render``
runs one short). The shorts are removed before every run so that each one is rendered
again. Reported per k, as medians: wall time, CPU seconds of the worker processes, CPU
utilisation (CPU s / (wall x N)), and the side-by-side CPU seconds over those of the k
single renders and over those of the one-process sequence (which starts one worker, not
k: the difference is a worker's start-up, importing the media stack).

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

from benchmarks.bench_sweep import sweep_video  # noqa: E402
from benchmarks.events import QuietEvents  # noqa: E402
from klippers.contract import VideoRef  # noqa: E402
from klippers.jobs.parent import run_parent  # noqa: E402
from klippers.local import RunOptions, prepare_inputs, render_children  # noqa: E402
from klippers.storage import LocalStorage  # noqa: E402
from tests.support.whisper_models import ct2_tiny_en_path  # noqa: E402

REF = VideoRef("bench", "workers")
SHORT_SECONDS = 25.0
BUSY_TARGET = 0.90
CPU_RATIO_TARGET = 1.05


class _Quiet(QuietEvents):
    """Events that also stop the benchmark on a short that was not rendered again."""

    def short_finished(self, segment: int, reused: bool) -> None:
        if reused:
            raise SystemExit(f"short {segment} was reused, not rendered")


def prepare(out: Path, video: Path, shorts: int) -> list[int]:
    """Cut ``shorts`` segments of ``video`` into the warehouse ``out``; their numbers."""
    storage = LocalStorage(out)
    options = RunOptions(shorts=shorts, duration=SHORT_SECONDS)
    prepare_inputs(storage, REF, video, options)
    with tempfile.TemporaryDirectory(dir=out) as work:
        parent = run_parent(REF, storage, Path(work), asr_model=str(ct2_tiny_en_path()))
    return [entry["index"] for entry in parent.segments]


SIDE_BY_SIDE, ONE_PROCESS, SINGLES = "side_by_side", "one_after_another", "single_renders"


def render(out: Path, segments: list[int], way: str) -> dict[str, float]:
    """Render ``segments`` again ``way`` (:data:`SIDE_BY_SIDE`, :data:`ONE_PROCESS` or
    :data:`SINGLES`); wall and worker CPU seconds."""
    storage = LocalStorage(out)
    for n in segments:
        storage.delete(REF.short_video(n))
        storage.delete(REF.short_recipe(n))
    calls = {
        SIDE_BY_SIDE: [(segments, len(segments))],
        ONE_PROCESS: [(segments, 1)],
        SINGLES: [([n], 1) for n in segments],
    }[way]
    before = _children_cpu()
    start = time.perf_counter()
    for shorts, workers in calls:
        failed = render_children(out, REF, shorts, RunOptions(workers=workers), _Quiet())
        if failed:
            raise SystemExit(f"shorts failed during the benchmark: {failed}")
    return {"wall_s": time.perf_counter() - start, "cpu_s": _children_cpu() - before}


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (the workers and the manager)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _medians(runs: list[dict[str, float]], cores: int) -> dict[str, float]:
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    busy = statistics.median(r["cpu_s"] / (r["wall_s"] * cores) for r in runs)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cores_busy": round(busy, 3)}


def _ratio(runs: list[dict[str, float]], reference: list[dict[str, float]]) -> float:
    """Median of the per-repeat CPU-second ratios (interleaved runs paired)."""
    pairs = zip(runs, reference, strict=True)
    return round(statistics.median(a["cpu_s"] / b["cpu_s"] for a, b in pairs), 3)


def sweep(out: Path, segments: list[int], cores: int, repeats: int) -> dict[str, Any]:
    """The three ways of rendering k = 1..cores shorts, interleaved over the repeats."""
    runs: dict[tuple[int, str], list[dict[str, float]]] = {}
    for _ in range(repeats):
        for k in range(1, cores + 1):
            ways = (SIDE_BY_SIDE,) if k == 1 else (SIDE_BY_SIDE, ONE_PROCESS, SINGLES)
            for way in ways:
                runs.setdefault((k, way), []).append(render(out, segments[:k], way))
    report: dict[str, Any] = {}
    for k in range(1, cores + 1):
        together = runs[(k, SIDE_BY_SIDE)]
        singles = runs.get((k, SINGLES), together)
        ratio = _ratio(together, singles)
        side = _medians(together, cores)
        report[f"k={k}"] = {
            SIDE_BY_SIDE: side,
            ONE_PROCESS: _medians(runs.get((k, ONE_PROCESS), together), cores),
            SINGLES: _medians(singles, cores),
            "cpu_ratio_to_single_renders": ratio,
            "cpu_ratio_to_one_process": _ratio(together, runs.get((k, ONE_PROCESS), together)),
            "busy_target_met": side["cores_busy"] >= BUSY_TARGET,
            "cpu_target_met": ratio <= CPU_RATIO_TARGET,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("bench-results/workers.json"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=1.0)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    video = sweep_video(args.minutes)
    with tempfile.TemporaryDirectory(prefix="workers-") as folder:
        segments = prepare(Path(folder), video, cores)
        if len(segments) < cores:
            raise SystemExit(f"the talk gave {len(segments)} segments, not {cores}")
        results = sweep(Path(folder), segments, cores, args.repeats)
    report = {
        "video": f"{video.name}: {cores} shorts of ~{SHORT_SECONDS:g} s, 1080x1920",
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
