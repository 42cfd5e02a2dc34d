"""The parent job: transcribe the original, choose the best segments, cut them.

Run as ``python -m klippers.parent`` with ``USER_ID``, ``VIDEO_ID`` and the warehouse
(``VIDEO_WAREHOUSE_S3_BUCKET_NAME`` or ``KLIPPERS_WAREHOUSE``) in the environment.

A re-run redoes exactly what changed: every output records what it was made from (a
recipe, see :mod:`klippers.contract`). The transcript is made again when the original or
the ASR settings changed; the segments when the original, the transcript or the selection
request changed; the thumbnail when the original changed. A segment whose files changed
takes its short with it, and segments and shorts beyond the new count are removed. When
nothing changed, the original is neither downloaded nor hashed again.

Before decoding the audio, the parent refuses (exit 2) a video whose decoded audio and
segments do not fit on its disk or, with ``KLIPPERS_PARENT_TIMEOUT_SECONDS`` set (the
cloud's attempt limit), whose attempt :mod:`klippers.workload` models as longer than that.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import klipmedia
from klipmedia.cut import CutSettings
from klippers.asr.loudness import loudness_of_samples
from klippers.asr.subtitles import write_transcript_files
from klippers.asr.transcribe import (
    SAMPLE_RATE,
    Progress,
    decode_audio,
    load_transcriber,
    resolve_backend,
    resolve_model,
)
from klippers.asr.transcript import Transcript
from klippers.contract import (
    ENV_PARENT_TIMEOUT,
    MANIFEST,
    ORIGINAL_VIDEO,
    ORIGINAL_WORDS,
    SEGMENTS_DIR,
    SHORTS_DIR,
    THUMBNAIL,
    ShortsConfig,
    VideoRef,
    recipe,
    recipe_digest,
    recorded_digest,
)
from klippers.jobs.runner import (
    JobEnvironment,
    JobInputError,
    read_config,
    read_recipe,
    require_free_space,
    run_main,
    scratch,
    write_recipe,
)
from klippers.jobs.segments import write_manifest, write_segments
from klippers.jobs.windows import merged_transcript
from klippers.selection.config import scorer_from_config, scorer_recipe
from klippers.selection.highlights import MAX_AUTO_SEGMENTS, select_highlights
from klippers.storage import (
    Fingerprint,
    Storage,
    StorageKeyNotFoundError,
    content_fingerprint,
    file_sha256,
    read_if_exists,
)
from klippers.workload import ASR_MODEL_CPU_FACTOR, cpu_cores, parent_stages

log = logging.getLogger(__name__)

Stage = Callable[[str], None]
"""Called with the name of each stage as it starts (for progress displays)."""
SEGMENT_BYTES_PER_ORIGINAL_BYTE = 0.25
"""Scratch disk the segments cut from an original take per byte of it (with smart cutting,
most of their bytes are the original's packets)."""
DISK_PER_ORIGINAL_BYTE = 1 + SEGMENT_BYTES_PER_ORIGINAL_BYTE
"""Scratch disk the parent needs per byte of a downloaded original: the copy and segments."""
DECODED_AUDIO_BYTES_PER_SECOND = SAMPLE_RATE * np.dtype(np.float32).itemsize
"""Disk the decoded audio takes per second of the original (16 kHz mono float32, about
230 MB an hour): an unnamed file in the temp folder (:func:`decode_audio`)."""
DISK_REMEDY = "free some, or on the cloud raise the stack's parentStorageGib"
TIME_REMEDY = (
    "raise the stack's parentTimeoutSeconds, give the parent more vCPUs (parentCpu), "
    "transcribe in windows on parallel tasks (shardTranscription), "
    "or use a smaller ASR model (asrModel)"
)


class TimeLimitError(JobInputError):
    """The attempt is modelled to take longer than its time limit: refused before transcribing."""


@dataclass(frozen=True)
class ParentResult:
    """What the parent wrote (or found already written).

    ``reused``: the segments were current, so none was cut again.
    """

    segments: tuple[dict[str, Any], ...]
    message: str | None
    reused: bool

    @property
    def segment_count(self) -> int:
        """Number of segments written."""
        return len(self.segments)


def read_manifest(storage: Storage, ref: VideoRef) -> dict[str, Any] | None:
    """The manifest, or None when the parent has not finished.

    Asked by listing first (:func:`~klippers.storage.read_if_exists`): a task role that may
    list only below the warehouse prefix gets 403, not 404, for a read of a missing key.
    """
    data = read_if_exists(storage, ref.manifest)
    if data is None:
        return None
    doc: dict[str, Any] = json.loads(data)
    return doc


class Original:
    """The original video: its identity from the warehouse, read in place from a local
    warehouse, else downloaded when first needed."""

    def __init__(self, storage: Storage, ref: VideoRef, workdir: Path, report: Stage) -> None:
        self._storage, self._key, self._report = storage, ref.original_video, report
        self._workdir = workdir
        self._path: Path | None = None

    def fingerprint(self) -> Fingerprint:
        found = self._storage.fingerprint(self._key)
        if found is None:
            raise JobInputError(f"{self._storage.describe(self._key)} is missing")
        return found

    def identity(self) -> dict[str, Any]:
        """Size and SHA-256 (the recorded digest; hashed from a copy only when none is)."""
        found = self.fingerprint()
        digest = found.sha256 or file_sha256(self.path())
        return {"size": found.size, "sha256": digest}

    def path(self) -> Path:
        """The file to read: the warehouse's own when local, else a copy made on first use."""
        if self._path is None:
            self._path = self._storage.local_file(self._key) or self._download()
        return self._path

    def _download(self) -> Path:
        size = self.fingerprint().size
        require_free_space(
            [(self._workdir, math.ceil(size * DISK_PER_ORIGINAL_BYTE))],
            f"{self._storage.describe(self._key)} ({size / 1e9:.1f} GB) with its segments",
            DISK_REMEDY,
        )
        self._report("download")
        return self._storage.download(self._key, self._workdir / ORIGINAL_VIDEO)


@dataclass(frozen=True)
class _Speech:
    """A transcript, the loudness of each second of its audio, and where the picture ends.

    The audio is decoded once, for the transcript and the loudness, and let go as soon as
    both are measured: only the per-second levels (one float a second) wait for selection.
    """

    transcript: Transcript
    loudness: npt.NDArray[np.float64]
    picture_end: float

    @classmethod
    def of(cls, transcript: Transcript, audio: np.ndarray, picture_end: float) -> _Speech:
        """``transcript`` with the loudness of ``audio`` (16 kHz mono)."""
        return cls(transcript, loudness_of_samples(audio, SAMPLE_RATE), picture_end)


@dataclass(frozen=True)
class _Attempt:
    """One attempt at a video, for the checks made before its audio is decoded: the original
    (as :meth:`Storage.describe` names it, and its bytes), the request, the scratch folder
    and the time limit in seconds (None: none)."""

    original: str
    size: int
    config: ShortsConfig
    workdir: Path
    time_limit: int | None

    def require_disk(self, duration: float) -> None:
        """:class:`DiskSpaceError` unless the audio of ``duration`` seconds, decoded, and
        the segments still to be cut fit (a downloaded original is on the disk already)."""
        segments = math.ceil(self.size * SEGMENT_BYTES_PER_ORIGINAL_BYTE)
        audio = decoded_audio(duration)
        require_free_space(
            [audio, (self.workdir, segments)],
            f"{self.original} ({duration / 60:.1f} min) decoded for transcription "
            f"({audio[1] / 1e9:.1f} GB) with its segments",
            DISK_REMEDY,
        )

    def require_time(self, duration: float, asr_model: str | None) -> None:
        """:class:`TimeLimitError` when the attempt, as :func:`~klippers.workload.parent_stages`
        models it on the cores the ASR uses, takes longer than the limit.

        ``asr_model`` None: nothing is transcribed (the transcript is current, or merged from
        windows). The model is an expectation, not a bound, and it is taken as it is, with
        no margin: a video is refused when, by the model, the limit would cut it off before
        the end; one modelled just within the limit may still run out of time.
        """
        if self.time_limit is None:
            return
        cores = cpu_cores()
        model = None if asr_model is None else figured_model(asr_model)
        target = self.config.target_short_video_duration_in_seconds
        segment_seconds = min(duration, (self.config.segment_count or MAX_AUTO_SEGMENTS) * target)
        share = segment_seconds / duration if duration > 0 else 0.0
        stages = parent_stages(
            vcpu=cores,
            original_megabytes=self.size / 1e6,
            audio_seconds=duration,
            asr_model=model,
            segment_seconds=segment_seconds,
            segment_megabytes=self.size / 1e6 * share,
        )
        modelled = sum(stage.wall_seconds for stage in stages)
        asr = [stage for stage in stages if stage.name.startswith("transcribe")]
        transcribing = (
            f"transcribing at {model}'s speed: {_minutes(asr[0].wall_seconds)}"
            if asr
            else "nothing to transcribe"
        )
        log.info("this attempt is modelled to take %s (%s)", _minutes(modelled), transcribing)
        if modelled > self.time_limit:
            raise TimeLimitError(
                f"{self.original} lasts {_minutes(duration)}: one parent attempt on {cores} "
                f"cores is modelled to take {_minutes(modelled)} ({transcribing}), more than "
                f"its time limit of {_minutes(self.time_limit)} (stack config "
                f"parentTimeoutSeconds, {ENV_PARENT_TIMEOUT}={self.time_limit}): {TIME_REMEDY}"
            )


def decoded_audio(duration: float) -> tuple[Path, int]:
    """Where :func:`decode_audio` puts the audio of ``duration`` seconds (the temp folder)
    and the bytes it takes there."""
    return Path(tempfile.gettempdir()), math.ceil(duration * DECODED_AUDIO_BYTES_PER_SECOND)


def figured_model(model: str) -> str:
    """The ASR model whose CPU figure stands for ``model``: itself, or the one its folder is
    named after (the cloud image's is); else the fastest, so that a model without a figure
    never makes the time model refuse more."""
    name = Path(model).name
    if name in ASR_MODEL_CPU_FACTOR:
        return name
    return min(ASR_MODEL_CPU_FACTOR, key=ASR_MODEL_CPU_FACTOR.__getitem__)


def time_limit(env: Mapping[str, str]) -> int | None:
    """One parent attempt's limit in seconds from ``KLIPPERS_PARENT_TIMEOUT_SECONDS``; None
    when it is not set (the local engine)."""
    raw = env.get(ENV_PARENT_TIMEOUT, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise JobInputError(f"{ENV_PARENT_TIMEOUT} must be a whole number of seconds (got {raw!r})")
    return int(raw)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def run_parent(
    ref: VideoRef,
    storage: Storage,
    workdir: Path,
    *,
    asr_model: str | None = None,
    cut: CutSettings | None = None,
    stage: Stage | None = None,
    time_limit: int | None = None,
    progress: Progress | None = None,
) -> ParentResult:
    """Transcribe, choose and cut the segments of one video in the warehouse.

    ``time_limit``: the attempt's limit in seconds; a video it is modelled not to fit is
    refused (:class:`TimeLimitError`) before it is transcribed. ``progress`` is told the
    seconds of audio transcribed as each window is done (each is logged too).
    """
    report = stage or (lambda name: None)
    config = read_config(storage, ref)
    scorer = scorer_from_config(config.scorer)  # before any work: a bad LLM setup fails fast
    scoring = scorer_recipe(config.scorer)
    original = Original(storage, ref, workdir, report)
    source = original.identity()
    attempt = _Attempt(
        storage.describe(ref.original_video), source["size"], config, workdir, time_limit
    )
    present = set(storage.list(ref.prefix))
    previous = read_manifest(storage, ref)
    if ref.thumbnail in present:
        _refresh_thumbnail(storage, ref, original, source, previous, workdir)
    transcript_inputs = {"source": source, "asr": asr_settings(config, asr_model)}
    speech: _Speech | None = None
    if _transcript_current(storage, ref, present, transcript_inputs):
        words_sha256 = _words_sha256(storage, ref, workdir)
    else:
        video = original.path()
        report("transcribe")
        speech, words_sha256 = _transcribe(
            storage, ref, video, transcript_inputs, attempt, logged_progress(progress)
        )
    settings = cut or CutSettings()
    request = _request(config, previous, scoring)
    inputs = {
        "source": source,
        "transcript": words_sha256,
        "request": request,
        "cut": asdict(settings),
    }
    if previous is not None and _segments_current(ref, previous, present, inputs):
        log.info("%s is up to date", storage.describe(ref.manifest))
        entries = _refresh_manifest(storage, ref, workdir, config, previous)
        _record_count(storage, ref, config, len(entries))
        return ParentResult(tuple(entries), previous.get("message"), reused=True)
    video = original.path()
    report("select")
    if speech is None:
        duration = probe_speech(storage, ref, video).duration
        attempt.require_disk(duration)
        attempt.require_time(duration, None)
        speech = _Speech.of(_read_transcript(storage, ref), decode_audio(video), duration)
    result = select_highlights(
        within_picture(speech.transcript, speech.picture_end),
        count=request["segment_count"] or None,
        target_duration=request["target_duration"],
        min_duration=request["min_duration"],
        max_duration=request["max_duration"],
        loudness=speech.loudness,
        scorer=scorer,
    )
    if result.message:
        log.warning("%s", result.message)
    report("cut")
    segments = write_segments(
        video, speech.transcript, result.highlights, workdir, settings=settings
    )
    entries = [{**entry, "reframe": config.reframe} for entry in segments]
    storage.delete(ref.manifest)  # first: a crash from here on leads to a redo
    _publish_segments(storage, ref, workdir, present, entries)
    _record_count(storage, ref, config, len(entries))
    extra = {"source": source, "request": request, "recipe": recipe(inputs)}
    manifest = write_manifest(workdir / MANIFEST, entries, result.message, **extra)
    storage.upload(manifest, ref.manifest)
    return ParentResult(tuple(entries), result.message, reused=False)


def asr_settings(config: ShortsConfig, model: str | None) -> dict[str, Any]:
    """The backend and model (as resolved from the environment too) and the language."""
    return {
        "backend": resolve_backend(config.asr_backend),
        "model": resolve_model(model),
        "language": config.language,
    }


def _refresh_thumbnail(
    storage: Storage,
    ref: VideoRef,
    original: Original,
    source: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    workdir: Path,
) -> None:
    """Make the thumbnail again, at its width, when the original it shows was replaced.

    A thumbnail without a recipe was uploaded with the original: it shows the original
    the last run was made from (or, on a first run, the current one).
    """
    inputs = {"original": dict(source)}
    recorded = read_recipe(storage, ref.thumbnail_recipe)
    if recorded == recipe_digest(inputs):
        return
    if recorded is None and (previous is None or previous.get("source") == source):
        write_recipe(storage, ref.thumbnail_recipe, inputs)
        return
    from PIL import Image

    old = storage.download(ref.thumbnail, workdir / f"old-{THUMBNAIL}")
    with Image.open(old) as picture:
        width = picture.width
    log.info("the original changed: making %s again", storage.describe(ref.thumbnail))
    still = klipmedia.thumbnail(original.path(), workdir / THUMBNAIL, width=width)
    storage.delete(ref.thumbnail_recipe)
    storage.upload(still, ref.thumbnail)
    write_recipe(storage, ref.thumbnail_recipe, inputs)


def _transcript_current(
    storage: Storage, ref: VideoRef, present: set[str], inputs: Mapping[str, Any]
) -> bool:
    if not {ref.original_srt, ref.original_txt, ref.original_words} <= present:
        return False
    return read_recipe(storage, ref.transcript_recipe) == recipe_digest(inputs)


def _words_sha256(storage: Storage, ref: VideoRef, workdir: Path) -> str:
    """The digest of ``original.words.json``: the transcript's identity."""
    found = content_fingerprint(storage, ref.original_words, workdir / ORIGINAL_WORDS)
    if found is None or found.sha256 is None:
        raise StorageKeyNotFoundError(ref.original_words, storage.describe(ref.original_words))
    return found.sha256


def probe_speech(storage: Storage, ref: VideoRef, video: Path) -> klipmedia.MediaInfo:
    """The original's probe; :class:`JobInputError` when it has no audio to transcribe."""
    info = klipmedia.probe(video)
    if not info.has_audio:
        raise JobInputError(
            f"{storage.describe(ref.original_video)} has no audio track: "
            "there is no speech to find shorts in"
        )
    return info


def within_picture(transcript: Transcript, picture_end: float) -> Transcript:
    """``transcript`` without the sentences that end after the picture does (a recording
    whose camera stopped before its sound): a short needs a picture to crop."""
    kept = tuple(s for s in transcript.sentences if s.end <= picture_end)
    if len(kept) < len(transcript.sentences):
        log.warning(
            "the picture ends at %.1f s, before the speech: %d sentence(s) after it are not "
            "considered",
            picture_end,
            len(transcript.sentences) - len(kept),
        )
    return replace(transcript, sentences=kept, duration=min(transcript.duration, picture_end))


def logged_progress(progress: Progress | None = None) -> Progress:
    """``progress``, logging each report first (the cloud's only view of a long ASR)."""

    def report(done: float, total: float) -> None:
        log.info("transcribed %s of %s", _minutes(done), _minutes(total))
        if progress is not None:
            progress(done, total)

    return report


def _transcribe(
    storage: Storage,
    ref: VideoRef,
    video: Path,
    inputs: Mapping[str, Any],
    attempt: _Attempt,
    progress: Progress,
) -> tuple[_Speech, str]:
    """Transcribe ``video`` (or merge its current transcription windows, see
    :mod:`klippers.jobs.windows`), publish the files that changed (the recipe last); return
    the speech and the SHA-256 of the words file.

    The disk is checked before the audio is decoded, the time once it is known whether the
    windows are merged (decoding takes seconds an hour of audio)."""
    duration = probe_speech(storage, ref, video).duration
    attempt.require_disk(duration)
    audio = decode_audio(video)
    asr = inputs["asr"]
    transcript = merged_transcript(storage, ref, inputs, audio.size / SAMPLE_RATE)
    attempt.require_time(duration, asr["model"] if transcript is None else None)
    if transcript is None:
        transcriber = load_transcriber(asr["backend"], asr["model"])
        log.info("transcribing %.1f s of audio from %s", audio.size / SAMPLE_RATE, video)
        transcript = transcriber.transcribe(audio, language=asr["language"], progress=progress)
    files = write_transcript_files(transcript, attempt.workdir / "transcript")
    keys = {"srt": ref.original_srt, "text": ref.original_txt, "words": ref.original_words}
    storage.delete(ref.transcript_recipe)
    for kind, key in keys.items():
        if not storage.is_current(key, files[kind]):
            storage.upload(files[kind], key)
    write_recipe(storage, ref.transcript_recipe, inputs)
    return _Speech.of(transcript, audio, duration), file_sha256(files["words"])


def _read_transcript(storage: Storage, ref: VideoRef) -> Transcript:
    return Transcript.from_json(storage.read_bytes(ref.original_words).decode("utf-8"))


def _request(
    config: ShortsConfig, previous: Mapping[str, Any] | None, scoring: Mapping[str, str]
) -> dict[str, Any]:
    """What selection reads from the config, and which scorer it asks.

    The parent writes the real number of segments back into the config, so a count equal
    to the manifest's stands for the request that manifest answered.
    """
    count = config.segment_count
    if previous is not None and count == previous.get("segment_count"):
        count = (previous.get("request") or {}).get("segment_count", count)
    return {
        "segment_count": count,
        "target_duration": config.target_short_video_duration_in_seconds,
        "min_duration": config.min_duration,
        "max_duration": config.max_duration,
        "scorer": dict(scoring),
    }


def _segments_current(
    ref: VideoRef, manifest: Mapping[str, Any], present: set[str], inputs: Mapping[str, Any]
) -> bool:
    """The manifest was made from ``inputs`` and every segment file it lists is there."""
    if recorded_digest(manifest.get("recipe")) != recipe_digest(inputs):
        return False
    files = {ref.key(rel) for entry in manifest["segments"] for rel in entry["files"].values()}
    return files <= present


def _refresh_manifest(
    storage: Storage,
    ref: VideoRef,
    workdir: Path,
    config: ShortsConfig,
    manifest: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The current entries; the manifest is written again only if the reframe mode changed."""
    entries = [{**entry, "reframe": config.reframe} for entry in manifest["segments"]]
    if entries != manifest["segments"]:
        own = ("version", "segment_count", "message", "segments")
        extra = {k: v for k, v in manifest.items() if k not in own}
        path = write_manifest(workdir / MANIFEST, entries, manifest.get("message"), **extra)
        storage.upload(path, ref.manifest)
    return entries


def _publish_segments(
    storage: Storage,
    ref: VideoRef,
    workdir: Path,
    present: set[str],
    entries: list[dict[str, Any]],
) -> None:
    """Upload the segment files that changed, after removing the shorts made from them;
    then remove segment files and shorts beyond the new count."""
    keep: set[str] = set()
    for entry in entries:
        n = entry["index"]
        short = (ref.short_video(n), ref.short_recipe(n))
        files = {ref.key(relative): workdir / relative for relative in entry["files"].values()}
        changed = {
            key: path
            for key, path in files.items()
            if key not in present or not storage.is_current(key, path)
        }
        if changed:
            for key in short:
                storage.delete(key)
        for key, path in changed.items():
            storage.upload(path, key)
        keep.update(files, short)
    folders = (ref.key(SEGMENTS_DIR) + "/", ref.key(SHORTS_DIR) + "/")
    for key in sorted(present):
        if key.startswith(folders) and key not in keep:
            log.info("removing stale %s", key)
            storage.delete(key)


def _record_count(storage: Storage, ref: VideoRef, config: ShortsConfig, count: int) -> None:
    """Write the real number of segments back into the config (the cloud fans out by it)."""
    if config.segment_count != count:
        storage.write_bytes(ref.shorts_config, config.with_segment_count(count).to_json().encode())


def run_job(env: Mapping[str, str]) -> ParentResult:
    job = JobEnvironment.from_env(env)
    limit = time_limit(env)
    with scratch(job.workdir) as folder:
        return run_parent(job.ref, job.storage(), Path(folder), time_limit=limit)


def main() -> int:
    """Entry point of ``python -m klippers.parent``."""
    return run_main("parent", run_job)
