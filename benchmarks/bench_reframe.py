"""Benchmark: reframe analysis time on 1920x1080 30 fps clips, face mode and speaker mode.

Usage: ``python benchmarks/bench_reframe.py OUT.json [--seconds 30]`` from the repository root.
The clips (libx264 veryfast, cached under ``.cache/bench/``): one real face photo wandering
over a drifting canvas (face mode), and a two-person conversation whose mouths open with
their voices (speaker mode, :mod:`tests.klipmedia.conversation` at twice its size).

Face mode: wall and CPU seconds of :func:`klipmedia.reframe.analyse`, the same per second of
video, the decode-only time of the same clip for scale, the wall time of rendering that
clip as a short and the analysis's share of it (target <= 15 %), and the face hit-rate
(samples with a detection within 3 % of the width of the true face centre).

Speaker mode: ``analyse(mouths=True)`` plus :func:`klipmedia.shots.plan_shots` against
rendering the clip (CPU seconds; target <= 15 %), split into stages (decode and scene
cuts, detection, tracking, landmarks/mouth, audio, planning: CPU seconds per video
second), medians of ``--runs`` interleaved analysis and render runs (the machine is
shared and noisy), with the share of speech frames framed on the speaker and the number
of cuts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from klipmedia import CropPath, render_short, window_size
from klipmedia.blazeface import BlazeFaceDetector
from klipmedia.landmarks import FaceMesh
from klipmedia.reframe import Analysis, ReframeSettings, analyse, plan_path
from klipmedia.shots import plan_shots
from klipmedia.tracking import FaceTracker
from tests.klipmedia import conversation
from tests.klipmedia.facegen import FACE_WIDTH, Placement, write_clip

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


def conversation_clip(seconds: int) -> tuple[Path, conversation.Conversation]:
    """Two people taking turns of about 2.5 s; the listener chews, laughs or nods."""
    turns = []
    start, voice = 0.3, "left"
    while start + 2.3 < seconds:
        turns.append(conversation.Turn(start, start + 2.3, voice))  # type: ignore[arg-type]
        start, voice = start + 2.6, "right" if voice == "left" else "left"
    kinds = ("chew", "laugh", "nod", "still")
    talk = conversation.Conversation(
        tuple(turns), float(seconds), lambda voice, t: kinds[int(t // 4) % len(kinds)]
    )
    path = Path(".cache/bench") / f"speaker-{SIZE[0]}x{SIZE[1]}-{FPS}-{seconds}s.mp4"
    if not path.exists():
        conversation.write_conversation(path, talk, zoom=SIZE[0] / 960, preset="veryfast")
    return path, talk


class _Timed:
    """Adds the CPU seconds of each call of ``method`` on ``owner`` to ``spent[name]``."""

    def __init__(self, owner: object, method: str, name: str, spent: dict[str, float]) -> None:
        self.owner, self.method, self.original = owner, method, getattr(owner, method)
        original = self.original

        def timed(*args: object, **kwargs: object) -> object:
            begin = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - begin

        setattr(owner, method, timed)

    def restore(self) -> None:
        setattr(self.owner, self.method, self.original)


def timed_speaker_analysis(path: Path) -> tuple[Analysis, float, float, dict[str, float]]:
    """``analyse(mouths=True)``: the analysis, wall and CPU seconds, CPU seconds per stage.

    Stages: detection (BlazeFace), landmarks (face mesh: crop and model, mouth openness),
    tracking (the tracker's own bookkeeping), audio (loudness and voice activity),
    decode (decoding, content crop and scene cuts: the rest).
    """
    import klipmedia.reframe as reframe_module

    spent: dict[str, float] = {}
    timers = [
        _Timed(BlazeFaceDetector, "detect", "detection", spent),
        _Timed(FaceMesh, "landmarks", "landmarks", spent),
        _Timed(FaceTracker, "update", "tracker", spent),
        _Timed(reframe_module, "_speech", "audio", spent),
    ]
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        analysis = analyse(path, mouths=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for timer in timers:
            timer.restore()
    tracker = spent.pop("tracker", 0.0)
    stages = {
        "decode": cpu - tracker - spent.get("audio", 0.0),
        "detection": spent.get("detection", 0.0),
        "tracking": tracker - spent.get("detection", 0.0) - spent.get("landmarks", 0.0),
        "landmarks": spent.get("landmarks", 0.0),
        "audio": spent.get("audio", 0.0),
    }
    return analysis, wall, cpu, stages


def speaker_result(seconds: int, runs: int) -> dict[str, object]:
    """Per-stage CPU time of speaker analysis and planning on the conversation clip, and
    its share of the render's CPU time: medians of ``runs`` interleaved runs."""
    path, talk = conversation_clip(seconds)
    rounds = []
    for _ in range(runs):
        analysis, wall, cpu, stages = timed_speaker_analysis(path)
        begin = time.process_time()
        crop, shots, _ = plan_shots(analysis, aspect=Fraction(9, 16))
        stages["planning"] = time.process_time() - begin
        cpu += stages["planning"]
        render, render_cpu = render_seconds(path, crop)
        rounds.append((wall, cpu, stages, render, render_cpu))
    median = statistics.median
    wall, cpu = median(r[0] for r in rounds), median(r[1] for r in rounds)
    render, render_cpu = median(r[3] for r in rounds), median(r[4] for r in rounds)
    stages = {k: median(r[2][k] for r in rounds) for k in rounds[0][2]}
    zoom = SIZE[0] / conversation.SIZE[0]
    window = window_size(*SIZE, Fraction(9, 16))[0]
    xs = {"left": conversation.LEFT_X * zoom, "right": conversation.RIGHT_X * zoom}
    spoken = [
        abs(xs[who] - crop.center_at(i / FPS) * SIZE[0]) <= (window - FACE_WIDTH * zoom) / 2
        for i in range(seconds * FPS)
        if (who := talk.speaker_at(i / FPS)) in xs
    ]
    meshed = sum(face.mouth is not None for s in analysis.samples for face in s.faces)
    return {
        "clip": {"width": SIZE[0], "height": SIZE[1], "fps": FPS, "seconds": seconds},
        "runs": runs,
        "analysis_wall_s": round(wall, 3),
        "analysis_cpu_s": round(cpu, 3),
        "analysis_cpu_s_per_video_s": round(cpu / seconds, 4),
        "stages_cpu_s_per_video_s": {k: round(v / seconds, 4) for k, v in stages.items()},
        "render_wall_s": round(render, 3),
        "render_cpu_s": round(render_cpu, 3),
        "analysis_share_of_render": round(wall / render, 4),
        "analysis_cpu_share_of_render_cpu": round(cpu / render_cpu, 4),
        "cpu_share_per_run": [round(r[1] / r[4], 4) for r in rounds],
        "target_cpu_share": 0.15,
        "samples": len(analysis.samples),
        "mouths_measured": meshed,
        "speech_frames_on_speaker": round(sum(spoken) / len(spoken), 4),
        "turns": len(talk.turns),
        "cuts": sum(a == b for a, b in zip(crop.times, crop.times[1:], strict=False)),
        "shots": len(shots),
    }


def decode_seconds(path: Path) -> float:
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - start


def render_seconds(path: Path, crop_path: CropPath) -> tuple[float, float]:
    """Wall and CPU seconds of rendering the same clip (full layout, default x264 settings)."""
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        render_short(path, Path(folder) / "short.mp4", layout="full", crop_path=crop_path)
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--seconds", type=int, default=30, help="clip length")
    parser.add_argument("--runs", type=int, default=3, help="interleaved speaker-mode runs")
    args = parser.parse_args()
    path = clip(args.seconds)
    settings = ReframeSettings()
    decode = decode_seconds(path)
    wall, cpu = time.perf_counter(), time.process_time()
    analysis = analyse(path, settings=settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    render, _ = render_seconds(path, plan_path(analysis, aspect=Fraction(9, 16), settings=settings))
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
        "speaker": speaker_result(args.seconds, args.runs),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
