"""The local engine under failure: retries, killed workers and exit classes in render_children.

The workers run the module-level children below instead of rendering. They coordinate
through marker files in ``out`` (the first argument every child gets), so each test sets
up the interleaving it needs without timing; retry delays are scaled down by the policy.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest

from klippers.contract import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_TRANSIENT,
    ContractError,
    VideoRef,
)
from klippers.local import (
    ChildJob,
    Messages,
    RetryPolicy,
    RunOptions,
    ShortFailure,
    render_children,
)
from klippers.storage import StorageError

REF = VideoRef("local", "talk")
FAST = RetryPolicy(interval=0.05)  # the cloud's 2 retries and back-off, 1/600 of the waits
_PATIENCE = 60.0  # seconds a child waits for another before it gives up (a failed test)


class Stop(Exception):
    """Raised by the events to end a run early."""


class Recorder:
    """The engine's events, in order; a retry also leaves ``N.retrying`` in ``out`` for the
    children to wait on. Stops the run when short ``stop_after`` is reported finished."""

    def __init__(self, out: Path, stop_after: int | None = None) -> None:
        self.out = out
        self.calls: list[tuple[object, ...]] = []
        self.stop_after = stop_after

    def stage(self, name: str) -> None:
        self.calls.append(("stage", name))

    def stage_progress(self, done: float, total: float) -> None:
        pass

    def shorts_planned(self, count: int) -> None:
        self.calls.append(("planned", count))

    def short_progress(self, segment: int, done: int, total: int) -> None:
        self.calls.append(("progress", segment, done, total))

    def short_finished(self, segment: int, reused: bool) -> None:
        self.calls.append(("finished", segment))
        if segment == self.stop_after:
            raise Stop

    def short_retrying(self, segment: int, error: str, delay: float) -> None:
        self.calls.append(("retrying", segment, error, delay))
        (self.out / f"{segment}.retrying").touch()

    def index(self, *call: object) -> int:
        return next(i for i, c in enumerate(self.calls) if c[: len(call)] == call)

    def of(self, kind: str) -> list[tuple[object, ...]]:
        return [c for c in self.calls if c[0] == kind]


# --- children (module level: the spawned workers import them) ----------------------------------


def _attempt(out: str, segment: int) -> int:
    """Count this run of ``segment`` in ``out``; return which attempt it is (1-based)."""
    with (Path(out) / f"{segment}.attempts").open("a") as fh:
        fh.write("x")
        fh.flush()
        return int(fh.tell())


def _attempts(out: Path, segment: int) -> int:
    path = out / f"{segment}.attempts"
    return len(path.read_text()) if path.exists() else 0


def _await(path: Path) -> None:
    deadline = time.monotonic() + _PATIENCE
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never appeared")
        time.sleep(0.01)


def _fails_once(out: str, user: str, video: str, segment: int, threads: int, m: Messages) -> bool:
    """Short 1 fails with an I/O error on its first try; the others finish once the engine
    has scheduled its retry."""
    attempt = _attempt(out, segment)
    if segment == 1 and attempt == 1:
        raise OSError(errno.EIO, "disk hiccup")
    if segment != 1:
        _await(Path(out) / "1.retrying")
        m.put((segment, 1, 1))
    return False


def _killed_once(out: str, user: str, video: str, segment: int, threads: int, m: Messages) -> bool:
    """Short 1's first worker is SIGKILLed while short 2 runs; 2 finishes only after 1 has."""
    attempt = _attempt(out, segment)
    if segment == 1 and attempt == 1:
        _await(Path(out) / "2.started")
        os.kill(os.getpid(), signal.SIGKILL)
    if segment == 1:
        (Path(out) / "1.done").touch()
    if segment == 2:
        (Path(out) / "2.started").touch()
        _await(Path(out) / "1.done")
    return False


def _always_killed(
    out: str, user: str, video: str, segment: int, threads: int, m: Messages
) -> bool:
    """Short 1 kills its worker every time."""
    _attempt(out, segment)
    if segment == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return False


class UnpicklableError(Exception):
    """An error whose pickle cannot be loaded again (two arguments, one in ``args``)."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def _fails_as_told(
    out: str, user: str, video: str, segment: int, threads: int, m: Messages
) -> bool:
    """Short 1 always fails with the error named in ``out/error``."""
    _attempt(out, segment)
    if segment != 1:
        return False
    kind = (Path(out) / "error").read_text()
    if kind == "bad input":
        raise ContractError("segment: not in the manifest")
    if kind == "bug":
        raise KeyError("index")
    if kind == "unpicklable":
        raise UnpicklableError("short 1", "broke")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as exc:
        raise StorageError("shorts/1.mp4: No space left on device") from exc


def _run(
    out: Path, child: ChildJob, events: Recorder, policy: RetryPolicy = FAST, segments: int = 3
) -> dict[int, ShortFailure]:
    options = RunOptions(workers=2, retry=policy)
    return render_children(out, REF, list(range(1, segments + 1)), options, events, child=child)


# --- tests --------------------------------------------------------------------------------------


def test_other_shorts_finish_while_a_retry_waits(tmp_path: Path) -> None:
    # The cloud's real 30 s back-off: the run is stopped as soon as short 2 is reported,
    # which must happen while short 1 waits (an engine that sleeps reports it 30 s later,
    # after submitting short 1 again).
    events = Recorder(tmp_path, stop_after=2)
    with pytest.raises(Stop):
        _run(tmp_path, _fails_once, events, RetryPolicy(), segments=2)
    assert events.index("retrying", 1) < events.index("progress", 2) < events.index("finished", 2)
    assert _attempts(tmp_path, 1) == 1  # still waiting out its back-off when stopped


def test_a_transient_failure_is_retried_after_its_back_off(tmp_path: Path) -> None:
    events = Recorder(tmp_path)
    failed = _run(tmp_path, _fails_once, events)
    assert failed == {}
    retry = events.of("retrying")
    assert [(c[1], c[3]) for c in retry] == [(1, 0.05)]
    assert "OSError" in str(retry[0][2])
    assert "disk hiccup" in str(retry[0][2])
    assert events.index("retrying", 1) < events.index("finished", 2)
    assert events.index("retrying", 1) < events.index("finished", 3)
    assert {c[1] for c in events.of("finished")} == {1, 2, 3}
    assert [_attempts(tmp_path, n) for n in (1, 2, 3)] == [2, 1, 1]


def test_a_killed_worker_costs_only_its_own_short(tmp_path: Path) -> None:
    events = Recorder(tmp_path)
    failed = _run(tmp_path, _killed_once, events)
    assert failed == {}
    assert {c[1] for c in events.of("finished")} == {1, 2, 3}
    # Only short 1 counts an attempt; short 2, running beside it, was submitted again freely.
    [retry] = events.of("retrying")
    assert retry[1] == 1
    assert "WorkerDiedError" in str(retry[2])
    assert "SIGKILL" in str(retry[2])
    assert _attempts(tmp_path, 1) == 2
    assert _attempts(tmp_path, 2) == 2


def test_a_short_that_keeps_killing_its_worker_fails_alone(tmp_path: Path) -> None:
    events = Recorder(tmp_path)
    failed = _run(tmp_path, _always_killed, events)
    assert set(failed) == {1}
    assert failed[1].error == "WorkerDiedError"
    assert failed[1].exit_code == EXIT_TRANSIENT
    assert failed[1].attempts == 3
    assert "SIGKILL" in str(failed[1])
    assert [c[1] for c in events.of("retrying")] == [1, 1]
    assert {c[1] for c in events.of("finished")} == {2, 3}
    assert _attempts(tmp_path, 1) == 3


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "bad input",
            ShortFailure("ContractError", "segment: not in the manifest", EXIT_BAD_INPUT, 1),
        ),
        ("bug", ShortFailure("KeyError", "'index'", EXIT_FAILURE, 1)),
        ("unpicklable", ShortFailure("UnpicklableError", "short 1: broke", EXIT_FAILURE, 1)),
        (
            "wrapped I/O error",
            ShortFailure(
                "StorageError", "shorts/1.mp4: No space left on device", EXIT_TRANSIENT, 3
            ),
        ),
    ],
)
def test_only_transient_failures_are_retried(
    tmp_path: Path, kind: str, expected: ShortFailure
) -> None:
    (tmp_path / "error").write_text(kind)
    events = Recorder(tmp_path)
    failed = _run(tmp_path, _fails_as_told, events)
    assert failed == {1: expected}
    assert str(failed[1]).startswith(f"{expected.error}: {expected.message} (exit ")
    assert len(events.of("retrying")) == expected.attempts - 1
    assert _attempts(tmp_path, 1) == expected.attempts
    assert {c[1] for c in events.of("finished")} == {2, 3}
