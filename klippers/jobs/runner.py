"""What the parent and child jobs share: settings from the environment, logging, exit codes."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klipmedia.errors import KlipmediaError, RenderError
from klippers.asr.transcribe import AudioInputError, AudioNotFoundError, UnknownBackendError
from klippers.asr.transcript import TranscriptError
from klippers.contract import (
    ENV_BUCKET,
    ENV_LOG_FORMAT,
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_TRANSIENT,
    ContractError,
    ShortsConfig,
    VideoRef,
    recipe,
    recorded_digest,
)
from klippers.selection.highlights import HighlightsError
from klippers.storage import (
    Storage,
    StorageKeyNotFoundError,
    StorageUnavailableError,
    open_storage,
    read_if_exists,
)

log = logging.getLogger(__name__)

ENV_WAREHOUSE = "KLIPPERS_WAREHOUSE"
ENV_WORKDIR = "KLIPPERS_WORKDIR"

BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ContractError,
    KlipmediaError,
    AudioInputError,
    AudioNotFoundError,
    UnknownBackendError,
    StorageKeyNotFoundError,
    HighlightsError,
    TranscriptError,
    json.JSONDecodeError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
"""Wrong or missing input, or no right to read or write it: a retry cannot help (exit 2).

klipmedia's :class:`~klipmedia.errors.RenderError` is the exception: not the input's fault."""
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StorageUnavailableError,
    OSError,
    EOFError,
    MemoryError,
)
"""I/O errors, truncated reads and downloads, memory running out: a later try may succeed (75)."""


class JobInputError(ValueError):
    """The job's inputs are missing or inconsistent (no retry can help)."""


class DiskSpaceError(JobInputError):
    """An input is too big for the disk the job has: refused before it is copied or decoded."""


def require_free_space(needs: Iterable[tuple[Path, int]], what: str, remedy: str) -> None:
    """Raise :class:`DiskSpaceError` unless every disk has the bytes ``needs`` asks of its
    folders (``(folder, bytes)`` pairs, summed per disk; a folder not made yet is on its
    nearest existing parent's).

    ``what`` names what needs the space, ``remedy`` says which setting gives more.
    """
    disks: dict[int, tuple[Path, int]] = {}
    for folder, needed in needs:
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        device = existing.stat().st_dev
        first, total = disks.get(device, (existing, 0))
        disks[device] = (first, total + needed)
    for existing, needed in disks.values():
        free = shutil.disk_usage(existing).free
        if free < needed:
            raise DiskSpaceError(
                f"{what} needs about {_gigabytes(needed)} of disk, but {existing} has only "
                f"{_gigabytes(free)} free: {remedy}"
            )


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def read_config(storage: Storage, ref: VideoRef) -> ShortsConfig:
    """The video's ``shorts_config.json``, validated against its location."""
    try:
        raw = storage.read_bytes(ref.shorts_config)
    except StorageKeyNotFoundError as exc:
        raise JobInputError(f"{storage.describe(ref.shorts_config)} is missing") from exc
    return ShortsConfig.from_json(raw, ref=ref)


def read_recipe(storage: Storage, key: str) -> str | None:
    """The digest recorded by the recipe at ``key``; None when missing or unreadable."""
    data = read_if_exists(storage, key)
    try:
        return None if data is None else recorded_digest(json.loads(data))
    except ValueError:
        return None


def write_recipe(storage: Storage, key: str, inputs: Mapping[str, Any]) -> None:
    """Record at ``key`` that an output was made from ``inputs``.

    The writer deletes the old recipe before it replaces the output and calls this after,
    so an output is never taken as made from a recipe it was not made from.
    """
    text = json.dumps(recipe(inputs), indent=1, sort_keys=True, ensure_ascii=False)
    storage.write_bytes(key, (text + "\n").encode())


def exit_code(error: BaseException) -> int:
    """The exit code for a job that failed with ``error``.

    Bad input (:data:`BAD_INPUT_ERRORS`, checked first: a missing input file is an
    ``OSError`` too) gives ``EXIT_BAD_INPUT``; :data:`TRANSIENT_ERRORS`, or an error raised
    ``from`` one (a storage or render error wrapping an I/O error), ``EXIT_TRANSIENT``;
    anything else, a bug, ``EXIT_FAILURE``.
    """
    bad = isinstance(error, (JobInputError, *BAD_INPUT_ERRORS))
    if bad and not isinstance(error, RenderError):
        return EXIT_BAD_INPUT
    if isinstance(error, TRANSIENT_ERRORS):
        return EXIT_TRANSIENT
    if error.__cause__ is not None and exit_code(error.__cause__) == EXIT_TRANSIENT:
        return EXIT_TRANSIENT
    return EXIT_FAILURE


@dataclass(frozen=True)
class JobEnvironment:
    """Where a job runs: which video, which warehouse, which scratch folder."""

    ref: VideoRef
    warehouse: str
    workdir: Path | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobEnvironment:
        """Read ``USER_ID``/``VIDEO_ID``, the warehouse (``KLIPPERS_WAREHOUSE``, a folder or
        ``s3://`` URL, else the bucket in ``VIDEO_WAREHOUSE_S3_BUCKET_NAME``) and
        ``KLIPPERS_WORKDIR``."""
        ref = VideoRef.from_env(env)
        warehouse = env.get(ENV_WAREHOUSE) or (
            f"s3://{env[ENV_BUCKET]}" if env.get(ENV_BUCKET) else None
        )
        if not warehouse:
            raise JobInputError(f"no warehouse: set {ENV_BUCKET} (S3) or {ENV_WAREHOUSE}")
        workdir = env.get(ENV_WORKDIR)
        return cls(ref, warehouse, Path(workdir) if workdir else None)

    def storage(self) -> Storage:
        """Open the warehouse."""
        return open_storage(self.warehouse)


class JsonLines(logging.Formatter):
    """One JSON object per line, for CloudWatch."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(env: Mapping[str, str], verbose: bool = False) -> None:
    """Readable lines locally; JSON lines when ``KLIPPERS_LOG_FORMAT=json`` (the cloud)."""
    handler = logging.StreamHandler(sys.stderr)
    if env.get(ENV_LOG_FORMAT, "").lower() == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def scratch(workdir: Path | None) -> tempfile.TemporaryDirectory[str]:
    """A scratch folder for one job run, removed afterwards."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="klippers-", dir=workdir)


def run_main(name: str, job: Callable[[Mapping[str, str]], object]) -> int:
    """Run ``job`` with the process environment; turn failures into an exit code and a log line."""
    env = dict(os.environ)
    configure_logging(env)
    try:
        job(env)
    except Exception as error:
        code = exit_code(error)
        kind = {EXIT_BAD_INPUT: "bad input", EXIT_TRANSIENT: "transient failure"}.get(
            code, "failed"
        )
        log.error("%s %s: %s", name, kind, error, exc_info=code == EXIT_FAILURE)
        return code
    return EXIT_OK
