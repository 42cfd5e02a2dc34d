"""The exit classes the local engine retries by (and the jobs exit with): exit_code."""

from __future__ import annotations

import errno
import json

import pytest

from klipmedia.errors import (
    CaptionError,
    EmptyMediaError,
    KlipmediaError,
    MediaNotFoundError,
    RenderError,
    UnreadableMediaError,
)
from klipmedia.faces import ReframeError
from klippers.contract import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_TRANSIENT, ContractError
from klippers.jobs.runner import JobInputError, exit_code
from klippers.local import WorkerDiedError
from klippers.storage import (
    StorageError,
    StorageKeyNotFoundError,
    StoragePermissionError,
    StorageUnavailableError,
)


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
    except BaseException as raised:
        return raised


def _json_error() -> json.JSONDecodeError:
    try:
        json.loads('{"segment_count": ')
    except json.JSONDecodeError as error:
        return error
    raise AssertionError("not reached")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        # Malformed or missing input: no retry can help.
        (ContractError("layout: unknown"), EXIT_BAD_INPUT),
        (JobInputError("the parent job has not finished"), EXIT_BAD_INPUT),
        (_json_error(), EXIT_BAD_INPUT),
        (UnreadableMediaError("talk.mp4: not a video"), EXIT_BAD_INPUT),
        (EmptyMediaError("talk.mp4: empty"), EXIT_BAD_INPUT),
        (MediaNotFoundError("talk.mp4: no such file"), EXIT_BAD_INPUT),
        (CaptionError("bad SRT"), EXIT_BAD_INPUT),
        (ReframeError("bad reframe settings"), EXIT_BAD_INPUT),
        (KlipmediaError("unknown layout 'wide'"), EXIT_BAD_INPUT),
        (FileNotFoundError(errno.ENOENT, "No such file", "talk.mp4"), EXIT_BAD_INPUT),
        (StorageKeyNotFoundError("original.mp4"), EXIT_BAD_INPUT),
        (StoragePermissionError("access denied"), EXIT_BAD_INPUT),
        # I/O errors and truncated reads or downloads: a later try may succeed.
        (OSError(errno.EIO, "Input/output error"), EXIT_TRANSIENT),
        (OSError(errno.ENOSPC, "No space left on device"), EXIT_TRANSIENT),
        (ConnectionResetError("reset by peer"), EXIT_TRANSIENT),
        (TimeoutError("read timed out"), EXIT_TRANSIENT),
        (EOFError("Compressed file ended before the end-of-stream marker"), EXIT_TRANSIENT),
        (StorageUnavailableError("s3://b/k: IncompleteReadError"), EXIT_TRANSIENT),
        (MemoryError(), EXIT_TRANSIENT),
        (WorkerDiedError("worker process 7 was killed by SIGKILL"), EXIT_TRANSIENT),
        (_raised_from(StorageError("k: I/O error"), OSError(errno.EIO, "EIO")), EXIT_TRANSIENT),
        (_raised_from(RenderError("finishing failed"), OSError(errno.EIO, "EIO")), EXIT_TRANSIENT),
        # Bugs, and errors that wrap nothing transient.
        (RenderError("finishing the output failed"), EXIT_FAILURE),
        (_raised_from(RuntimeError("wrapped"), ValueError("inner")), EXIT_FAILURE),
        (StorageError("invalid storage key"), EXIT_FAILURE),
        (KeyError("index"), EXIT_FAILURE),
        (TypeError("unexpected argument"), EXIT_FAILURE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_exit_classes(error: BaseException, code: int) -> None:
    assert exit_code(error) == code
