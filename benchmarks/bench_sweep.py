"""Length sweep: ``klip run`` on generated 720p30 talks of several lengths, stage by stage.

Usage: python benchmarks/bench_sweep.py OUT.json [--minutes 5 20 60]

Each talk (a slowly moving face over a gradient, espeak-ng sentences in a seeded random
order) is generated once and cached under ``.cache/sweep/``, keyed by its parameters: a
10 s clip is encoded and its packets repeated, so an hour costs about a minute to make.
Each run is ``run_local`` (what ``klip run`` calls; tiny.en, 2 shorts, default workers) in
a child process that reports its stages on stdout; decoding the audio (``decode``, then
``asr``) and measuring its loudness are reported as stages of their own (``transcribe`` and
``select`` are what is left of the parent's stages of those names). Meanwhile this process
samples, every 0.2 s, the memory of the child's whole process tree (RSS, and its anonymous
part, which the kernel cannot take back by dropping file pages) and the temporary disk (the
work folders ``out/.work`` and the child's ``$TMPDIR``, with the unnamed files open there:
the decoded audio).

Targets (issue #17, 2 cores, tiny.en): each extra input minute costs <= 2.5 s of wall
time; the longest run's peak memory <= 1.25x the shortest's; temporary disk <= the
original's size plus the shorts'.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.events import QuietEvents  # noqa: E402
from klippers.contract import SHORTS_DIR  # noqa: E402
from tests.support.speech import SAMPLE_RATE, speak, trim_to_voice  # noqa: E402
from tests.support.whisper_models import ct2_tiny_en_path  # noqa: E402

CACHE_DIR = ROOT / ".cache" / "sweep"
VERSION = "sweep-v1"
SIZE = (1280, 720)
FPS = 30
LOOP_FRAMES = 300  # the repeated clip: 10 s, five closed 2 s GOPs
GOP = 60
AAC_FRAME = 1024
SAMPLE_EVERY_S = 0.2
SHORTS = 2
WALL_PER_MINUTE_TARGET_S = 2.5
MEMORY_RATIO_TARGET = 1.25
SEED = 17

SENTENCES = (
    "Welcome back to the channel, today we talk about building a small business.",
    "Here is the thing nobody tells you about your first year.",
    "Most founders spend far too much time on a logo and far too little on customers.",
    "So what should you actually do in your first week?",
    "First, write down the one problem you solve in a single sentence.",
    "Second, call ten people who have that problem and just listen.",
    "That one habit saved me more than a year of wasted work.",
    "Now let me tell you a short story about my first shop.",
    "It was a tiny room above a bakery, and it smelled of bread all day.",
    "We sold repaired bicycles to students for thirty dollars each.",
    "Why does this matter for you and your plans?",
    "Because small, boring businesses are often the ones that last.",
    "The numbers are clear: cash flow kills more companies than competition.",
    "Keep three months of costs in the bank before you hire anyone.",
    "And never sign a lease longer than you can afford to walk away from.",
    "Here is a question I get every week from listeners.",
    "Should I quit my job to start something of my own?",
    "My honest answer is: not until customers are already paying you.",
    "Let me explain why with a simple example from last spring.",
    "A friend of mine sold handmade lamps on weekends for two years.",
    "Only when weekend sales passed her salary did she hand in her notice.",
    "Today she runs a workshop with six people and no debt at all.",
    "That is the kind of growth I want for everyone watching.",
    "Another mistake is pricing too low because you feel like a beginner.",
    "Your price tells people how much your work is worth.",
    "Raise it slowly, and watch which customers stay with you.",
    "The ones who stay are the ones you should build around.",
    "Marketing does not have to be expensive or complicated.",
    "Tell one true story every week about a customer you helped.",
    "Thanks for listening, and see you in the next episode.",
)


# --- the input videos --------------------------------------------------------------------------


def sweep_video(minutes: float, cache_dir: Path = CACHE_DIR) -> Path:
    """The cached talk of ``minutes`` minutes (720p30 H.264, 48 kHz stereo AAC speech)."""
    params = {"version": VERSION, "minutes": minutes, "size": SIZE, "fps": FPS, "seed": SEED}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    target = cache_dir / f"talk-{minutes:g}min-{SIZE[1]}p{FPS}-{key}.mp4"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as folder:
        clip = Path(folder) / "clip.mp4"
        _write_clip(clip)
        partial = Path(folder) / "talk.mp4"
        _write_talk(partial, clip, round(minutes * 60 * FPS / LOOP_FRAMES))
        os.replace(partial, target)
    return target


def _write_clip(path: Path) -> None:
    """The 10 s picture that repeats: a face drifting left and right, back where it began."""
    from skimage import data

    width, height = SIZE
    face = np.repeat(np.repeat(data.astronaut()[20:220, 130:300], 2, axis=0), 2, axis=1)
    x = np.linspace(0, 1, width, dtype=np.float32)
    backdrop = np.stack([40 + 60 * x, 50 + 30 * x, 90 - 40 * x], axis=-1).astype(np.uint8)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0",
        }
        for index in range(LOOP_FRAMES):
            image = np.repeat(backdrop[None], height, axis=0)
            left = 300 + round(60 * np.sin(2 * np.pi * index / LOOP_FRAMES))
            image[150 : 150 + face.shape[0], left : left + face.shape[1]] = face
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _speech(seconds: float) -> Iterator[np.ndarray]:
    """Sentences in a seeded random order with pauses of 0.4-1.5 s (some of 3 s), in
    chunks, until ``seconds`` of samples have been given."""
    voices = [trim_to_voice(speak(text)) for text in SENTENCES]
    rng = random.Random(SEED)
    left = round(seconds * SAMPLE_RATE)
    while left > 0:
        pause = 3.0 if rng.random() < 0.1 else rng.uniform(0.4, 1.5)
        for piece in (np.zeros(round(pause * SAMPLE_RATE), np.float32), rng.choice(voices)):
            yield piece[:left]
            left -= min(left, piece.size)


def _audio_frames(seconds: float) -> Iterator[av.AudioFrame]:
    pending = np.zeros(0, np.float32)
    pts = 0
    for piece in (*_speech(seconds), None):
        pending = np.concatenate([pending, piece if piece is not None else []])
        while pending.size >= AAC_FRAME or (piece is None and pending.size):
            chunk, pending = pending[:AAC_FRAME], pending[AAC_FRAME:]
            stereo = np.ascontiguousarray(np.stack([chunk, chunk]).astype(np.float32))
            frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = SAMPLE_RATE, pts
            frame.time_base = Fraction(1, SAMPLE_RATE)
            pts += chunk.size
            yield frame


def _write_talk(path: Path, clip: Path, loops: int) -> None:
    """Repeat the clip's packets ``loops`` times beside freshly encoded speech."""
    seconds = loops * LOOP_FRAMES / FPS
    with av.open(str(clip)) as source, av.open(str(path), "w", format="mp4") as out:
        template = source.streams.video[0]
        video = out.add_stream_from_template(template)
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        packets = [p for p in source.demux(template) if p.size]
        times = [(p.pts, p.dts) for p in packets]
        step = round(Fraction(LOOP_FRAMES, FPS) / (template.time_base or Fraction(1, FPS)))
        frames = _audio_frames(seconds)
        for loop in range(loops):
            for packet, (pts, dts) in zip(packets, times, strict=True):
                packet.pts, packet.dts = pts + loop * step, dts + loop * step
                packet.stream = video
                out.mux(packet)
            until = (loop + 1) * LOOP_FRAMES / FPS
            for frame in frames:
                out.mux(audio.encode(frame))
                if (frame.time or 0.0) >= until:
                    break
        for frame in frames:
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


# --- the run, in a child process ---------------------------------------------------------------


class _Reporter(QuietEvents):
    """Events that write each stage's start to stdout, one JSON object a line."""

    current = "start"

    def stage(self, name: str) -> None:
        self.current = name
        sys.stdout.write(json.dumps({"stage": name, "t": time.time()}) + "\n")
        sys.stdout.flush()


def _child(video: Path, out: Path) -> None:
    """Run the job, reporting the parent's audio decoding and loudness as stages too."""
    import klippers.jobs.parent as parent
    from klippers.asr.loudness import loudness_of_samples as loudness
    from klippers.asr.transcribe import decode_audio as decode
    from klippers.local import RunOptions, run_local

    events = _Reporter()

    def timed_decode(path: Any) -> Any:
        events.stage("decode")
        audio = decode(path)
        events.stage("asr")
        return audio

    def timed_loudness(samples: Any, rate: int) -> Any:
        previous = events.current
        events.stage("loudness")
        levels = loudness(samples, rate)
        events.stage(previous)
        return levels

    vars(parent).update(decode_audio=timed_decode, loudness_of_samples=timed_loudness)
    run_local(video, out, RunOptions(shorts=SHORTS), events)
    events.stage("end")


# --- sampling the process tree -----------------------------------------------------------------


def _tree(root: int) -> list[int]:
    """``root`` and its living descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def _memory(pids: list[int]) -> tuple[int, int]:
    """Summed RSS and anonymous RSS (bytes) of ``pids``."""
    rss = anon = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        fields = {k: v for k, _, v in (line.partition(":") for line in lines)}
        rss += int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        anon += int(fields.get("RssAnon", "0 kB").split()[0]) * 1024
    return rss, anon


def _disk(folders: list[Path], pids: list[int]) -> int:
    """Bytes allocated to files below ``folders``, named or (open in ``pids``) unnamed."""
    paths = [
        os.path.join(base, name) for f in folders for base, _, names in os.walk(f) for name in names
    ]
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path).startswith(tuple(str(f) for f in folders)):
                        paths.append(fd.path)
    sizes: dict[tuple[int, int], int] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            found = os.stat(path)
            sizes[(found.st_dev, found.st_ino)] = found.st_blocks * 512
    return sum(sizes.values())


def _read_stages(stream: Any, stages: list[tuple[str, float]]) -> None:
    for line in stream:
        if line.startswith("{"):
            event = json.loads(line)
            stages.append((event["stage"], event["t"]))


def measure(video: Path) -> dict[str, Any]:
    """Run the job on ``video`` in a child process; wall, peak memory and disk per stage."""
    with tempfile.TemporaryDirectory(prefix="sweep-") as folder:
        out, tmp = Path(folder) / "out", Path(folder) / "tmp"
        tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(tmp), "KLIPPERS_ASR_MODEL": str(ct2_tiny_en_path())}
        command = [sys.executable, __file__, "--child", str(video), str(out)]
        stages: list[tuple[str, float]] = [("start", time.time())]
        peaks: dict[str, dict[str, int]] = {}
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as child:
            reader = threading.Thread(target=_read_stages, args=(child.stdout, stages))
            reader.start()
            while child.poll() is None:
                pids = _tree(child.pid)
                rss, anon = _memory(pids)
                disk = _disk([out / ".work", tmp], pids)
                peak = peaks.setdefault(stages[-1][0], {"rss": 0, "anon": 0, "disk": 0})
                for name, value in (("rss", rss), ("anon", anon), ("disk", disk)):
                    peak[name] = max(peak[name], value)
                time.sleep(SAMPLE_EVERY_S)
            reader.join()
        if child.returncode:
            raise SystemExit(f"the run on {video.name} failed (exit {child.returncode})")
        shorts = sum(p.stat().st_size for p in out.rglob(f"{SHORTS_DIR}/*.mp4"))
    return _summary(video, stages, peaks, shorts)


def _summary(
    video: Path,
    stages: list[tuple[str, float]],
    peaks: dict[str, dict[str, int]],
    shorts: int,
) -> dict[str, Any]:
    walls: dict[str, float] = {}
    for (name, start), (_, end) in itertools.pairwise(stages[1:]):
        walls[name] = walls.get(name, 0.0) + end - start
    mib = 2**20
    original = video.stat().st_size
    peak_disk = max(p["disk"] for p in peaks.values())
    return {
        "video": video.name,
        "original_mib": round(original / mib, 1),
        "wall_s": round(stages[-1][1] - stages[0][1], 1),
        "stage_wall_s": {k: round(v, 1) for k, v in walls.items()},
        "peak_rss_mib": round(max(p["rss"] for p in peaks.values()) / mib),
        "peak_anon_mib": round(max(p["anon"] for p in peaks.values()) / mib),
        "stage_peak_rss_mib": {k: round(p["rss"] / mib) for k, p in peaks.items()},
        "stage_peak_anon_mib": {k: round(p["anon"] / mib) for k, p in peaks.items()},
        "peak_temp_disk_mib": round(peak_disk / mib, 1),
        "shorts_mib": round(shorts / mib, 1),
        "temp_disk_target_met": peak_disk <= original + shorts,
    }


def targets(runs: dict[float, dict[str, Any]]) -> dict[str, Any]:
    """Per-minute wall cost between successive lengths and the memory ratio longest/shortest."""
    lengths = sorted(runs)
    slopes = {
        f"{a:g}->{b:g}": round((runs[b]["wall_s"] - runs[a]["wall_s"]) / (b - a), 2)
        for a, b in itertools.pairwise(lengths)
    }
    first, last = runs[lengths[0]], runs[lengths[-1]]
    ratio = last["peak_rss_mib"] / first["peak_rss_mib"]
    anon_ratio = last["peak_anon_mib"] / first["peak_anon_mib"]
    return {
        "wall_s_per_extra_minute": slopes,
        "wall_target_met": all(s <= WALL_PER_MINUTE_TARGET_S for s in slopes.values()),
        f"memory_ratio_{lengths[-1]:g}_to_{lengths[0]:g}": round(ratio, 3),
        f"anon_memory_ratio_{lengths[-1]:g}_to_{lengths[0]:g}": round(anon_ratio, 3),
        "memory_target_met": ratio <= MEMORY_RATIO_TARGET,
        "temp_disk_target_met": all(r["temp_disk_target_met"] for r in runs.values()),
    }


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        _child(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("bench-results/sweep.json"))
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 20, 60])
    args = parser.parse_args()
    videos = {m: sweep_video(m) for m in args.minutes}
    runs = {m: measure(video) for m, video in videos.items()}
    report = {
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg(),
        "shorts": SHORTS,
        "runs": {f"{m:g}min": r for m, r in runs.items()},
        "targets": targets(runs) if len(runs) > 1 else {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
