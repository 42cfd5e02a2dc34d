"""The local engine: the parent job, then the child jobs in parallel processes, on one machine.

The warehouse is a local folder with the same layout as the S3 bucket, so an interrupted
run resumes where it stopped: the jobs skip what is already done.

A short that fails is retried, on the cloud's schedule, only when a later try may succeed:
a transient failure (``EXIT_TRANSIENT`` by :func:`klippers.jobs.runner.exit_code`: I/O
errors, truncated downloads) or a worker process that died (the OOM killer). Bad input
(``EXIT_BAD_INPUT``) and bugs (``EXIT_FAILURE``) fail the short at once: a bug fails the
same way again, and re-running ``klip run`` resumes anyway. The other shorts go on either way.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import math
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, MutableMapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

import klipmedia
from klippers.contract import (
    EXIT_FAILURE,
    EXIT_TRANSIENT,
    UPLOADED_BACKGROUND,
    ShortsConfig,
    VideoRef,
    video_id_for,
)
from klippers.gallery import write_gallery
from klippers.jobs.parent import ParentResult, decoded_audio, read_manifest, run_parent
from klippers.jobs.runner import exit_code, require_free_space, scratch
from klippers.selection.config import scorer_recipe
from klippers.statemachine import CHILD_RETRY
from klippers.storage import LocalStorage, Storage, StorageKeyNotFoundError
from klippers.workload import cpu_cores

log = logging.getLogger(__name__)

LOCAL_USER = "local"
SHORTS_DISK_RESERVE = 1_000_000_000
"""Disk kept free beside the original's copy for the shorts and their scratch files."""
RENDER_MEMORY_BYTES = 450 * 2**20
"""Peak memory of one 1080x1920 render (measured, ``benchmarks/bench_render.py``)."""
_PROGRESS_EVERY = 10  # frames between progress messages from a child process
_POLL_SECONDS = 0.1  # longest wait for a finished short before passing progress on

Messages = queue.Queue[tuple[int, int, int]]
"""Progress from the workers: (segment, frames done, frames in all)."""
ChildJob = Callable[[str, str, str, int, int, Messages], bool]
"""What a worker runs for one short, as :func:`child_worker` (module level: the pool pickles it)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a failed child, as in the cloud state machine (30 s, then 60 s).

    Only transient failures and dead workers are retried (see the module's docstring).
    """

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
    scorer: str | None = None
    workers: int | None = None
    """Shorts rendered at once; None: :func:`default_workers`."""
    user: str = LOCAL_USER
    video_id: str | None = None
    asr_model: str | None = None
    retry: RetryPolicy = RetryPolicy()


class Events(Protocol):
    """What the engine reports while it runs (a CLI draws progress bars from these)."""

    def stage(self, name: str) -> None: ...

    def stage_progress(self, done: float, total: float) -> None:
        """How far the current stage is (transcription: seconds of audio)."""
        ...

    def shorts_planned(self, count: int) -> None: ...

    def short_progress(self, segment: int, done: int, total: int) -> None: ...

    def short_finished(self, segment: int, reused: bool) -> None: ...

    def short_retrying(self, segment: int, error: str, delay: float) -> None: ...


class WorkerDiedError(ChildProcessError):
    """The worker process rendering a short died: the OOM killer's SIGKILL, or a crash.

    A ``ChildProcessError``, so :func:`~klippers.jobs.runner.exit_code` calls it transient.
    """


class ChildJobError(Exception):
    """A child job failed: the original error's class name, message and exit code.

    Made in the worker, where the causes of the error are still at hand (they do not cross
    the process boundary), and picklable whatever the original error was.
    """

    def __init__(self, kind: str, message: str, code: int) -> None:
        super().__init__(kind, message, code)
        self.kind = kind
        self.message = message
        self.code = code

    @classmethod
    def of(cls, error: BaseException) -> ChildJobError:
        """``error`` as a child job error (itself if it is one)."""
        if isinstance(error, ChildJobError):
            return error
        return cls(type(error).__name__, str(error), exit_code(error))

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class ShortFailure:
    """Why a short failed for good: the error's class and message, its exit code, the tries."""

    error: str
    message: str
    exit_code: int
    attempts: int

    def __str__(self) -> str:
        tries = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
        return f"{self.error}: {self.message} (exit {self.exit_code}, {tries})"


@dataclass(frozen=True)
class LocalResult:
    """Where everything went."""

    ref: VideoRef
    folder: Path
    parent: ParentResult
    manifest: dict[str, Any]
    gallery: Path
    failed: dict[int, ShortFailure]


def run_local(video: Path, out: Path, options: RunOptions, events: Events) -> LocalResult:
    """Run the whole job for ``video`` in the warehouse folder ``out``."""
    klipmedia.probe(video)  # fail fast, with a clear message, on a bad file
    if options.scorer is not None:
        scorer_recipe(options.scorer)  # and on a scorer that is not set up
    storage = LocalStorage(out)
    ref = VideoRef(options.user, options.video_id or video_id_for(video.name))
    events.stage("prepare")
    prepare_inputs(storage, ref, video, options)
    with scratch(out / ".work") as work:
        parent = run_parent(
            ref,
            storage,
            Path(work),
            asr_model=options.asr_model,
            stage=events.stage,
            progress=events.stage_progress,
        )
    release_freed_memory()
    events.stage("render")
    events.shorts_planned(parent.segment_count)
    failed = render_children(out, ref, [e["index"] for e in parent.segments], options, events)
    manifest = read_manifest(storage, ref) or {"segments": [], "message": None}
    events.stage("gallery")
    video_folder = out / ref.prefix
    gallery = write_gallery(video_folder, manifest, title=f"Shorts from {video.name}")
    return LocalResult(ref, video_folder, parent, manifest, gallery, failed)


def release_freed_memory() -> bool:
    """Give the heap memory this process freed back to the system (glibc's ``malloc_trim``);
    whether it could. After the parent (the ASR model and its buffers), glibc keeps about
    115 MB of freed heap on a 5-minute talk that the render workers could use instead."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False  # not glibc (macOS, musl): its allocator returns memory its own way
    libc.malloc_trim(0)
    return True


def prepare_inputs(storage: LocalStorage, ref: VideoRef, video: Path, options: RunOptions) -> None:
    """Put the original, its config (merged with the options) and a thumbnail in place.

    Before the original is copied, the disks must hold the copy, the shorts and its audio
    decoded for transcription.
    """
    if not storage.is_current(ref.original_video, video):
        audio = decoded_audio(klipmedia.probe(video).duration)
        require_free_space(
            [(storage.root, video.stat().st_size + SHORTS_DISK_RESERVE), audio],
            f"a copy of {video.name} in the warehouse, with its audio decoded",
            "free some, or give another --out folder",
        )
        storage.upload(video, ref.original_video)
    config = _config(storage, ref, options)
    if options.background is not None:
        if not storage.is_current(ref.key(UPLOADED_BACKGROUND), options.background):
            storage.upload(options.background, ref.key(UPLOADED_BACKGROUND))
        config = ShortsConfig.from_dict(
            {**config.to_dict(), "background_video": UPLOADED_BACKGROUND}, ref=ref
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
        "scorer": options.scorer,
    }
    return ShortsConfig.from_dict(
        {**current, **{k: v for k, v in changes.items() if v is not None}}, ref=ref
    )


def default_workers(cores: int, available_memory: int | None) -> int:
    """One render per core, as far as ``available_memory`` (bytes; None: unknown) allows."""
    if available_memory is None:
        return max(1, cores)
    return max(1, min(cores, available_memory // RENDER_MEMORY_BYTES))


def available_memory(
    meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Bytes of memory this process tree may still use: the kernel's ``MemAvailable``,
    lowered by a cgroup v2 limit (a container's); None where neither can be read."""
    found: list[int] = []
    with contextlib.suppress(OSError, ValueError):
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    return max(0, min(found)) if found else None


def encoder_threads(cores: int, workers: int) -> int:
    """x264 threads per render when ``workers`` renders share ``cores`` (0: x264's choice).

    x264 alone takes 1.5 threads per core, and every thread holds pictures in memory;
    side by side, the renders share that count instead of each taking all of it.
    """
    if workers <= 1:
        return 0
    return max(2, math.ceil(1.5 * cores / workers))


def child_worker(
    out: str, user: str, video: str, segment: int, threads: int, messages: Messages
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


def render_children(
    out: Path,
    ref: VideoRef,
    segments: list[int],
    options: RunOptions,
    events: Events,
    *,
    child: ChildJob = child_worker,
) -> dict[int, ShortFailure]:
    """Render every short in worker processes; return the shorts that failed for good.

    Each worker runs ``child`` for one short. A failed short waits out its back-off while
    the others go on; a worker that dies costs only the short it ran (see :class:`_Scheduler`).
    """
    if not segments:
        return {}
    cores = cpu_cores()
    wanted = options.workers or default_workers(cores, available_memory())
    workers = max(1, min(wanted, len(segments)))
    log.info("rendering %d shorts, %d at a time", len(segments), workers)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        scheduler = _Scheduler(
            _Job(child, str(out), ref, encoder_threads(cores, workers)),
            workers,
            context,
            options.retry,
            events,
            manager.Queue(),
            manager.dict(),
            segments,
        )
        return scheduler.run()


@dataclass(frozen=True)
class _Job:
    """What every worker is given besides the segment."""

    child: ChildJob
    out: str
    ref: VideoRef
    threads: int


@dataclass(frozen=True)
class _Run:
    """One submission of a short; ``token`` keys the worker's pid in the shared ``started``."""

    segment: int
    token: int


class _Scheduler:
    """Submits the shorts, passes progress on, retries failures and replaces a broken pool.

    One loop waits for the first finished short, at most until the next retry is due (and
    :data:`_POLL_SECONDS`, for progress); a short waiting out its back-off holds up nothing.
    When a worker dies, the pool fails every short in it: the pool is replaced, the short
    whose worker died (told by the workers' exit codes: the others end by the pool's
    SIGTERM) counts an attempt, and the others are submitted again for free. When no dead
    worker ran a known short, every short that had started counts one, or all of them if
    none had, so that a pool that keeps breaking still comes to an end.
    """

    def __init__(
        self,
        job: _Job,
        workers: int,
        context: SpawnContext,
        policy: RetryPolicy,
        events: Events,
        messages: Messages,
        started: MutableMapping[int, int],
        segments: list[int],
    ) -> None:
        self.job = job
        self.workers = workers
        self.context = context
        self.delays = policy.delays()
        self.events = events
        self.messages = messages
        self.started = started
        self.tokens = itertools.count()
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self.processes: dict[int, BaseProcess] = {}  # the pool's workers by pid
        self.ready = list(segments)
        self.waiting: dict[int, float] = {}  # segment -> time.monotonic() its retry is due
        self.running: dict[Future[bool], _Run] = {}
        self.retries = dict.fromkeys(segments, 0)
        self.failed: dict[int, ShortFailure] = {}

    def run(self) -> dict[int, ShortFailure]:
        """Render every short to the end; return the shorts that failed for good."""
        try:
            while self.ready or self.waiting or self.running:
                self._submit_due()
                done, _ = wait(self.running, timeout=self._timeout(), return_when=FIRST_COMPLETED)
                self._drain()
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    self._replace_pool()
                    continue
                for future in done:
                    self._settle(future)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self._drain()
        return self.failed

    def _timeout(self) -> float:
        if not self.waiting:
            return _POLL_SECONDS
        return max(0.0, min(_POLL_SECONDS, min(self.waiting.values()) - time.monotonic()))

    def _submit_due(self) -> None:
        now = time.monotonic()
        for segment in sorted(n for n, due in self.waiting.items() if due <= now):
            del self.waiting[segment]
            self.ready.append(segment)
        while self.ready:
            run = _Run(self.ready[0], next(self.tokens))
            try:
                future = self.pool.submit(
                    _run_child,
                    self.job.child,
                    run.token,
                    self.started,
                    self.job.out,
                    self.job.ref.user_id,
                    self.job.ref.video_id,
                    run.segment,
                    self.job.threads,
                    self.messages,
                )
            except BrokenProcessPool:
                self._replace_pool()
                continue
            self.ready.pop(0)
            self.running[future] = run
            # Workers start in submit(); keep them to read their exit codes if the pool breaks.
            self.processes.update((p.pid, p) for p in multiprocessing.active_children() if p.pid)

    def _settle(self, future: Future[bool]) -> None:
        run = self.running.pop(future)
        error = future.exception()
        if error is None:
            self.events.short_finished(run.segment, reused=future.result())
        else:
            self._failed_attempt(run.segment, error)

    def _failed_attempt(self, segment: int, error: BaseException) -> None:
        """Schedule the retry of ``segment`` after its back-off, or record it as failed."""
        failure = ChildJobError.of(error)
        used = self.retries[segment]
        if failure.code == EXIT_TRANSIENT and used < len(self.delays):
            self.retries[segment] = used + 1
            delay = self.delays[used]
            self.waiting[segment] = time.monotonic() + delay
            log.warning("short %d failed (%s); retrying in %.0f s", segment, failure, delay)
            self.events.short_retrying(segment, str(failure), delay)
            return
        self.failed[segment] = ShortFailure(failure.kind, failure.message, failure.code, used + 1)
        log.error(
            "short %d failed: %s",
            segment,
            self.failed[segment],
            exc_info=error if failure.code == EXIT_FAILURE else None,
        )

    def _replace_pool(self) -> None:
        """A worker died and the pool failed its shorts: blame the dead one, resubmit the rest."""
        self.pool.shutdown(wait=True)  # the broken pool has ended its workers: join them
        self._drain()
        broken: list[_Run] = []
        for future in list(self.running):
            if isinstance(future.exception(), BrokenProcessPool):
                broken.append(self.running.pop(future))
            else:
                self._settle(future)  # finished before the pool broke
        pids = dict(self.started)
        dead = {
            pid: p.exitcode
            for pid, p in self.processes.items()
            if p.exitcode not in (None, 0, -signal.SIGTERM)
        }
        blamed = (
            [r for r in broken if pids.get(r.token) in dead]
            or [r for r in broken if r.token in pids]
            or broken
        )
        for run in sorted(broken, key=lambda r: r.segment):
            if run in blamed:
                pid = pids.get(run.token)
                code = dead.get(pid) if pid is not None else None
                self._failed_attempt(run.segment, WorkerDiedError(_death(pid, code)))
            else:
                log.info("short %d was in the broken pool: submitted again", run.segment)
                self.ready.append(run.segment)
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=self.context)
        self.processes = {}

    def _drain(self) -> None:
        while True:
            try:
                segment, done, total = self.messages.get_nowait()
            except queue.Empty:
                return
            self.events.short_progress(segment, done, total)


def _death(pid: int | None, code: int | None) -> str:
    """How a worker died, from its exit code (negative: the signal that ended it)."""
    who = f"worker process {pid}" if pid else "a worker process"
    if code is None:
        return f"{who} died while it rendered this short or another"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"{who} was killed by {name}{hint}"
    return f"{who} exited with code {code}"


def _run_child(
    child: ChildJob,
    token: int,
    started: MutableMapping[int, int],
    out: str,
    user: str,
    video: str,
    segment: int,
    threads: int,
    messages: Messages,
) -> bool:
    """Run ``child`` in this worker, noting first that this process runs submission ``token``."""
    started[token] = os.getpid()
    try:
        return child(out, user, video, segment, threads, messages)
    except Exception as error:
        raise ChildJobError.of(error) from error
