"""The cloud warehouse from the user's side: upload a video's inputs, check them, fetch shorts.

Examples
--------
>>> slug("My Talk (final).mp4")
'my-talk-final'
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from klippers.cloud.clients import CloudInputError
from klippers.contract import (
    SEGMENTS_DIR,
    SHORTS_DIR,
    THUMBNAIL,
    ContractError,
    ShortsConfig,
    VideoRef,
    video_id_for,
)
from klippers.storage import Progress, Storage

_THUMBNAIL_WIDTH = 640


class MissingInputsError(CloudInputError):
    """Inputs the pipeline needs are not in the warehouse; ``keys`` names them."""

    def __init__(self, where: str, keys: tuple[str, ...]) -> None:
        listed = ", ".join(keys)
        super().__init__(
            f"missing in {where}: {listed} (upload first: klip cloud upload VIDEO.mp4 ...)"
        )
        self.keys = keys


def slug(file_name: str) -> str:
    """A video ID from a file name (see :func:`klippers.contract.video_id_for`)."""
    try:
        return video_id_for(file_name)
    except ContractError as exc:
        raise CloudInputError(f"{exc}; pass --video") from exc


@dataclass(frozen=True)
class Upload:
    """What :func:`upload` stored: every key, and whether the video was already current."""

    ref: VideoRef
    keys: tuple[str, ...]
    config: ShortsConfig
    video_already_current: bool
    duration_seconds: float


def upload(
    storage: Storage,
    video: Path,
    ref: VideoRef,
    *,
    shorts: int,
    short_seconds: float,
    progress: Progress | None = None,
) -> Upload:
    """Check ``video`` and store ``original.mp4``, ``thumbnail.png`` and ``shorts_config.json``.

    The config is written last, so a warehouse holding it holds the whole input. An
    ``original.mp4`` already holding the same bytes (by SHA-256) is not sent again.

    Raises
    ------
    klipmedia.errors.MediaError
        ``video`` is missing, empty, unreadable or has no video stream.
    CloudInputError
        ``shorts`` or ``short_seconds`` break the ``shorts_config.json`` contract.
    """
    from klipmedia.probe import probe
    from klipmedia.thumbnail import thumbnail

    info = probe(video)
    try:
        config = ShortsConfig(
            segment_count=shorts,
            target_short_video_duration_in_seconds=short_seconds,
            user_id=ref.user_id,
            video_id=ref.video_id,
        )
    except ContractError as exc:
        raise CloudInputError(str(exc)) from exc
    current = storage.is_current(ref.original_video, video)
    if not current:
        storage.upload(video, ref.original_video, progress)
    with tempfile.TemporaryDirectory(prefix="klippers-thumb-") as folder:
        still = thumbnail(video, Path(folder) / THUMBNAIL, width=_THUMBNAIL_WIDTH)
        storage.upload(still, ref.thumbnail)
    storage.write_bytes(ref.shorts_config, config.to_json().encode("utf-8"))
    return Upload(ref, ref.input_keys(), config, current, info.duration)


def check_inputs(storage: Storage, ref: VideoRef) -> ShortsConfig:
    """Raise :class:`MissingInputsError` unless every uploaded input of ``ref`` exists.

    One listing of the video folder (no ``HeadObject``, which answers 403 instead of 404
    without ``s3:ListBucket``); then ``shorts_config.json`` is read and validated.
    """
    present = set(storage.list(ref.prefix))
    missing = tuple(key for key in ref.input_keys() if key not in present)
    if missing:
        raise MissingInputsError(storage.describe(), missing)
    try:
        return ShortsConfig.from_json(storage.read_bytes(ref.shorts_config).decode("utf-8"))
    except (ContractError, UnicodeDecodeError) as exc:
        raise CloudInputError(f"{storage.describe(ref.shorts_config)}: {exc}") from exc


@dataclass(frozen=True)
class Downloaded:
    """Files :func:`download` wrote or found current."""

    written: tuple[Path, ...]
    already_current: tuple[Path, ...]


def download(storage: Storage, ref: VideoRef, dest: Path) -> Downloaded:
    """Fetch the shorts, the manifest and the segment SRTs of ``ref`` into ``dest`` (flat).

    Files already holding the stored content are left alone.
    """
    keys = [
        key
        for key in storage.list(ref.prefix)
        if (key.startswith(f"{ref.prefix}{SHORTS_DIR}/") and key.endswith(".mp4"))
        or (key.startswith(f"{ref.prefix}{SEGMENTS_DIR}/") and key.endswith(".srt"))
        or key == ref.manifest
    ]
    if not any(key.startswith(f"{ref.prefix}{SHORTS_DIR}/") for key in keys):
        raise CloudInputError(
            f"no shorts in {storage.describe()}{ref.prefix} yet (see klip cloud status)"
        )
    if dest.exists() and not dest.is_dir():
        raise CloudInputError(f"{dest}: not a folder")
    written: list[Path] = []
    current: list[Path] = []
    for key in keys:
        target = dest / key.rpartition("/")[2]
        if target.is_file() and storage.is_current(key, target):
            current.append(target)
            continue
        storage.download(key, target)
        written.append(target)
    return Downloaded(tuple(written), tuple(current))
