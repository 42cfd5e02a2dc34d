"""Benchmark: frame-accurate cuts of a 1080p source, and highlight scoring of a long talk.

Usage: ``python benchmarks/bench_cut.py OUT.json [--source-seconds 150] [--gop 60] [--repeats 3]``

Figures (JSON): for the smart cut and the range re-encode, each cut's wall and CPU time
(this process's threads plus any children) per run, their medians, and the speed as a
multiple of real time (segment seconds per wall second, and per CPU second: on 2 idle
cores the wall time can approach half the CPU time); the 1-minute load average before
each run, since the machine may be shared; loudness extraction speed; the highlight
scorer's wall time on a synthetic 3-hour transcript. The generated source is cached
under ``.cache/bench-cut/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np

from klipmedia.cut import CutSettings, cut_segment
from klippers.asr.loudness import loudness_of_samples
from klippers.asr.transcribe import SAMPLE_RATE, decode_audio
from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.selection.highlights import select_highlights

CACHE = Path(".cache/bench-cut")
WIDTH, HEIGHT, FPS, RATE = 1920, 1080, 30, 48_000
MOTION = 64


def make_source(seconds: int, gop: int) -> Path:
    """1080p30 H.264 (B-frames, closed GOPs of ``gop``) + AAC stereo of a moving block texture."""
    path = CACHE / f"source_1080p_{seconds}s_gop{gop}.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, cols = HEIGHT * 3 // 2 + 2 * MOTION, WIDTH + 2 * MOTION
    blocks = rng.integers(40, 210, (rows // 40 + 1, cols // 40 + 1)).astype(np.float64)
    texture = np.kron(blocks, np.ones((40, 40)))[:rows, :cols]
    for shift in (8, 4, 2):  # soften the block edges into gradients
        texture = (texture + np.roll(texture, shift, 0) + np.roll(texture, shift, 1)) / 3
    texture = np.clip(texture, 16, 235).astype(np.uint8)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {
            "preset": "veryfast",
            "crf": "23",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        t = np.arange(RATE) / RATE
        for second in range(seconds):
            for k in range(FPS):
                shift = 2 * ((second * FPS + k) % MOTION)
                planes = texture[shift : shift + HEIGHT * 3 // 2, shift : shift + WIDTH]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(planes), format="yuv420p")
                frame.pts, frame.time_base = second * FPS + k, Fraction(1, FPS)
                out.mux(video.encode(frame))
            tone = (0.2 + 0.15 * np.sin(second)) * np.sin(2 * np.pi * (200 + 20 * second) * t)
            stereo = np.tile(tone.astype(np.float32), (2, 1))
            for first in range(0, RATE, 1024):
                sound = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(stereo[:, first : first + 1024]),
                    format="fltp",
                    layout="stereo",
                )
                sound.sample_rate = RATE
                sound.pts, sound.time_base = second * RATE + first, Fraction(1, RATE)
                out.mux(audio.encode(sound))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    os.replace(partial, path)
    return path


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(run: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Call ``run``; return its result and the wall/CPU seconds and load average it met."""
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = run()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return result, {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load_1min": load}


def bench_cuts(
    source: Path, segment: float, starts: list[float], smart: bool, repeats: int
) -> list[dict[str, Any]]:
    rows = []
    for start in starts:
        output = CACHE / f"cut_{'smart' if smart else 'reencode'}_{start:.2f}.mp4"
        runs = []
        for _ in range(repeats):
            cut = partial(
                cut_segment,
                source,
                start,
                start + segment,
                output,
                settings=CutSettings(smart=smart),
            )
            result, figures = timed(cut)
            output.unlink()
            runs.append(figures)
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        rows.append(
            {
                "start": start,
                "duration": round(result.duration, 3),
                "method": result.method,
                "audio": result.audio,
                "frames": result.frames,
                "reencoded_frames": result.reencoded_frames,
                "runs": runs,
                "wall_s": wall,
                "cpu_s": cpu,
                "x_realtime": round(result.duration / wall, 1),
                "x_realtime_best": round(result.duration / min(r["wall_s"] for r in runs), 1),
                "x_realtime_per_cpu_s": round(result.duration / cpu, 1),
            }
        )
    return rows


def long_transcript(hours: float) -> Transcript:
    """Random sentences of a small vocabulary, 2.7 words/s, until ``hours`` of speech."""
    rng = random.Random(0)
    vocabulary = [f"word{i}" for i in range(3000)] + ["and", "the", "so", "but", "this"]
    sentences = []
    t = 0.0
    while t < hours * 3600:
        words = []
        for _ in range(rng.randint(5, 25)):
            words.append(Word(round(t, 3), round(t + 0.3, 3), rng.choice(vocabulary)))
            t += 0.37
        text = " ".join(w.text for w in words) + rng.choice([".", "?", "!", ","])
        sentences.append(Sentence(words[0].start, words[-1].end, text, tuple(words)))
        t += rng.uniform(0.2, 1.0)
    return Transcript("en", t, tuple(sentences))


def bench_scorer(hours: float, source_loudness: np.ndarray) -> dict[str, Any]:
    transcript = long_transcript(hours)
    loudness = np.resize(source_loudness, int(transcript.duration) + 1)
    began = time.perf_counter()
    result = select_highlights(transcript, count=10, target_duration=60, loudness=loudness)
    wall = time.perf_counter() - began
    return {
        "transcript_hours": round(transcript.duration / 3600, 2),
        "sentences": len(transcript.sentences),
        "words": sum(len(s.words) for s in transcript.sentences),
        "segments": len(result.highlights),
        "wall_s": round(wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the JSON figures")
    parser.add_argument("--source-seconds", type=int, default=150)
    parser.add_argument("--gop", type=int, default=60)
    parser.add_argument("--segment", type=float, default=60.0)
    parser.add_argument("--reencode-segment", type=float, default=10.0)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each cut")
    args = parser.parse_args()

    began = time.perf_counter()
    source = make_source(args.source_seconds, args.gop)
    generated = time.perf_counter() - began
    last = args.source_seconds - args.segment - 1
    starts = [round(x, 2) for x in np.linspace(7.37, last, 3)]
    load_before = os.getloadavg()
    smart = bench_cuts(source, args.segment, starts, smart=True, repeats=args.repeats)
    reencode = bench_cuts(
        source, args.reencode_segment, starts[:1], smart=False, repeats=args.repeats
    )
    load_after = os.getloadavg()

    began = time.perf_counter()
    levels = loudness_of_samples(decode_audio(source), SAMPLE_RATE)
    loudness_wall = time.perf_counter() - began

    figures = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "av": av.__version__,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        "source": {
            "size": f"{WIDTH}x{HEIGHT}",
            "fps": FPS,
            "seconds": args.source_seconds,
            "gop": args.gop,
            "bytes": source.stat().st_size,
            "generated_s": round(generated, 1),
        },
        "smart_cut": smart,
        "smart_cut_min_x_realtime": min(r["x_realtime"] for r in smart),
        "smart_cut_min_x_realtime_per_cpu_s": min(r["x_realtime_per_cpu_s"] for r in smart),
        "reencode_cut": reencode,
        "loudness": {
            "seconds": int(levels.size),
            "wall_s": round(loudness_wall, 3),
            "x_realtime": round(levels.size / loudness_wall, 1),
        },
        "scorer": bench_scorer(args.hours, levels),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=1))  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
