"""The local engine: the parent job, then the child jobs in parallel processes, on one machine.

The warehouse is a local folder with the same layout as the S3 bucket, so an interrupted
run resumes where it stopped: the jobs skip what is already done.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import queue
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import klipmedia
from klippers.contract import EXIT_BAD_INPUT, ShortsConfig, VideoRef, video_id_for
from klippers.gallery import write_gallery
from klippers.jobs.parent import ParentResult, read_manifest, run_parent
from klippers.jobs.runner import exit_code, scratch
from klippers.statemachine import CHILD_RETRY
from klippers.storage import LocalStorage, Storage, StorageKeyNotFoundError

log = logging.getLogger(__name__)

LOCAL_USER = "local"
BACKGROUND_NAME = "background.mp4"
_PROGRESS_EVERY = 10  # frames between progress messages from a child process


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a failed child, as in the cloud state machine (30 s, then 60 s)."""

    interval: float = float(CHILD_RETRY["IntervalSeconds"])
    attempts: int = int(CHILD_RETRY["MaxAttempts"])
    backoff: float = float(CHILD_RETRY["BackoffRate"])

    def delays(self) -> list[float]:
        """Seconds to wait before each retry."""
        return [self.interval * self.backoff**i for i in range(self.attempts)]


@dataclass(frozen=True)
class RunOptions:
    """What ``klip run`` was asked for."""

    shorts: int | None = None
    duration: float | None = None
    background: Path | None = None
    layout: str | None = None
    reframe: str | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    user: str = LOCAL_USER
    video_id: str | None = None
    asr_model: str | None = None
    retry: RetryPolicy = RetryPolicy()


class Events(Protocol):
    """What the engine reports while it runs (a CLI draws progress bars from these)."""

    def stage(self, name: str) -> None: ...

    def shorts_planned(self, count: int) -> None: ...

    def short_progress(self, segment: int, done: int, total: int) -> None: ...

    def short_finished(self, segment: int, reused: bool) -> None: ...

    def short_retrying(self, segment: int, error: str, delay: float) -> None: ...


@dataclass(frozen=True)
class LocalResult:
    """Where everything went."""

    ref: VideoRef
    folder: Path
    parent: ParentResult
    manifest: dict[str, Any]
    gallery: Path
    failed: dict[int, str]


def run_local(video: Path, out: Path, options: RunOptions, events: Events) -> LocalResult:
    """Run the whole job for ``video`` in the warehouse folder ``out``."""
    klipmedia.probe(video)  # fail fast, with a clear message, on a bad file
    storage = LocalStorage(out)
    ref = VideoRef(options.user, options.video_id or video_id_for(video.name))
    events.stage("prepare")
    prepare_inputs(storage, ref, video, options)
    with scratch(out / ".work") as work:
        parent = run_parent(
            ref, storage, Path(work), asr_model=options.asr_model, stage=events.stage
        )
    events.stage("render")
    events.shorts_planned(parent.segment_count)
    failed = render_children(out, ref, [e["index"] for e in parent.segments], options, events)
    manifest = read_manifest(storage, ref) or {"segments": [], "message": None}
    events.stage("gallery")
    video_folder = out / ref.prefix
    gallery = write_gallery(video_folder, manifest, title=f"Shorts from {video.name}")
    return LocalResult(ref, video_folder, parent, manifest, gallery, failed)


def prepare_inputs(storage: Storage, ref: VideoRef, video: Path, options: RunOptions) -> None:
    """Put the original, its config (merged with the options) and a thumbnail in place."""
    if not storage.is_current(ref.original_video, video):
        storage.upload(video, ref.original_video)
    config = _config(storage, ref, options)
    if options.background is not None:
        if not storage.is_current(ref.key(BACKGROUND_NAME), options.background):
            storage.upload(options.background, ref.key(BACKGROUND_NAME))
        config = ShortsConfig.from_dict(
            {**config.to_dict(), "background_video": BACKGROUND_NAME}, ref=ref
        )
    storage.write_bytes(ref.shorts_config, config.to_json().encode())
    if not storage.exists(ref.thumbnail):
        with scratch(None) as folder:
            storage.upload(klipmedia.thumbnail(video, Path(folder) / "t.png"), ref.thumbnail)


def _config(storage: Storage, ref: VideoRef, options: RunOptions) -> ShortsConfig:
    try:
        current = ShortsConfig.from_json(storage.read_bytes(ref.shorts_config), ref=ref).to_dict()
    except StorageKeyNotFoundError:
        current = {"segment_count": 0, "user_id": ref.user_id, "video_id": ref.video_id}
    changes = {
        "segment_count": options.shorts,
        "target_short_video_duration_in_seconds": options.duration,
        "layout": options.layout,
        "reframe": options.reframe,
    }
    return ShortsConfig.from_dict(
        {**current, **{k: v for k, v in changes.items() if v is not None}}, ref=ref
    )


def encoder_threads(cores: int, workers: int) -> int:
    """x264 threads per render when ``workers`` renders share ``cores`` (0: x264's choice).

    x264 alone takes 1.5 threads per core, and every thread holds pictures in memory;
    side by side, the renders share that count instead of each taking all of it.
    """
    if workers <= 1:
        return 0
    return max(2, math.ceil(1.5 * cores / workers))


def render_children(
    out: Path, ref: VideoRef, segments: list[int], options: RunOptions, events: Events
) -> dict[int, str]:
    """Render every short in worker processes; return the segments that failed for good."""
    if not segments:
        return {}
    workers = max(1, min(options.workers, len(segments)))
    threads = encoder_threads(os.cpu_count() or 1, workers)
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    messages: queue.Queue[tuple[int, int, int]] = manager.Queue()
    failed: dict[int, str] = {}
    job = (str(out), ref.user_id, ref.video_id)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        attempts = {n: 0 for n in segments}
        pending = {pool.submit(child_worker, *job, n, threads, messages): n for n in segments}
        while pending:
            _drain(messages, events)
            done = [f for f in pending if f.done()]
            if not done:
                time.sleep(0.1)
                continue
            for future in done:
                n = pending.pop(future)
                retry = _settle(future, n, attempts, options.retry, events, failed)
                if retry is not None:
                    time.sleep(retry)
                    pending[pool.submit(child_worker, *job, n, threads, messages)] = n
        _drain(messages, events)
    manager.shutdown()
    return failed


def _settle(
    future: Future[bool],
    segment: int,
    attempts: dict[int, int],
    policy: RetryPolicy,
    events: Events,
    failed: dict[int, str],
) -> float | None:
    """Record a finished child; return the delay before retrying it, if it should be."""
    error = future.exception()
    if error is None:
        events.short_finished(segment, reused=future.result())
        return None
    delays = policy.delays()
    attempt = attempts[segment]
    if exit_code(error) == EXIT_BAD_INPUT or attempt >= len(delays):
        failed[segment] = str(error)
        log.error("short %d failed: %s", segment, error)
        return None
    attempts[segment] = attempt + 1
    events.short_retrying(segment, str(error), delays[attempt])
    return delays[attempt]


def _drain(messages: queue.Queue[tuple[int, int, int]], events: Events) -> None:
    while True:
        try:
            segment, done, total = messages.get_nowait()
        except queue.Empty:
            return
        events.short_progress(segment, done, total)


def child_worker(
    out: str,
    user: str,
    video: str,
    segment: int,
    threads: int,
    messages: queue.Queue[tuple[int, int, int]],
) -> bool:
    """One child job in a worker process (x264 on ``threads``); True when the short was there."""
    from klippers.jobs.child import run_child

    def progress(done: int, total: int) -> None:
        if done % _PROGRESS_EVERY == 0 or done == total:
            messages.put((segment, done, total))

    root = Path(out)
    with scratch(root / ".work") as folder:
        result = run_child(
            VideoRef(user, video),
            segment,
            LocalStorage(root),
            Path(folder),
            encode=klipmedia.EncodeSettings(threads=threads),
            progress=progress,
        )
    return result.reused
