"""Real-time factor of each transcription backend, the speed-up over concurrent windows, and
word error rate on real speech against faster-whisper's own defaults, in one run.

Usage::

    python benchmarks/bench_asr.py bench-results/asr.json [--threads 2] [--repeats 3]

Both backends transcribe the espeak-ng test clip (``tests/support/speech.py``) with the
offline Whisper tiny.en model (CTranslate2 for faster-whisper, the converted ``.pt`` for
whisper-timestamped). Each backend gets one warm-up run (numba compiles whisper-timestamped's
DTW then), then ``--repeats`` timed rounds, the backends taking turns so that both see the
same machine load; RTF = transcription wall seconds / audio seconds (CPU seconds recorded).
Word error rate and the worst sentence-boundary error are recorded so a faster setting
cannot hide a worse result.

Speed-up curve: the real recordings (``tests/support/recordings.py``) are joined into one
long audio and transcribed by faster-whisper with every worker count from 1 to the cores
this process may use, windows of ``--curve-window`` seconds so that there are enough of them
to share; runs are interleaved and the median per count is compared with one worker.

Accuracy: each real recording is transcribed by our pipeline and by
``WhisperModel.transcribe(audio)`` with the library's defaults, on the same model, and the
pooled WER of both is recorded.

Greedy against beam search: our faster-whisper pipeline with ``beam_size=1`` and with 5
(``--beams``) transcribes every real recording, the beam widths taking turns (A B A B...,
``--beam-repeats`` rounds after one warm-up each). Recorded per width: the pooled WER of
every round (greedy decoding that fails Whisper's checks falls back to sampling, so it
varies) and the median wall time per input minute; and each round's beam-5 / greedy time
ratio, with their median (the pair ran under the same machine load).
``--parts`` runs a subset (e.g. ``--parts beams``). Figures are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_RTF = 0.12
PARTS = ("backends", "curve", "library", "beams")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the JSON figures")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per backend")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per backend")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["faster-whisper", "whisper-timestamped"])
    parser.add_argument("--curve-window", type=float, default=20.0, help="seconds per window")
    parser.add_argument("--curve-repeats", type=int, default=3, help="timed runs per count")
    parser.add_argument("--beams", nargs=2, type=int, default=[1, 5], help="widths compared")
    parser.add_argument("--beam-repeats", type=int, default=5, help="timed rounds per width")
    parser.add_argument("--beam-models", nargs="+", default=["tiny.en"], help="CT2 models")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    return parser.parse_args(argv)


def _boundary_error(transcript: Any, clip: Any) -> float | None:
    """Worst |start/end - truth| over sentences, or None when the sentence counts differ."""
    if len(transcript.sentences) != len(clip.sentences):
        return None
    worst: float = max(
        max(abs(found.start - truth.start), abs(found.end - truth.end))
        for found, truth in zip(transcript.sentences, clip.sentences, strict=True)
    )
    return round(worst, 3)


@dataclass
class _Bench:
    """One loaded backend and its timings."""

    backend: str
    transcriber: Any
    load_s: float
    warmup_s: float = 0.0
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    transcript: Any = None

    def run(self, audio: Any) -> float:
        wall, cpu = time.perf_counter(), time.process_time()
        self.transcript = self.transcriber.transcribe(audio)
        return self._record(time.perf_counter() - wall, time.process_time() - cpu)

    def _record(self, wall: float, cpu: float) -> float:
        self.wall_s.append(round(wall, 3))
        self.cpu_s.append(round(cpu, 3))
        return wall


def load_backend(backend: str, args: argparse.Namespace) -> _Bench:
    """Load ``backend`` with the offline tiny.en model."""
    from klippers.asr.transcribe import load_transcriber
    from tests.support.whisper_models import ct2_tiny_en_path, openai_tiny_en_checkpoint

    model = ct2_tiny_en_path() if backend == "faster-whisper" else openai_tiny_en_checkpoint()
    started = time.perf_counter()
    transcriber = load_transcriber(
        backend, str(model), beam_size=args.beam_size, threads=args.threads
    )
    return _Bench(backend, transcriber, time.perf_counter() - started)


def summarise(bench: _Bench, seconds: float, clip: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The figures of one backend: RTF from wall time, plus CPU time, WER and timing error."""
    from tests.support.speech import word_error_rate

    return {
        "backend": bench.backend,
        "model": "tiny.en",
        "beam_size": args.beam_size,
        "threads": args.threads,
        "load_s": round(bench.load_s, 3),
        "warmup_s": round(bench.warmup_s, 3),
        "runs_s": bench.wall_s,
        "cpu_s": bench.cpu_s,
        "rtf_min": round(min(bench.wall_s) / seconds, 4),
        "rtf_median": round(statistics.median(bench.wall_s) / seconds, 4),
        "wer": round(word_error_rate(clip.text, bench.transcript.text), 4),
        "max_boundary_error_s": _boundary_error(bench.transcript, clip),
    }


def _real_audio() -> tuple[list[Any], Any]:
    """The real recordings with their decoded audio, and all of them joined end to end."""
    import numpy as np

    from klippers.asr.transcribe import decode_audio
    from tests.support.recordings import real_speech

    recordings = [(r, decode_audio(r.wav)) for r in real_speech()]
    return recordings, np.concatenate([audio for _, audio in recordings])


def speedup_curve(audio: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Median wall time of faster-whisper over ``audio`` for 1..cores workers, interleaved."""
    from klippers.asr.transcribe import load_transcriber, window_bounds, window_length
    from klippers.workload import cpu_cores
    from tests.support.whisper_models import ct2_tiny_en_path

    cores = cpu_cores()
    model = str(ct2_tiny_en_path())
    counts = list(range(1, cores + 1))
    loaded = {
        n: load_transcriber(
            "faster-whisper", model, threads=cores, window_s=args.curve_window, workers=n
        )
        for n in counts
    }
    runs: dict[int, list[float]] = {n: [] for n in counts}
    for n in counts:  # warm-up
        loaded[n].transcribe(audio)
    for _ in range(args.curve_repeats):
        for n in counts:
            started = time.perf_counter()
            loaded[n].transcribe(audio)
            runs[n].append(round(time.perf_counter() - started, 3))
    seconds = audio.size / 16_000
    base = statistics.median(runs[1])
    windows = len(window_bounds(audio, window_length(seconds, cores, args.curve_window)))
    return {
        "audio_s": round(seconds, 3),
        "cores": cores,
        "window_s": args.curve_window,
        "windows": windows,
        "points": [
            {
                "workers": n,
                "threads_per_worker": max(1, cores // n),
                "runs_s": runs[n],
                "median_s": statistics.median(runs[n]),
                "rtf": round(statistics.median(runs[n]) / seconds, 4),
                "speedup": round(base / statistics.median(runs[n]), 3),
            }
            for n in counts
        ],
    }


def wer_against_library(recordings: list[Any], threads: int) -> dict[str, Any]:
    """Pooled WER on the real recordings: our pipeline vs faster-whisper's own defaults."""
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    from klippers.asr.transcribe import load_transcriber
    from tests.support.speech import normalise_words, word_error_rate
    from tests.support.whisper_models import ct2_tiny_en_path

    model = str(ct2_tiny_en_path())
    ours = load_transcriber("faster-whisper", model, threads=threads)
    library = WhisperModel(model, device="cpu", compute_type="int8", cpu_threads=threads)
    rows, totals = [], {"ours": 0.0, "library_defaults": 0.0}
    words = 0
    for recording, audio in recordings:
        segments, _ = library.transcribe(audio)
        texts = {
            "ours": ours.transcribe(audio).text,
            "library_defaults": " ".join(s.text for s in segments),
        }
        count = len(normalise_words(recording.text))
        row = {"recording": recording.name, "words": count}
        for name, text in texts.items():
            row[name] = round(word_error_rate(recording.text, text), 4)
            totals[name] += row[name] * count
        words += count
        rows.append(row)
    return {
        "model": "tiny.en",
        "threads": threads,
        "words": words,
        "ours": round(totals["ours"] / words, 4),
        "library_defaults": round(totals["library_defaults"] / words, 4),
        "recordings": rows,
    }


def _model_path(name: str) -> str:
    """The offline CTranslate2 folder for ``tiny.en``; any other name is the backend's own."""
    from tests.support.whisper_models import ct2_tiny_en_path

    return str(ct2_tiny_en_path()) if name == "tiny.en" else name


Round = tuple[list[float], list[float]]
"""Wall seconds and WER of each recording in one transcription of all of them."""


def beam_comparison(
    recordings: list[Any], model: str, beams: list[int], repeats: int, threads: int
) -> dict[str, Any]:
    """Pooled WER and interleaved wall times of our pipeline at each beam width in ``beams``."""
    from klippers.asr.transcribe import SAMPLE_RATE, load_transcriber
    from tests.support.speech import normalise_words, word_error_rate

    loaded = {
        b: load_transcriber("faster-whisper", _model_path(model), beam_size=b, threads=threads)
        for b in beams
    }

    def transcribe_all(beam: int) -> Round:
        walls, wers = [], []
        for recording, audio in recordings:
            started = time.perf_counter()
            text = loaded[beam].transcribe(audio).text
            walls.append(time.perf_counter() - started)
            wers.append(word_error_rate(recording.text, text))
        return walls, wers

    for b in beams:  # warm-up
        transcribe_all(b)
    rounds: dict[int, list[Round]] = {b: [] for b in beams}
    for _ in range(repeats):  # interleaved: A B A B ...
        for b in beams:
            rounds[b].append(transcribe_all(b))
    seconds = sum(audio.size for _, audio in recordings) / SAMPLE_RATE
    words = [len(normalise_words(r.text)) for r, _ in recordings]
    names = [r.name for r, _ in recordings]
    ratios = [
        round(sum(wide) / sum(narrow), 3)
        for (narrow, _), (wide, _) in zip(rounds[beams[0]], rounds[beams[1]], strict=True)
    ]
    return {
        "model": model,
        "threads": threads,
        "audio_s": round(seconds, 3),
        "words": sum(words),
        "repeats": repeats,
        "beams": {str(b): _beam_row(rounds[b], names, words, seconds) for b in beams},
        "speedup_median": round(statistics.median(ratios), 3),
        "speedup_per_round": ratios,
    }


def _beam_row(
    rounds: list[Round], names: list[str], words: list[int], seconds: float
) -> dict[str, Any]:
    """Times and pooled WER (which varies: temperature fallback samples) over the rounds."""
    walls = [sum(w) for w, _ in rounds]
    wers = [
        sum(e * n for e, n in zip(errors, words, strict=True)) / sum(words) for _, errors in rounds
    ]
    return {
        "runs_s": [round(w, 3) for w in walls],
        "median_s": round(statistics.median(walls), 3),
        "s_per_input_minute": round(statistics.median(walls) / seconds * 60, 3),
        "wer_runs": [round(e, 4) for e in wers],
        "wer_median": round(statistics.median(wers), 4),
        "recordings": {
            name: {
                "median_s": round(statistics.median(w[k] for w, _ in rounds), 3),
                "wer_runs": [round(e[k], 4) for _, e in rounds],
            }
            for k, name in enumerate(names)
        },
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("av", "faster-whisper", "ctranslate2", "whisper-timestamped", "torch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def _report(results: dict[str, Any]) -> str:
    lines = [f"{results['threads']} threads"]
    if "backends" in results:
        lines.append(f"espeak-ng clip {results['audio_s']:.1f} s:")
    for row in results.get("backends", ()):
        lines.append(
            f"{row['backend']:>20}: RTF min {row['rtf_min']:.3f} median {row['rtf_median']:.3f}"
            f"  WER {row['wer']:.3f}  boundary err {row['max_boundary_error_s']}"
            f"  (load {row['load_s']:.1f} s, warm-up {row['warmup_s']:.1f} s)"
        )
    if "default_meets_target" in results:
        lines.append(
            f"default ({results['default_backend']}) meets RTF <= {TARGET_RTF}: "
            f"{results['default_meets_target']}"
        )
    if "speedup_curve" in results:
        curve = results["speedup_curve"]
        lines.append(
            f"speed-up over {curve['audio_s']:.0f} s of real speech, {curve['windows']} windows, "
            f"{curve['cores']} cores:"
        )
        for point in curve["points"]:
            lines.append(
                f"  {point['workers']} worker(s) x {point['threads_per_worker']} thread(s): "
                f"median {point['median_s']:.2f} s, RTF {point['rtf']:.3f}, x{point['speedup']:.2f}"
            )
    if "real_speech_wer" in results:
        wer = results["real_speech_wer"]
        lines.append(
            f"real speech ({wer['words']} words) WER: ours {wer['ours']:.4f}, "
            f"faster-whisper defaults {wer['library_defaults']:.4f}"
        )
    for cmp in results.get("beam_comparison", ()):
        lines.append(
            f"{cmp['model']} on real speech ({cmp['audio_s']:.0f} s, {cmp['words']} words), "
            f"{cmp['repeats']} interleaved rounds:"
        )
        for beam, row in cmp["beams"].items():
            lines.append(
                f"  beam {beam}: WER median {row['wer_median']:.4f} "
                f"({min(row['wer_runs']):.4f} to {max(row['wer_runs']):.4f}), "
                f"median {row['median_s']:.2f} s ({row['s_per_input_minute']:.2f} s per input "
                "minute)"
            )
        lines.append(
            f"  wider / narrower beam time per round: median x{cmp['speedup_median']:.2f} "
            f"({min(cmp['speedup_per_round']):.2f} to {max(cmp['speedup_per_round']):.2f})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its JSON figures."""
    sys.path.insert(0, str(ROOT))  # tests.support provides the clip and the offline models
    from klippers.asr.subtitles import write_atomic
    from klippers.asr.transcribe import DEFAULT_BACKEND

    args = _parse_args(argv)
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "benchmark": "asr",
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": _versions(),
        "default_backend": DEFAULT_BACKEND,
    }
    if "backends" in args.parts:
        results.update(backend_comparison(args))
    if {"curve", "library", "beams"} & set(args.parts):
        recordings, joined = _real_audio()
        if "curve" in args.parts:
            results["speedup_curve"] = speedup_curve(joined, args)
        if "library" in args.parts:
            results["real_speech_wer"] = wer_against_library(recordings, args.threads)
        if "beams" in args.parts:
            results["beam_comparison"] = [
                beam_comparison(recordings, model, args.beams, args.beam_repeats, args.threads)
                for model in args.beam_models
            ]
    results["loadavg_before"] = [round(x, 2) for x in load_before]
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output, json.dumps(results, indent=1) + "\n")
    print(_report(results))  # noqa: T201 - a benchmark script reports on stdout


def backend_comparison(args: argparse.Namespace) -> dict[str, Any]:
    """RTF, WER and boundary error of each backend on the espeak-ng clip, interleaved."""
    from klippers.asr.transcribe import DEFAULT_BACKEND, SAMPLE_RATE, decode_audio
    from tests.support.speech import speech_clip

    clip = speech_clip()
    started = time.perf_counter()
    audio = decode_audio(clip.path)
    decode_s = time.perf_counter() - started
    benches = [load_backend(name, args) for name in args.backends]
    for bench in benches:
        bench.warmup_s = bench.run(audio)
        bench.wall_s.clear()
        bench.cpu_s.clear()
    for _ in range(args.repeats):  # interleaved, so that both see the same machine load
        for bench in benches:
            bench.run(audio)
    seconds = audio.size / SAMPLE_RATE
    rows = [summarise(bench, seconds, clip, args) for bench in benches]
    default = next((r for r in rows if r["backend"] == DEFAULT_BACKEND), None)
    return {
        "clip": clip.path.name,
        "audio_s": round(seconds, 3),
        "decode_s": round(decode_s, 3),
        "target_rtf": TARGET_RTF,
        "default_meets_target": default is not None and default["rtf_median"] <= TARGET_RTF,
        "backends": rows,
    }


if __name__ == "__main__":
    main()
