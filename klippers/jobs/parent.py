"""The parent job: transcribe the original, choose the best segments, cut them.

Run as ``python -m klippers.parent`` with ``USER_ID``, ``VIDEO_ID`` and the warehouse
(``VIDEO_WAREHOUSE_S3_BUCKET_NAME`` or ``KLIPPERS_WAREHOUSE``) in the environment.
A re-run is safe: a finished run with the same inputs is a no-op, and a transcript
already made from the same original is reused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import klipmedia
from klipmedia.cut import CutSettings
from klippers.asr.loudness import loudness_per_second
from klippers.asr.subtitles import write_transcript_files
from klippers.asr.transcribe import transcribe_file
from klippers.asr.transcript import Transcript
from klippers.contract import MANIFEST, ORIGINAL_VIDEO, SHORTS_DIR, ShortsConfig, VideoRef
from klippers.jobs.runner import JobEnvironment, JobInputError, run_main, scratch
from klippers.jobs.segments import write_manifest, write_segments
from klippers.selection.highlights import select_highlights
from klippers.storage import Storage, StorageKeyNotFoundError, file_sha256

log = logging.getLogger(__name__)

Stage = Callable[[str], None]
"""Called with the name of each stage as it starts (for progress displays)."""


@dataclass(frozen=True)
class ParentResult:
    """What the parent wrote (or found already written)."""

    segments: tuple[dict[str, Any], ...]
    message: str | None
    reused: bool

    @property
    def segment_count(self) -> int:
        """Number of segments written."""
        return len(self.segments)


def read_config(storage: Storage, ref: VideoRef) -> ShortsConfig:
    """The video's ``shorts_config.json``, validated against its location."""
    try:
        raw = storage.read_bytes(ref.shorts_config)
    except StorageKeyNotFoundError as exc:
        raise JobInputError(f"{storage.describe(ref.shorts_config)} is missing") from exc
    return ShortsConfig.from_json(raw, ref=ref)


def read_manifest(storage: Storage, ref: VideoRef) -> dict[str, Any] | None:
    """The manifest, or None when the parent has not finished."""
    try:
        doc: dict[str, Any] = json.loads(storage.read_bytes(ref.manifest))
    except StorageKeyNotFoundError:
        return None
    return doc


def run_parent(
    ref: VideoRef,
    storage: Storage,
    workdir: Path,
    *,
    asr_model: str | None = None,
    cut: CutSettings | None = None,
    stage: Stage | None = None,
) -> ParentResult:
    """Transcribe, choose and cut the segments of one video in the warehouse."""
    report = stage or (lambda name: None)
    config = read_config(storage, ref)
    report("download")
    video = _download_original(storage, ref, workdir)
    source = {"sha256": file_sha256(video), "size": video.stat().st_size}
    request = _request(config)
    previous = read_manifest(storage, ref)
    if previous is not None and _is_current(previous, source, request, config):
        log.info("%s is up to date; nothing to do", storage.describe(ref.manifest))
        return ParentResult(tuple(previous["segments"]), previous.get("message"), reused=True)
    if not klipmedia.probe(video).has_audio:
        raise JobInputError(
            f"{storage.describe(ref.original_video)} has no audio track: "
            "there is no speech to find shorts in"
        )
    report("transcribe")
    transcript = _transcript(storage, ref, video, source, config, workdir, asr_model)
    report("select")
    result = select_highlights(
        transcript,
        count=config.segment_count or None,
        target_duration=config.target_short_video_duration_in_seconds,
        min_duration=config.min_duration,
        max_duration=config.max_duration,
        loudness=loudness_per_second(video),
    )
    if result.message:
        log.warning("%s", result.message)
    report("cut")
    segments = write_segments(
        video, transcript, result.highlights, workdir, settings=cut or CutSettings()
    )
    entries = [{**entry, "reframe": config.reframe} for entry in segments]
    _publish(storage, ref, workdir, config, entries, result.message, source, request)
    return ParentResult(tuple(entries), result.message, reused=False)


def _download_original(storage: Storage, ref: VideoRef, workdir: Path) -> Path:
    try:
        return storage.download(ref.original_video, workdir / ORIGINAL_VIDEO)
    except StorageKeyNotFoundError as exc:
        raise JobInputError(f"{storage.describe(ref.original_video)} is missing") from exc


def _request(config: ShortsConfig) -> dict[str, Any]:
    return {
        "segment_count": config.segment_count,
        "target_duration": config.target_short_video_duration_in_seconds,
        "min_duration": config.min_duration,
        "max_duration": config.max_duration,
        "language": config.language,
        "reframe": config.reframe,
    }


def _is_current(
    manifest: Mapping[str, Any],
    source: Mapping[str, Any],
    request: Mapping[str, Any],
    config: ShortsConfig,
) -> bool:
    """The manifest was made from this original with this request.

    The parent writes the real number of segments back into the config, so a config
    whose count equals the manifest's count still matches the original request.
    """
    made_from = manifest.get("request") or {}
    same_count = config.segment_count in (
        made_from.get("segment_count"),
        manifest.get("segment_count"),
    )
    rest = {k: v for k, v in request.items() if k != "segment_count"}
    return (
        manifest.get("source") == dict(source)
        and same_count
        and all(made_from.get(k) == v for k, v in rest.items())
    )


def _transcript(
    storage: Storage,
    ref: VideoRef,
    video: Path,
    source: Mapping[str, Any],
    config: ShortsConfig,
    workdir: Path,
    asr_model: str | None,
) -> Transcript:
    """Reuse the transcript made from this original, or transcribe and publish one."""
    try:
        doc = json.loads(storage.read_bytes(ref.original_words))
        if doc.get("source") == dict(source):
            log.info("reusing %s", storage.describe(ref.original_words))
            return Transcript.from_json(json.dumps(doc))
    except (StorageKeyNotFoundError, ValueError):
        pass
    transcript = transcribe_file(
        video, backend=config.asr_backend, model=asr_model, language=config.language
    )
    files = write_transcript_files(transcript, workdir / "transcript")
    doc = json.loads(files["words"].read_text(encoding="utf-8"))
    files["words"].write_text(json.dumps({**doc, "source": dict(source)}, ensure_ascii=False))
    storage.upload(files["srt"], ref.original_srt)
    storage.upload(files["text"], ref.original_txt)
    storage.upload(files["words"], ref.original_words)  # last: it marks the transcript done
    return transcript


def _publish(
    storage: Storage,
    ref: VideoRef,
    workdir: Path,
    config: ShortsConfig,
    entries: list[dict[str, Any]],
    message: str | None,
    source: Mapping[str, Any],
    request: Mapping[str, Any],
) -> None:
    """Upload the segments, drop stale shorts, record the count, write the manifest last."""
    for entry in entries:
        for relative in entry["files"].values():
            storage.upload(workdir / relative, ref.key(relative))
    for key in storage.list(ref.key(SHORTS_DIR) + "/"):
        log.info("removing stale short %s", key)
        storage.delete(key)
    storage.write_bytes(
        ref.shorts_config, config.with_segment_count(len(entries)).to_json().encode()
    )
    manifest = write_manifest(
        workdir / MANIFEST, entries, message, source=dict(source), request=dict(request)
    )
    storage.upload(manifest, ref.manifest)


def run_job(env: Mapping[str, str]) -> ParentResult:
    job = JobEnvironment.from_env(env)
    with scratch(job.workdir) as folder:
        return run_parent(job.ref, job.storage(), Path(folder))


def main() -> int:
    """Entry point of ``python -m klippers.parent``."""
    return run_main("parent", run_job)
