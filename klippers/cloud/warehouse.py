"""The cloud warehouse from the user's side: upload a video's inputs, check them, fetch shorts.

Examples
--------
>>> slug("My Talk (final).mp4")
'my-talk-final'
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klippers.cloud.clients import CloudInputError
from klippers.contract import (
    SEGMENTS_DIR,
    SHORTS_CONFIG,
    SHORTS_DIR,
    THUMBNAIL,
    UPLOADED_BACKGROUND,
    ContractError,
    ShortsConfig,
    VideoRef,
    video_id_for,
)
from klippers.storage import Progress, Storage, read_if_exists

logger = logging.getLogger(__name__)

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


DEFAULT_SHORTS = 5
"""``segment_count`` of a first upload that does not choose one."""
"""Name of an uploaded background video in the video's folder (``klip run`` uses it too)."""


@dataclass(frozen=True)
class ConfigChanges:
    """The ``shorts_config.json`` fields a user sets; None keeps the stored value.

    ``background`` is a local video file to upload into the video's folder (a Path) or a
    key the config names as it is (text: ``backgrounds/NAME`` in the shared library).
    """

    shorts: int | None = None
    short_seconds: float | None = None
    layout: str | None = None
    reframe: str | None = None
    scorer: str | None = None
    caption_style: Mapping[str, Any] | None = None
    language: str | None = None
    background: Path | str | None = None

    def fields(self) -> dict[str, Any]:
        """The config fields these changes set (none for the values left as None)."""
        background = UPLOADED_BACKGROUND if isinstance(self.background, Path) else self.background
        values = {
            "segment_count": self.shorts,
            "target_short_video_duration_in_seconds": self.short_seconds,
            "layout": self.layout,
            "reframe": self.reframe,
            "scorer": self.scorer,
            "caption_style": self.caption_style,
            "language": self.language,
            "background_video": background,
        }
        return {name: value for name, value in values.items() if value is not None}


def merged_config(
    stored: Mapping[str, Any] | None, ref: VideoRef, changes: ConfigChanges
) -> ShortsConfig:
    """``stored`` (every field, unknown ones too) with ``changes`` on top, validated for ``ref``.

    Without a stored config, or one without ``segment_count``, ``DEFAULT_SHORTS`` are made.

    Raises
    ------
    CloudInputError
        The merged config breaks the contract (the message names the field).
    """
    doc: dict[str, Any] = {**(stored or {}), **changes.fields()}
    if doc.get("segment_count") is None:
        doc["segment_count"] = DEFAULT_SHORTS
    doc.update(user_id=ref.user_id, video_id=ref.video_id)
    try:
        config = ShortsConfig.from_dict(doc, ref=ref)
    except ContractError as exc:
        raise CloudInputError(str(exc)) from exc
    _check_caption_style(config)
    return config


def _check_caption_style(config: ShortsConfig) -> None:
    """Refuse now a ``caption_style`` that the child job would refuse later."""
    from klippers.jobs.child import caption_style

    try:
        caption_style(config)
    except ValueError as exc:
        problem = str(exc).removeprefix("caption_style: ")
        raise CloudInputError(f"{SHORTS_CONFIG}: caption_style: {problem}") from exc


def parse_stored_config(data: bytes, where: str) -> dict[str, Any]:
    """The JSON object of a stored ``shorts_config.json`` (``where`` names it in errors).

    Raises
    ------
    CloudInputError
        ``data`` is not a JSON object, which no flag can repair.
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CloudInputError(
            f"{where}: the stored config is not JSON ({exc}); fix or delete it"
        ) from None
    if not isinstance(doc, dict):
        raise CloudInputError(
            f"{where}: the stored config is not a JSON object "
            f"(got {type(doc).__name__}); fix or delete it"
        )
    return doc


@dataclass(frozen=True)
class Upload:
    """What :func:`upload` stored.

    ``keys`` are the video's inputs; ``unchanged`` those already holding the content, which
    were not sent again; ``merged`` tells whether a stored config was updated.
    """

    ref: VideoRef
    keys: tuple[str, ...]
    unchanged: tuple[str, ...]
    config: ShortsConfig
    merged: bool
    duration_seconds: float


def upload(
    storage: Storage,
    video: Path,
    ref: VideoRef,
    changes: ConfigChanges,
    *,
    progress: Progress | None = None,
) -> Upload:
    """Store ``video`` as ``original.mp4`` with a thumbnail and ``shorts_config.json``.

    The config is the stored one (if any) with ``changes`` on top. Everything is checked
    before the first write: the video, a background file, and the merged config. Then the
    original, the background and the thumbnail go up, and the config last, so a warehouse
    holding the new config holds everything it names. A file already holding the same
    bytes (by SHA-256) is not sent again; nor is the thumbnail of an unchanged original.

    Raises
    ------
    klipmedia.errors.MediaError
        ``video`` or the background is missing, empty, unreadable or has no video stream.
    CloudInputError
        The merged config breaks the ``shorts_config.json`` contract, or the stored one
        is not a JSON object.
    """
    from klipmedia.probe import probe

    info = probe(video)
    if isinstance(changes.background, Path):
        probe(changes.background)
    data = read_if_exists(storage, ref.shorts_config)
    stored = (
        None if data is None else parse_stored_config(data, storage.describe(ref.shorts_config))
    )
    config = merged_config(stored, ref, changes)
    text = config.to_json().encode("utf-8")
    keys = [ref.original_video]
    unchanged: list[str] = []
    if not _put(storage, video, ref.original_video, progress):
        unchanged.append(ref.original_video)
    if isinstance(changes.background, Path):
        keys.append(ref.key(UPLOADED_BACKGROUND))
        if not _put(storage, changes.background, keys[-1]):
            unchanged.append(keys[-1])
    keys.append(ref.thumbnail)
    if ref.original_video in unchanged and storage.exists(ref.thumbnail):
        unchanged.append(ref.thumbnail)
    else:
        _upload_thumbnail(storage, ref, video)
    keys.append(ref.shorts_config)
    if data == text:
        unchanged.append(ref.shorts_config)
    else:
        storage.write_bytes(ref.shorts_config, text)
    logger.info("stored the inputs of %s (%d unchanged)", ref.prefix, len(unchanged))
    return Upload(ref, tuple(keys), tuple(unchanged), config, stored is not None, info.duration)


def _put(storage: Storage, path: Path, key: str, progress: Progress | None = None) -> bool:
    """Upload ``path`` to ``key`` unless it holds the same bytes; whether it was sent."""
    if storage.is_current(key, path):
        return False
    storage.upload(path, key, progress)
    return True


def _upload_thumbnail(storage: Storage, ref: VideoRef, video: Path) -> None:
    from klipmedia.thumbnail import thumbnail

    with tempfile.TemporaryDirectory(prefix="klippers-thumb-") as folder:
        still = thumbnail(video, Path(folder) / THUMBNAIL, width=_THUMBNAIL_WIDTH)
        storage.upload(still, ref.thumbnail)


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
