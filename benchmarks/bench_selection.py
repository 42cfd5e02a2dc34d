"""Benchmark: how well each scorer picks what audiences react to, and what selection costs.

Usage: ``python benchmarks/bench_selection.py OUT.json [--data DIR] [--folds 5]``

Quality (when the TED-reaction dev talks are there, ``../shared/data/ted-reactions/dev``
by default; read in place, never copied): for each scorer (random picks, the first
release's ``classic`` profile, the ``default`` profile, and the LLM scorer when
``KLIPPERS_LLM_MODEL`` is set), 3 picks of ~60 s per talk scored by the folder's own
``evaluate.py``: reaction lift with its bootstrap 95 % interval over talks, hit@3 (and
random placement's), the oracle ceiling, for all talks and apart for the talks with real
(``aws``) and synthetic (``uniform``) word timings; laughter alone; the mean duration
picked. Ablations say which cues a gain comes from. Cross-validation: the few knobs of the
default profile (cue weights, duration fit) are tuned on 4/5 of the talks and scored on the
held-out fifth, so the CV lift is not an in-sample figure.

Cost: wall time and peak memory of a fresh process that imports Klippers and selects 10
segments from a synthetic 3-hour transcript (generated words, no TED text), per scorer.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.selection.config import scorer_from_config
from klippers.selection.embeddings import load_encoder
from klippers.selection.highlights import select_highlights
from klippers.selection.lexicon import lexicon
from klippers.selection.signals import (
    CLASSIC_PROFILE,
    CUES,
    DEFAULT_PROFILE,
    Assessment,
    EmbeddedScorer,
    Profile,
    Scorer,
    ScoringContext,
)
from klippers.selection.units import Candidate

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "ted-reactions" / "dev"
COUNT, TARGET = 3, 60.0
RANDOM_SEEDS = 5
"""Random picks per talk, pooled (one draw of 3 spans per talk is too noisy a baseline)."""
Picker = Callable[[Transcript], list[tuple[float, float]]]


class RandomScorer:
    """Uniformly random scores (seeded): the baseline any scorer has to beat."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def score(self, candidates: Sequence[Candidate], context: ScoringContext) -> list[Assessment]:
        """A random score for every candidate."""
        return [Assessment(100 * self.rng.random(), "", ()) for _ in candidates]


def picker(scorer: Scorer | None, shortlist: int = 24) -> Picker:
    """Spans chosen by ``scorer`` (None: the default) for ``klip highlights --count 3``."""

    def pick(transcript: Transcript) -> list[tuple[float, float]]:
        result = select_highlights(
            transcript, count=COUNT, target_duration=TARGET, scorer=scorer, shortlist=shortlist
        )
        return [(h.start, h.end) for h in result.highlights]

    return pick


# --- quality on the dev talks -----------------------------------------------------------------


def load_evaluator(data: Path) -> ModuleType:
    """The dev folder's ``evaluate.py``, imported in place."""
    spec = importlib.util.spec_from_file_location("ted_reactions_evaluate", data / "evaluate.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {data / 'evaluate.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_talks(data: Path, ev: ModuleType) -> list[tuple[str, Transcript, dict[str, Any]]]:
    """(name, transcript, labels) of every talk in ``data``."""
    talks = []
    for path in sorted(data.glob("*.labels.json")):
        name = path.name.removesuffix(".labels.json")
        info = ev.load_labels(path)
        talks.append((name, Transcript.load(data / f"{name}.words.json"), info))
    return talks


def talk_rows(
    pick: Picker, talks: Sequence[tuple[str, Transcript, dict[str, Any]]], ev: ModuleType
) -> list[dict[str, Any]]:
    """``evaluate.score_talk`` rows of ``pick``'s spans, one per talk (seeded as evaluate.py)."""
    rows = []
    for n, (name, transcript, info) in enumerate(talks):
        spans, problem = ev.spans_of([list(s) for s in pick(transcript)], info["duration"])
        if problem:
            raise RuntimeError(f"{name}: {problem}")
        row = ev.score_talk(spans, info["labels"], info["duration"], ev.SEED + n)
        row["talk"], row["timing"] = name, info["timing"]
        rows.append(row)
    return rows


def summary(rows: Sequence[dict[str, Any]], ev: ModuleType) -> dict[str, Any]:
    """Lift, interval, hit@3 and oracle for all talks and per timing; laughter alone."""

    def one(sub: Sequence[dict[str, Any]], kind: str = "reactions") -> dict[str, Any]:
        s = ev.summarize(list(sub), kind)
        return {
            "talks": s["talks"],
            "lift": round(s["lift"], 3),
            "ci95": [round(s["ci"][0], 3), round(s["ci"][1], 3)],
            "hit_at_3": round(s["hit"], 3),
            "random_hit_at_3": round(s["random_hit"], 3),
            "oracle": round(s["oracle"], 3),
            "inside": s["reactions_inside"],
            "expected_random": s["expected_random"],
        }

    out = {"all": one(rows)}
    for timing in ("aws", "uniform"):
        sub = [r for r in rows if r["timing"] == timing]
        if sub:
            out[timing] = one(sub)
    out["laughter"] = one(rows, "laughter")
    out["mean_duration_s"] = round(
        sum(r["seconds"] for r in rows) / max(1, sum(r["spans"] for r in rows)), 1
    )
    return out


def ratio(rows: Sequence[dict[str, Any]]) -> float:
    """Reaction lift of ``rows`` (ratio of sums)."""
    got = float(sum(r["reactions"]["got"] for r in rows))
    return got / max(float(sum(r["reactions"]["expected"] for r in rows)), 1e-9)


GRID = {"pauses": (1.0, 2.0), "story": (0.0, 0.3), "anecdote": (0.0, 0.5, 1.0, 2.0)}
"""The knobs cross-validation tunes: cue weights (rhythm stays at 1). The duration fit is a
product choice (how far below the target a short may go), not tuned on reactions: shorter
spans around a reaction always raise the lift."""


def grid_profiles() -> dict[str, Profile]:
    """Every profile of :data:`GRID`, by a readable key."""
    profiles = {}
    for values in itertools.product(*GRID.values()):
        knobs = dict(zip(GRID, values, strict=True))
        cues = {**CUES, **knobs}
        key = " ".join(f"{k}={v}" for k, v in knobs.items())
        profiles[key] = Profile(DEFAULT_PROFILE.weights, {k: w for k, w in cues.items() if w})
    return profiles


def cross_validate(
    talks: Sequence[tuple[str, Transcript, dict[str, Any]]], ev: ModuleType, folds: int
) -> dict[str, Any]:
    """Tune :data:`GRID` on the other folds, score each held-out fold; folds are seeded."""
    profiles = grid_profiles()
    rows = {key: talk_rows(picker(EmbeddedScorer(p)), talks, ev) for key, p in profiles.items()}
    order = np.random.default_rng(7).permutation(len(talks))
    fold_of = {int(t): k % folds for k, t in enumerate(order)}
    held: list[dict[str, Any]] = []
    chosen = []
    for fold in range(folds):
        train = [i for i in range(len(talks)) if fold_of[i] != fold]
        best = max(profiles, key=lambda key: ratio([rows[key][i] for i in train]))
        chosen.append(best)
        held += [rows[best][i] for i in range(len(talks)) if fold_of[i] == fold]
    return {
        "folds": folds,
        "grid": {k: list(v) for k, v in GRID.items()},
        "chosen_per_fold": chosen,
        "cv": summary(held, ev),
        "in_sample": {
            key: {"lift": round(ratio(r), 3), "mean_duration_s": summary(r, ev)["mean_duration_s"]}
            for key, r in sorted(rows.items(), key=lambda item: -ratio(item[1]))
        },
    }


def ablations() -> dict[str, Profile]:
    """The default profile with some reaction cues only, to see where a gain comes from."""
    base = DEFAULT_PROFILE

    def only(*cues: str) -> Profile:
        return Profile(base.weights, {k: w for k, w in base.cues.items() if k in cues})

    return {
        "pauses only": only("pauses"),
        "without pauses (text cues only)": only("rhythm", "story", "anecdote"),
        "rhythm only": only("rhythm"),
        "story only": only("story"),
        "anecdote only": only("anecdote"),
        "no reaction cues (novelty, boundaries, fit)": Profile(
            {k: w for k, w in base.weights.items() if k != "reactions"}, {}
        ),
    }


NO_EMBEDDINGS = Profile(
    DEFAULT_PROFILE.weights, {k: w for k, w in DEFAULT_PROFILE.cues.items() if k != "anecdote"}
)
"""The default without the ``anecdote`` cue: what a install without the ``select`` extra gets."""


def quality(data: Path, folds: int) -> dict[str, Any]:
    """Every quality figure (see the module docstring)."""
    ev = load_evaluator(data)
    talks = load_talks(data, ev)
    scorers: dict[str, tuple[Scorer | None, int]] = {
        "classic": (EmbeddedScorer(CLASSIC_PROFILE), 24),
        "default without embeddings": (EmbeddedScorer(NO_EMBEDDINGS), 24),
        "default": (None, 24),
    }
    if os.environ.get("KLIPPERS_LLM_MODEL"):
        scorers["llm"] = (scorer_from_config("llm", os.environ), 24)
    out: dict[str, Any] = {
        "data": str(data),
        "talks": len(talks),
        "embeddings": load_encoder() is not None,
        "scorers": {},
    }
    random_rows = [
        row
        for seed in range(RANDOM_SEEDS)
        for row in talk_rows(picker(RandomScorer(seed), 10**6), talks, ev)
    ]
    out["scorers"]["random"] = {**summary(random_rows, ev), "draws_per_talk": RANDOM_SEEDS}
    for name, (scorer, shortlist) in scorers.items():
        began = time.perf_counter()  # the first scorer with embeddings pays for them (cached)
        rows = talk_rows(picker(scorer, shortlist), talks, ev)
        wall = round(time.perf_counter() - began, 1)
        out["scorers"][name] = {**summary(rows, ev), "wall_s": wall}
    out["ablations"] = {
        name: summary(talk_rows(picker(EmbeddedScorer(p)), talks, ev), ev)
        for name, p in ablations().items()
    }
    out["cross_validation"] = cross_validate(talks, ev, folds)
    return out


# --- cost on a 3-hour transcript --------------------------------------------------------------

VOCABULARY = sorted(
    lexicon(
        """market river engine story budget garden signal pattern future planet music doctor
        teacher camera window problem answer question energy kitchen battery rocket ocean
        village theory network memory"""
    )
)
FUNCTION = sorted(lexicon("the a and so we I you it was is to of in that but my like just really"))


def long_transcript(hours: float, seed: int = 3) -> Transcript:
    """Generated speech: sentences of 4-24 words with real-looking pauses, some quoted."""
    rng = random.Random(seed)
    sentences = []
    t = 0.0
    while t < hours * 3600:
        words = []
        for _ in range(rng.randint(4, 24)):
            text = rng.choice(VOCABULARY if rng.random() < 0.4 else FUNCTION)
            length = 0.12 + 0.05 * len(text)
            words.append(Word(round(t, 3), round(t + length, 3), text))
            t += length + rng.choice((0.02, 0.05, 0.1, 0.3))
        text = " ".join(w.text for w in words)
        if rng.random() < 0.1:
            text = f'She said "{text}"'
        text = text[0].upper() + text[1:] + rng.choice(".?!.")
        sentences.append(Sentence(words[0].start, words[-1].end, text, tuple(words)))
        t += rng.choice((0.2, 0.4, 0.6, 0.9, 1.5, 2.5))
    return Transcript("en", t + 1.0, tuple(sentences))


COST_SCORERS: dict[str, Callable[[], Scorer | None]] = {
    "default": lambda: None,
    "default without embeddings": lambda: EmbeddedScorer(NO_EMBEDDINGS),
    "llm": lambda: scorer_from_config("llm", os.environ),
}


def cost_child(scorer_name: str, hours: float) -> None:
    """In a fresh process: build the transcript, then time import + selection."""
    began = time.perf_counter()
    transcript = long_transcript(hours)
    built = time.perf_counter() - began
    began = time.perf_counter()
    scorer = COST_SCORERS[scorer_name]()
    result = select_highlights(transcript, count=10, target_duration=TARGET, scorer=scorer)
    wall = time.perf_counter() - began
    print(  # noqa: T201 - the child's report to its parent
        json.dumps(
            {
                "transcript_hours": round(transcript.duration / 3600, 2),
                "sentences": len(transcript.sentences),
                "words": sum(len(s.words) for s in transcript.sentences),
                "segments": len(result.highlights),
                "build_transcript_s": round(built, 2),
                "select_wall_s": round(wall, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        )
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory: ``VmHWM``, which starts afresh at exec (unlike
    ``ru_maxrss``, which a child started by fork + exec inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost(scorer_name: str, hours: float) -> dict[str, Any]:
    """:func:`cost_child` in a fresh interpreter (so imports and model loads count)."""
    began = time.perf_counter()
    command = [sys.executable, __file__, "--cost-child", scorer_name, "--hours", str(hours)]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    figures["process_wall_s"] = round(time.perf_counter() - began, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, nargs="?", help="where to write the JSON figures")
    parser.add_argument("--data", type=Path, default=DEV, help="the TED-reaction dev folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--cost-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cost_child:
        cost_child(args.cost_child, args.hours)
        return
    if args.output is None:
        parser.error("the output path is required")
    load_before = os.getloadavg()
    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
        },
    }
    if (args.data / "evaluate.py").is_file():
        figures["quality"] = quality(args.data, args.folds)
    else:
        figures["quality"] = {"skipped": f"no TED-reaction dev folder at {args.data}"}
    names = ["default", "default without embeddings"]
    names += ["llm"] if os.environ.get("KLIPPERS_LLM_MODEL") else []
    figures["three_hours"] = {name: cost(name, args.hours) for name in names}
    figures["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=1))  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
