"""Sharded transcription: plan the windows, transcribe one window, merge the windows.

Run as ``python -m klippers.shard`` with ``USER_ID``, ``VIDEO_ID``, the warehouse and
``SHARD``:

- ``SHARD=plan`` writes ``transcript-shards/plan.json``: how many windows the original's
  audio is cut into (1, no sharding, for a video under ``MIN_SHARDED_SECONDS`` or whose
  transcript is already current), its duration, and what the windows are transcribed from
  (the original's identity and the ASR settings, as the parent's transcript recipe).
- ``SHARD=N`` decodes and transcribes window N only (its share of the audio plus
  ``SHARD_OVERLAP_SECONDS`` on either side), puts the words on the original's timeline and
  writes ``transcript-shards/shard_N.words.json``, then its recipe. A current window is
  skipped.

The parent merges the windows (:func:`merged_transcript`) when the plan and every window
are current for the transcript it needs, and transcribes in one pass otherwise. Each join
is cut in the widest pause of the overlap (:func:`join_point`), so a word spoken there is
taken once, from one side.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from klippers.asr.transcribe import decode_audio, load_transcriber
from klippers.contract import (
    ENV_SHARD,
    MAX_SHARD_COUNT,
    SHARD_OVERLAP_SECONDS,
    SHARD_PLAN_TASK,
    VideoRef,
    recipe_digest,
)
from klippers.jobs.parent import Original, asr_settings, logged_progress, probe_speech
from klippers.jobs.runner import (
    JobEnvironment,
    JobInputError,
    read_config,
    read_recipe,
    run_main,
    scratch,
    write_recipe,
)
from klippers.jobs.windows import ShardPlan, read_plan, shard_count_for, shifted
from klippers.storage import Storage

log = logging.getLogger(__name__)

# --- the job ----------------------------------------------------------------------------------


def plan_shards(
    ref: VideoRef, storage: Storage, workdir: Path, *, asr_model: str | None = None
) -> ShardPlan:
    """Decide the windows of ``ref``'s transcript and write ``plan.json``."""
    config = read_config(storage, ref)
    original = Original(storage, ref, workdir, lambda name: None)
    inputs = {"source": original.identity(), "asr": asr_settings(config, asr_model)}
    if read_recipe(storage, ref.transcript_recipe) == recipe_digest(inputs):
        plan = ShardPlan(1, None, SHARD_OVERLAP_SECONDS, inputs)
    else:
        info = probe_speech(storage, ref, original.path())
        plan = ShardPlan(
            shard_count_for(info.duration), info.duration, SHARD_OVERLAP_SECONDS, inputs
        )
    storage.write_bytes(ref.shard_plan, plan.to_json().encode())
    log.info("%s: %d transcription window(s)", storage.describe(ref.shard_plan), plan.shard_count)
    return plan


def transcribe_shard(
    ref: VideoRef, storage: Storage, workdir: Path, n: int, *, asr_model: str | None = None
) -> bool:
    """Transcribe window ``n`` of the plan; return whether it was current already."""
    plan = read_plan(storage, ref)
    if plan is None:
        raise JobInputError(f"{storage.describe(ref.shard_plan)} is missing: plan first")
    if not 1 <= n <= len(plan.windows):
        raise JobInputError(f"window {n}: the plan has {len(plan.windows)} window(s)")
    config = read_config(storage, ref)
    original = Original(storage, ref, workdir, lambda name: None)
    current = {"source": original.identity(), "asr": asr_settings(config, asr_model)}
    if recipe_digest(current) != recipe_digest(plan.inputs):
        raise JobInputError(
            f"the original or the ASR settings changed since {storage.describe(ref.shard_plan)} "
            "was written: run the video again"
        )
    inputs = plan.shard_inputs(n)
    words_key, recipe_key = ref.shard_words(n), ref.shard_recipe(n)
    if read_recipe(storage, recipe_key) == recipe_digest(inputs) and storage.exists(words_key):
        log.info("%s is up to date", storage.describe(words_key))
        return True
    window = plan.windows[n - 1]
    piece = decode_audio(original.path(), window.start, window.end)
    asr = plan.inputs["asr"]
    log.info("transcribing window %d: %.1f s to %.1f s", n, window.start, window.end)
    found = load_transcriber(asr["backend"], asr["model"]).transcribe(
        piece, language=asr["language"], progress=logged_progress()
    )
    words = shifted(found, window.start, window.end)
    storage.delete(recipe_key)
    storage.write_bytes(words_key, words.to_json().encode())
    write_recipe(storage, recipe_key, inputs)
    return False


def parse_shard(text: str) -> int | None:
    """The ``SHARD`` value: None for ``plan``, else a window number from 1."""
    stripped = text.strip()
    if stripped == SHARD_PLAN_TASK:
        return None
    if not stripped.isdigit() or not 1 <= int(stripped) <= MAX_SHARD_COUNT:
        raise JobInputError(
            f"{ENV_SHARD}: must be {SHARD_PLAN_TASK!r} or a window from 1 to "
            f"{MAX_SHARD_COUNT} (got {text!r})"
        )
    return int(stripped)


def run_job(env: Mapping[str, str]) -> ShardPlan | bool:
    """Plan, or transcribe the window ``SHARD`` names."""
    if not env.get(ENV_SHARD):
        raise JobInputError(f"{ENV_SHARD} is not set")
    shard = parse_shard(env[ENV_SHARD])
    job = JobEnvironment.from_env(env)
    with scratch(job.workdir) as folder:
        if shard is None:
            return plan_shards(job.ref, job.storage(), Path(folder))
        return transcribe_shard(job.ref, job.storage(), Path(folder), shard)


def main() -> int:
    """Entry point of ``python -m klippers.shard``."""
    return run_main("shard", run_job)
