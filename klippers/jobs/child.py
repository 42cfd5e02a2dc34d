"""The child job: render segment N as a finished vertical short.

Run as ``python -m klippers.child`` with ``USER_ID``, ``VIDEO_ID``, ``SEGMENT`` and the
warehouse in the environment. A short already in the warehouse is not rendered again
(the parent removes shorts that its new segments make stale).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import klipmedia
from klipmedia.captions import Captions
from klippers.contract import ENV_SEGMENT, REFRAMES, ShortsConfig, VideoRef, parse_segment
from klippers.jobs.parent import read_config, read_manifest
from klippers.jobs.runner import JobEnvironment, JobInputError, run_main, scratch
from klippers.storage import Storage, StorageKeyNotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChildResult:
    """The short's key, and whether it was already there."""

    key: str
    reused: bool


def run_child(
    ref: VideoRef,
    segment: int,
    storage: Storage,
    workdir: Path,
    *,
    encode: klipmedia.EncodeSettings | None = None,
    progress: klipmedia.render.Progress | None = None,
) -> ChildResult:
    """Render short ``segment`` of a video whose parent job has finished."""
    config = read_config(storage, ref)
    entry = _manifest_entry(storage, ref, segment)
    key = ref.short_video(segment)
    if storage.exists(key):
        log.info("%s already exists; nothing to do", storage.describe(key))
        return ChildResult(key, reused=True)
    clip = storage.download(ref.segment_video(segment), workdir / "segment.mp4")
    captions = _captions(storage, ref, segment, workdir)
    layout = klipmedia.Layout(config.layout)
    reframe = entry.get("reframe", "face")
    crop_path = None
    if reframe == "face" and layout.kind != "blurred":
        from klipmedia.reframe import face_path

        crop_path = face_path(clip, aspect=layout.crop_aspect)
    result = klipmedia.render_short(
        clip,
        workdir / "short.mp4",
        background=_background(storage, ref, config, workdir),
        captions=captions,
        layout=layout,
        crop_path=crop_path,
        style=caption_style(config),
        encode=encode,
        progress=progress,
    )
    storage.upload(result.path, key)
    log.info("wrote %s (%.1f s, audio %s)", storage.describe(key), result.duration, result.audio)
    return ChildResult(key, reused=False)


def _manifest_entry(storage: Storage, ref: VideoRef, segment: int) -> dict[str, Any]:
    manifest = read_manifest(storage, ref)
    if manifest is None:
        raise JobInputError(
            f"{storage.describe(ref.manifest)} is missing: "
            "the parent job has not finished for this video"
        )
    for entry in manifest["segments"]:
        if entry["index"] == segment:
            if entry.get("reframe", "face") not in REFRAMES:
                raise JobInputError(f"segment {segment}: unknown reframe {entry['reframe']!r}")
            return dict(entry)
    raise JobInputError(
        f"segment {segment} is not in the manifest ({manifest['segment_count']} segments)"
    )


def _captions(storage: Storage, ref: VideoRef, segment: int, workdir: Path) -> Captions:
    """Word-highlighted captions from the segment's words, else its SRT."""
    try:
        words = storage.download(ref.segment_words(segment), workdir / "segment.words.json")
        return Captions.from_words_json(words)
    except StorageKeyNotFoundError:
        srt = storage.download(ref.segment_srt(segment), workdir / "segment.srt")
        return Captions.from_srt(srt)


def _background(
    storage: Storage, ref: VideoRef, config: ShortsConfig, workdir: Path
) -> Path | None:
    """The configured background video (a key in the video's folder or in the warehouse)."""
    name = config.background_video
    if not name:
        return None
    for key in (ref.key(name), name):
        try:
            return storage.download(key, workdir / f"background{Path(name).suffix or '.mp4'}")
        except (StorageKeyNotFoundError, ValueError):
            continue
    raise JobInputError(f"background_video {name!r} is not in the warehouse")


def caption_style(config: ShortsConfig) -> klipmedia.CaptionStyle:
    """The caption style from the config's ``caption_style`` object."""
    options = dict(config.caption_style or {})
    known = {f.name for f in fields(klipmedia.CaptionStyle)} - {"font"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise JobInputError(
            f"caption_style: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    try:
        return klipmedia.CaptionStyle(**options)
    except TypeError as exc:
        raise JobInputError(f"caption_style: {exc}") from exc


def run_job(env: Mapping[str, str]) -> ChildResult:
    job = JobEnvironment.from_env(env)
    segment = parse_segment(env.get(ENV_SEGMENT, ""))
    with scratch(job.workdir) as folder:
        return run_child(job.ref, segment, job.storage(), Path(folder))


def main() -> int:
    """Entry point of ``python -m klippers.child``."""
    return run_main("child", run_job)
