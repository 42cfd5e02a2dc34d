"""Benchmark: face-following reframe analysis time on a 1920x1080 30 fps clip.

Usage: ``python benchmarks/bench_reframe.py OUT.json [--seconds 30]`` from the repository root.
The clip (a real face photo wandering over a drifting canvas, libx264 veryfast) is cached
under ``.cache/bench/``. Writes wall and CPU seconds of :func:`klipmedia.reframe.analyse`,
the same per second of video, the decode-only time of the same clip for scale, the wall time
of rendering that clip as a short and the analysis's share of it (target <= 15 %), and the
face hit-rate (samples with a detection within 3 % of the width of the true face centre).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from klipmedia import CropPath, render_short
from klipmedia.reframe import ReframeSettings, analyse, plan_path
from tests.klipmedia.facegen import Placement, write_clip

SIZE = (1920, 1080)
FPS = 30


def face_x(t: float) -> float:
    """The face wanders between 25 % and 75 % of the width, once every 12 s."""
    return SIZE[0] * (0.5 + 0.25 * math.sin(2 * math.pi * t / 12))


def clip(seconds: int) -> Path:
    path = Path(".cache/bench") / f"reframe-{SIZE[0]}x{SIZE[1]}-{FPS}-{seconds}s.mp4"
    if not path.exists():
        write_clip(
            path,
            layout=lambda t: [Placement(face_x(t), 500, 1.5)],
            duration=seconds,
            size=SIZE,
            fps=FPS,
            drift=0.5,
            preset="veryfast",
        )
    return path


def decode_seconds(path: Path) -> float:
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - start


def render_seconds(path: Path, crop_path: CropPath) -> float:
    """Wall time of rendering the same clip (full layout, default x264 settings)."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        render_short(path, Path(folder) / "short.mp4", layout="full", crop_path=crop_path)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--seconds", type=int, default=30, help="clip length")
    args = parser.parse_args()
    path = clip(args.seconds)
    settings = ReframeSettings()
    decode = decode_seconds(path)
    wall, cpu = time.perf_counter(), time.process_time()
    analysis = analyse(path, settings=settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    render = render_seconds(path, plan_path(analysis, aspect=Fraction(9, 16), settings=settings))
    hits = sum(
        any(abs(face.center_x - face_x(s.time)) < 0.03 * SIZE[0] for face in s.faces)
        for s in analysis.samples
    )
    result = {
        "benchmark": "reframe_analysis",
        "clip": {"width": SIZE[0], "height": SIZE[1], "fps": FPS, "seconds": args.seconds},
        "settings": {"sample_fps": settings.sample_fps, "rescan": settings.rescan},
        "analysis_wall_s": round(wall, 3),
        "analysis_cpu_s": round(cpu, 3),
        "analysis_wall_s_per_video_s": round(wall / args.seconds, 4),
        "full_decode_wall_s": round(decode, 3),
        "render_wall_s": round(render, 3),
        "analysis_share_of_render": round(wall / render, 4),
        "samples": len(analysis.samples),
        "face_hit_rate": round(hits / len(analysis.samples), 4),
        "cuts": len(analysis.cuts),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
