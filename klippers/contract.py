"""The warehouse contract: key layout, ``shorts_config.json`` schema, job names and env vars.

Every job, engine, the state machine definition and the infrastructure take names from
here; nothing else spells a warehouse key or an environment variable.

Layout under ``klippers_warehouse/USER_ID/VIDEO_ID/``::

    original.mp4  shorts_config.json  thumbnail.png           inputs (uploaded)
    original.srt  original.txt  original.words.json           parent
    important-segment-videos/segment_N.mp4|.srt|.words.json   parent
    important_segments_videos.json                            parent (written last)
    videos-cropped-stacked/segment_N_cropped_stacked.mp4      children

Beside an output, a recipe (``*.recipe.json``) records what it was made from; it is
written after the output, so an output without a current recipe is made again::

    original.recipe.json  thumbnail.recipe.json               parent
    videos-cropped-stacked/segment_N_cropped_stacked.recipe.json   children

The segments' recipe is the ``recipe`` field of the manifest.

A config's ``background_video`` names a file in the video's own folder (``bg.mp4``, or
its whole key ``klippers_warehouse/USER_ID/VIDEO_ID/bg.mp4``) or one in the shared
library ``backgrounds/`` at the warehouse root, beside ``klippers_warehouse/``
(``backgrounds/loop.mp4``, put there by the operator; the jobs only read it). Anything
else (another user's or another video's key, ``..``, an absolute path, a URL) is refused
(:func:`background_key`), and the child role may read only those two places.

Examples
--------
>>> ref = VideoRef("alice", "talk-1")
>>> ref.segment_video(3)
'klippers_warehouse/alice/talk-1/important-segment-videos/segment_3.mp4'
>>> ShortsConfig.from_json('{"segment_count": 2}').target_short_video_duration_in_seconds
60
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

# --- key layout -------------------------------------------------------------------------------

WAREHOUSE_ROOT = "klippers_warehouse"
ORIGINAL_VIDEO = "original.mp4"
SHORTS_CONFIG = "shorts_config.json"
THUMBNAIL = "thumbnail.png"
ORIGINAL_SRT = "original.srt"
ORIGINAL_TXT = "original.txt"
ORIGINAL_WORDS = "original.words.json"
MANIFEST = "important_segments_videos.json"
SEGMENTS_DIR = "important-segment-videos"
SHORTS_DIR = "videos-cropped-stacked"
RECIPE_SUFFIX = ".recipe.json"
TRANSCRIPT_RECIPE = "original" + RECIPE_SUFFIX
THUMBNAIL_RECIPE = "thumbnail" + RECIPE_SUFFIX
SHARDS_DIR = "transcript-shards"
"""Sharded transcription (cloud): ``plan.json`` and ``shard_N.words.json`` with recipes."""
SHARD_PLAN = "plan.json"
RECIPE_VERSION = 1
SHARED_BACKGROUNDS = "backgrounds"
UPLOADED_BACKGROUND = "background.mp4"
"""The name a background video given with a run or an upload gets in the video's folder."""
"""Folder at the warehouse root (beside ``klippers_warehouse/``): backgrounds any video may use."""

# --- environment of the jobs ------------------------------------------------------------------

ENV_USER_ID = "USER_ID"
ENV_VIDEO_ID = "VIDEO_ID"
ENV_SEGMENT = "SEGMENT"
ENV_SHARD = "SHARD"
"""The transcription shard job's task: ``plan``, or a window number from 1."""
SHARD_PLAN_TASK = "plan"
ENV_BUCKET = "VIDEO_WAREHOUSE_S3_BUCKET_NAME"
# "json" in the cloud (one JSON object per log line), readable lines otherwise.
ENV_LOG_FORMAT = "KLIPPERS_LOG_FORMAT"
# The faster-whisper model (name or folder); the image bakes DEFAULT_ASR_MODEL into a folder.
ENV_ASR_MODEL = "KLIPPERS_ASR_MODEL"
# The LLM scorer's settings (klippers.selection.llm); the cloud sets them on the parent task.
ENV_LLM_PREFIX = "KLIPPERS_LLM_"
ENV_LLM_PROVIDER = ENV_LLM_PREFIX + "PROVIDER"
ENV_LLM_MODEL = ENV_LLM_PREFIX + "MODEL"
ENV_LLM_BASE_URL = ENV_LLM_PREFIX + "BASE_URL"
ENV_LLM_API_KEY = ENV_LLM_PREFIX + "API_KEY"
ENV_LLM_REGION = ENV_LLM_PREFIX + "REGION"
ENV_LLM_TIMEOUT = ENV_LLM_PREFIX + "TIMEOUT"
ENV_LLM_FALLBACK = ENV_LLM_PREFIX + "FALLBACK"
# One parent attempt's time limit in seconds (the state machine's); the cloud sets it on the
# parent task so the job refuses up front a video it cannot finish in time.
ENV_PARENT_TIMEOUT = "KLIPPERS_PARENT_TIMEOUT_SECONDS"
DEFAULT_ASR_MODEL = "base"

# --- job entrypoints (the image runs ``python -m MODULE``) ------------------------------------

JOB_LAUNCHER = ("python", "-m")
PARENT_JOB_MODULE = "klippers.parent"
CHILD_JOB_MODULE = "klippers.child"
SHARD_JOB_MODULE = "klippers.shard"

# --- exit codes of the jobs and of ``klip`` (the cloud retries by them) -----------------------

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
"""The input is wrong: a retry cannot help."""
EXIT_TRANSIENT = 75
"""EX_TEMPFAIL: trying again later may succeed."""

# --- limits -----------------------------------------------------------------------------------

MAX_ID_LENGTH = 128
MAX_SEGMENT_COUNT = 50
MAX_SHARD_COUNT = 10
"""Most transcription windows one video is split into (parallel Fargate tasks)."""
SHARD_SECONDS = 900.0
"""Planned window length: a video of ``n`` windows gets ``ceil(duration / SHARD_SECONDS)``."""
MIN_SHARDED_SECONDS = 5400.0
"""Shorter videos are transcribed in one pass by the parent (no shard tasks): below about
1.5 hours the two extra task starts and downloads cost more time than the windows save
(``klip cloud estimate``)."""
SHARD_OVERLAP_SECONDS = 10.0
"""Audio each window reads beyond its share on either side; the merge drops the doubles."""
DEFAULT_SHORT_DURATION = 60
MIN_SHORT_DURATION = 5
MAX_SHORT_DURATION = 180
MIN_SPLIT = 0.1
MAX_SPLIT = 0.9

Layout = Literal["stacked", "full", "blurred", "split", "auto"]
LAYOUTS: tuple[str, ...] = get_args(Layout)
Reframe = Literal["speaker", "face", "center"]
REFRAMES: tuple[str, ...] = get_args(Reframe)
Scorer = Literal["embedded", "llm"]
SCORERS: tuple[str, ...] = get_args(Scorer)
DEFAULT_SCORER: Scorer = "embedded"

_ID_PATTERN = re.compile(r"[A-Za-z0-9._@+=-]+")
_LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_BACKEND_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


class ContractError(ValueError):
    """A warehouse ID, segment number, key or ``shorts_config.json`` breaks the contract."""


def _fail(field_name: str, problem: str, value: object) -> ContractError:
    return ContractError(f"{field_name}: {problem} (got {value!r})")


def job_command(module: str) -> list[str]:
    """The container command running job ``module``: ``["python", "-m", module]``."""
    if module not in (PARENT_JOB_MODULE, CHILD_JOB_MODULE, SHARD_JOB_MODULE):
        raise ContractError(f"module: not a klippers job (got {module!r})")
    return [*JOB_LAUNCHER, module]


# --- IDs and segment numbers ------------------------------------------------------------------


def validate_id(value: object, field_name: str) -> str:
    """Return ``value`` if it is a safe warehouse ID, else raise :class:`ContractError`.

    A safe ID is 1 to ``MAX_ID_LENGTH`` characters of ``A-Z a-z 0-9 . _ @ + = -``,
    without ``..``: it can never leave its folder or smuggle a control character.
    """
    if not isinstance(value, str):
        raise _fail(field_name, "must be a string", value)
    if not value:
        raise _fail(field_name, "must not be empty", value)
    if len(value) > MAX_ID_LENGTH:
        raise _fail(field_name, f"must be at most {MAX_ID_LENGTH} characters", value)
    if "/" in value or "\\" in value:
        raise _fail(field_name, "must not contain a path separator", value)
    if ".." in value:
        raise _fail(field_name, "must not contain '..'", value)
    if _CONTROL_CHARS.search(value):
        raise _fail(field_name, "must not contain control characters", value)
    if not _ID_PATTERN.fullmatch(value):
        raise _fail(field_name, "may only contain letters, digits and . _ @ + = -", value)
    return value


def validate_segment(n: object) -> int:
    """Return ``n`` if it is a segment number from 1 to ``MAX_SEGMENT_COUNT``."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise _fail("segment", "must be an integer", n)
    if not 1 <= n <= MAX_SEGMENT_COUNT:
        raise _fail("segment", f"must be from 1 to {MAX_SEGMENT_COUNT}", n)
    return n


def parse_segment(text: str) -> int:
    """Parse the ``SEGMENT`` environment value (decimal text) into a segment number."""
    stripped = text.strip()
    if not stripped.isdigit():
        raise _fail(ENV_SEGMENT, "must be a positive decimal integer", text)
    try:
        return validate_segment(int(stripped))
    except ContractError as exc:
        raise _fail(ENV_SEGMENT, f"must be from 1 to {MAX_SEGMENT_COUNT}", text) from exc


def video_id_for(file_name: str) -> str:
    """A video ID from a file name: lower-case words of its stem joined by ``-``.

    Examples
    --------
    >>> video_id_for("My Talk (2024) final.MP4")
    'my-talk-2024-final'
    """
    stem = PurePath(file_name).stem
    text = _SLUG_UNSAFE.sub("-", stem.lower()).strip("-")[:MAX_ID_LENGTH].rstrip("-")
    if not text:
        raise ContractError(f"{file_name}: cannot make a video ID from the name")
    return validate_id(text, "video_id")


def shard_words_name(n: int) -> str:
    """File name of transcription window ``n``'s words (times on the original's timeline)."""
    return f"shard_{n}.words.json"


def shard_recipe_name(n: int) -> str:
    """File name of the recipe of transcription window ``n``."""
    return f"shard_{n}{RECIPE_SUFFIX}"


def segment_video_name(n: int) -> str:
    """File name of segment ``n`` cut from the original: ``segment_3.mp4``."""
    return f"segment_{validate_segment(n)}.mp4"


def segment_srt_name(n: int) -> str:
    """File name of segment ``n``'s captions: ``segment_3.srt``."""
    return f"segment_{validate_segment(n)}.srt"


def segment_words_name(n: int) -> str:
    """File name of segment ``n``'s word timings: ``segment_3.words.json``."""
    return f"segment_{validate_segment(n)}.words.json"


def short_video_name(n: int) -> str:
    """File name of the rendered short ``n``: ``segment_3_cropped_stacked.mp4``."""
    return f"segment_{validate_segment(n)}_cropped_stacked.mp4"


def short_recipe_name(n: int) -> str:
    """File name of the recipe of short ``n``: ``segment_3_cropped_stacked.recipe.json``."""
    return short_video_name(n).removesuffix(".mp4") + RECIPE_SUFFIX


def recipe_digest(inputs: Mapping[str, Any]) -> str:
    """SHA-256 of ``inputs`` (JSON values) as canonical JSON: equal inputs, equal digest.

    Examples
    --------
    >>> recipe_digest({"b": 1, "a": [1.5, None]}) == recipe_digest({"a": [1.5, None], "b": 1})
    True
    """
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def recipe(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe document of an output made from ``inputs``: they and their digest."""
    return {"version": RECIPE_VERSION, "digest": recipe_digest(inputs), "inputs": dict(inputs)}


def recorded_digest(doc: object) -> str | None:
    """The digest a :func:`recipe` document records; None when ``doc`` is not one."""
    if not isinstance(doc, Mapping) or doc.get("version") != RECIPE_VERSION:
        return None
    digest = doc.get("digest")
    return digest if isinstance(digest, str) else None


def _segments(count: int) -> range:
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_SEGMENT_COUNT:
        raise _fail("segment_count", f"must be an integer from 0 to {MAX_SEGMENT_COUNT}", count)
    return range(1, count + 1)


@dataclass(frozen=True)
class VideoRef:
    """Where one video lives in the warehouse; both IDs are validated on construction."""

    user_id: str
    video_id: str

    def __post_init__(self) -> None:
        validate_id(self.user_id, "user_id")
        validate_id(self.video_id, "video_id")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VideoRef:
        """Read ``USER_ID`` and ``VIDEO_ID``, naming the variable that is missing or bad."""
        values = []
        for name in (ENV_USER_ID, ENV_VIDEO_ID):
            if name not in env:
                raise ContractError(f"{name}: environment variable is not set")
            values.append(validate_id(env[name], name))
        return cls(*values)

    def env(self) -> dict[str, str]:
        """The job environment naming this video (``USER_ID`` and ``VIDEO_ID``)."""
        return {ENV_USER_ID: self.user_id, ENV_VIDEO_ID: self.video_id}

    @property
    def prefix(self) -> str:
        """``klippers_warehouse/USER_ID/VIDEO_ID/`` (with the trailing slash)."""
        return f"{WAREHOUSE_ROOT}/{self.user_id}/{self.video_id}/"

    def key(self, relative: str) -> str:
        """The key of ``relative`` (a POSIX path inside the video folder)."""
        parts = relative.split("/")
        if (
            not relative
            or any(p in ("", ".", "..") for p in parts)
            or _CONTROL_CHARS.search(relative)
        ):
            raise _fail("key", "must be a relative path inside the video folder", relative)
        return self.prefix + relative

    @property
    def original_video(self) -> str:
        """Key of ``original.mp4``."""
        return self.key(ORIGINAL_VIDEO)

    @property
    def shorts_config(self) -> str:
        """Key of ``shorts_config.json``."""
        return self.key(SHORTS_CONFIG)

    @property
    def thumbnail(self) -> str:
        """Key of ``thumbnail.png``."""
        return self.key(THUMBNAIL)

    @property
    def original_srt(self) -> str:
        """Key of ``original.srt``."""
        return self.key(ORIGINAL_SRT)

    @property
    def original_txt(self) -> str:
        """Key of ``original.txt``."""
        return self.key(ORIGINAL_TXT)

    @property
    def original_words(self) -> str:
        """Key of ``original.words.json``."""
        return self.key(ORIGINAL_WORDS)

    @property
    def manifest(self) -> str:
        """Key of ``important_segments_videos.json``."""
        return self.key(MANIFEST)

    def segment_video(self, n: int) -> str:
        """Key of segment ``n``'s cut video."""
        return self.key(f"{SEGMENTS_DIR}/{segment_video_name(n)}")

    def segment_srt(self, n: int) -> str:
        """Key of segment ``n``'s SRT captions."""
        return self.key(f"{SEGMENTS_DIR}/{segment_srt_name(n)}")

    def segment_words(self, n: int) -> str:
        """Key of segment ``n``'s word timings."""
        return self.key(f"{SEGMENTS_DIR}/{segment_words_name(n)}")

    def short_video(self, n: int) -> str:
        """Key of the rendered short ``n``."""
        return self.key(f"{SHORTS_DIR}/{short_video_name(n)}")

    def short_recipe(self, n: int) -> str:
        """Key of the recipe of short ``n``."""
        return self.key(f"{SHORTS_DIR}/{short_recipe_name(n)}")

    @property
    def transcript_recipe(self) -> str:
        """Key of ``original.recipe.json`` (what the transcript files were made from)."""
        return self.key(TRANSCRIPT_RECIPE)

    @property
    def thumbnail_recipe(self) -> str:
        """Key of ``thumbnail.recipe.json`` (which original the thumbnail shows)."""
        return self.key(THUMBNAIL_RECIPE)

    @property
    def shard_plan(self) -> str:
        """Key of ``transcript-shards/plan.json`` (how many transcription windows)."""
        return self.key(f"{SHARDS_DIR}/{SHARD_PLAN}")

    def shard_words(self, n: int) -> str:
        """Key of transcription window ``n``'s words."""
        return self.key(f"{SHARDS_DIR}/{shard_words_name(n)}")

    def shard_recipe(self, n: int) -> str:
        """Key of the recipe of transcription window ``n``."""
        return self.key(f"{SHARDS_DIR}/{shard_recipe_name(n)}")

    def input_keys(self) -> tuple[str, ...]:
        """Keys uploaded before the parent runs."""
        return (self.original_video, self.shorts_config, self.thumbnail)

    def parent_keys(self, segment_count: int) -> tuple[str, ...]:
        """Keys the parent writes for ``segment_count`` segments (the manifest last)."""
        per_segment = (
            key
            for n in _segments(segment_count)
            for key in (self.segment_video(n), self.segment_srt(n), self.segment_words(n))
        )
        return (
            self.original_srt,
            self.original_txt,
            self.original_words,
            *per_segment,
            self.manifest,
        )

    def child_keys(self, segment_count: int) -> tuple[str, ...]:
        """Keys the children write, one short per segment."""
        return tuple(self.short_video(n) for n in _segments(segment_count))

    def all_keys(self, segment_count: int) -> tuple[str, ...]:
        """Every key of a finished run with ``segment_count`` shorts."""
        return (
            *self.input_keys(),
            *self.parent_keys(segment_count),
            *self.child_keys(segment_count),
        )


# --- shorts_config.json ----------------------------------------------------------------------

_KNOWN_FIELDS = (
    "segment_count",
    "target_short_video_duration_in_seconds",
    "user_id",
    "video_id",
    "min_duration",
    "max_duration",
    "background_video",
    "layout",
    "reframe",
    "caption_style",
    "language",
    "asr_backend",
    "split",
    "scorer",
)


def _config_fail(field_name: str, problem: str, value: object) -> ContractError:
    return _fail(f"{SHORTS_CONFIG}: {field_name}", problem, value)


def _check_seconds(field_name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _config_fail(field_name, "must be a number of seconds", value)
    if not MIN_SHORT_DURATION <= value <= MAX_SHORT_DURATION:
        raise _config_fail(
            field_name, f"must be from {MIN_SHORT_DURATION} to {MAX_SHORT_DURATION} seconds", value
        )


def _check_optional_text(field_name: str, value: object, pattern: re.Pattern[str]) -> None:
    if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
        raise _config_fail(field_name, f"must be text matching {pattern.pattern}", value)


def _background_problem(value: object) -> str | None:
    """Why ``value`` cannot name a key relative to the warehouse; None when it can."""
    if not isinstance(value, str) or not value.strip() or _CONTROL_CHARS.search(value):
        return "must be a non-empty name without control characters"
    if _URL_SCHEME.match(value):
        return "must be a key in the warehouse, not a URL"
    if value.startswith("/") or "\\" in value:
        return "must be a relative key with '/' separators"
    if ".." in value.split("/"):
        return "must not contain a '..' path part"
    if any(part in ("", ".") for part in value.split("/")):
        return "must not contain an empty or '.' path part"
    return None


def _check_background(value: object) -> None:
    if value is not None and (problem := _background_problem(value)) is not None:
        raise _config_fail("background_video", problem, value)


def background_key(ref: VideoRef, value: str) -> str:
    """The key a config's ``background_video`` names for the video ``ref``.

    ``backgrounds/NAME`` is the shared library; a key starting ``klippers_warehouse/``
    must lie in ``ref``'s folder; anything else is a path inside that folder.

    Raises
    ------
    ContractError
        ``value`` is not a relative key, or it names another user's or video's files.

    Examples
    --------
    >>> ref = VideoRef("alice", "talk-1")
    >>> background_key(ref, "bg.mp4")
    'klippers_warehouse/alice/talk-1/bg.mp4'
    >>> background_key(ref, "backgrounds/loop.mp4")
    'backgrounds/loop.mp4'
    """
    _check_background(value)
    if value.startswith(f"{SHARED_BACKGROUNDS}/"):
        return value
    if value.startswith(f"{WAREHOUSE_ROOT}/"):
        if value.startswith(ref.prefix):
            return value
        raise _config_fail(
            "background_video",
            f"must be in this video's folder ({ref.prefix}) or in the shared "
            f"{SHARED_BACKGROUNDS}/, not in another user's or video's folder",
            value,
        )
    return ref.key(value)


def _frozen_json(value: Any) -> Any:
    """A read-only deep copy of a JSON value (mappings become ``MappingProxyType``)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _frozen_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen_json(v) for v in value)
    return value


def _thawed_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thawed_json(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed_json(v) for v in value]
    return value


@dataclass(frozen=True)
class ShortsConfig:
    """The validated ``shorts_config.json`` of one video.

    ``segment_count`` 0 lets the parent choose how many shorts to make; the parent then
    writes the chosen number back. Fields this version does not know are kept in
    ``extras`` and written back by :meth:`to_json`.
    """

    segment_count: int
    target_short_video_duration_in_seconds: float = DEFAULT_SHORT_DURATION
    user_id: str | None = None
    video_id: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    background_video: str | None = None
    layout: Layout = "stacked"
    reframe: Reframe = "speaker"
    caption_style: Mapping[str, Any] | None = field(default=None, hash=False)
    language: str | None = None
    asr_backend: str | None = None
    split: float | None = None
    scorer: Scorer | None = None
    extras: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def __post_init__(self) -> None:
        count = self.segment_count
        if isinstance(count, bool) or not isinstance(count, int):
            raise _config_fail("segment_count", "must be an integer", count)
        if not 0 <= count <= MAX_SEGMENT_COUNT:
            raise _config_fail(
                "segment_count",
                f"must be from 0 (choose automatically) to {MAX_SEGMENT_COUNT}",
                count,
            )
        target = self.target_short_video_duration_in_seconds
        _check_seconds("target_short_video_duration_in_seconds", target)
        for name in ("user_id", "video_id"):
            value = getattr(self, name)
            if value is not None:
                try:
                    validate_id(value, name)
                except ContractError as exc:
                    raise ContractError(f"{SHORTS_CONFIG}: {exc}") from None
        self._check_duration_bounds()
        _check_background(self.background_video)
        if self.layout not in LAYOUTS:
            raise _config_fail("layout", f"must be one of {', '.join(LAYOUTS)}", self.layout)
        if self.reframe not in REFRAMES:
            raise _config_fail("reframe", f"must be one of {', '.join(REFRAMES)}", self.reframe)
        self._check_split()
        if self.scorer is not None and self.scorer not in SCORERS:
            raise _config_fail("scorer", f"must be one of {', '.join(SCORERS)}", self.scorer)
        if self.caption_style is not None and not isinstance(self.caption_style, Mapping):
            raise _config_fail("caption_style", "must be a JSON object", self.caption_style)
        _check_optional_text("language", self.language, _LANGUAGE_PATTERN)
        _check_optional_text("asr_backend", self.asr_backend, _BACKEND_PATTERN)
        clash = set(self.extras) & set(_KNOWN_FIELDS)
        if clash:
            raise _config_fail("extras", "must not repeat known fields", sorted(clash))
        if self.caption_style is not None:
            object.__setattr__(self, "caption_style", _frozen_json(self.caption_style))
        object.__setattr__(self, "extras", _frozen_json(self.extras))

    def _check_split(self) -> None:
        split = self.split
        if split is None:
            return
        if isinstance(split, bool) or not isinstance(split, int | float):
            raise _config_fail("split", "must be a number", split)
        if not MIN_SPLIT <= split <= MAX_SPLIT:
            raise _config_fail("split", f"must be from {MIN_SPLIT} to {MAX_SPLIT}", split)

    def _check_duration_bounds(self) -> None:
        low, high = self.min_duration, self.max_duration
        if low is not None:
            _check_seconds("min_duration", low)
        if high is not None:
            _check_seconds("max_duration", high)
        if low is not None and high is not None and low > high:
            raise _config_fail("min_duration", f"must not exceed max_duration ({high})", low)
        target = self.target_short_video_duration_in_seconds
        if (low is not None and target < low) or (high is not None and target > high):
            raise _config_fail(
                "target_short_video_duration_in_seconds",
                "must lie between min_duration and max_duration",
                target,
            )

    @classmethod
    def from_dict(cls, doc: object, *, ref: VideoRef | None = None) -> ShortsConfig:
        """Validate a parsed document; with ``ref``, its IDs must match that location."""
        if not isinstance(doc, Mapping):
            raise ContractError(
                f"{SHORTS_CONFIG}: must be a JSON object (got {type(doc).__name__})"
            )
        if doc.get("segment_count") is None:
            raise ContractError(f"{SHORTS_CONFIG}: segment_count: is required")
        known = {k: v for k, v in doc.items() if k in _KNOWN_FIELDS and v is not None}
        extras = {k: v for k, v in doc.items() if k not in _KNOWN_FIELDS}
        config = cls(**known, extras=extras)
        if ref is not None:
            config.check_location(ref)
        return config

    @classmethod
    def from_json(cls, text: str | bytes, *, ref: VideoRef | None = None) -> ShortsConfig:
        """Parse and validate ``shorts_config.json`` text."""
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ContractError(f"{SHORTS_CONFIG}: is not valid JSON ({exc})") from None
        return cls.from_dict(doc, ref=ref)

    def check_location(self, ref: VideoRef) -> None:
        """Raise if ``user_id`` / ``video_id`` are given and differ from where the file is,
        or ``background_video`` names a key outside the video's folder and ``backgrounds/``."""
        for name in ("user_id", "video_id"):
            value = getattr(self, name)
            expected = getattr(ref, name)
            if value is not None and value != expected:
                raise _config_fail(
                    name, f"does not match the warehouse folder ({expected!r})", value
                )
        if self.background_video is not None:
            background_key(ref, self.background_video)

    def to_dict(self) -> dict[str, Any]:
        """The document: known fields that are set, then the preserved unknown fields."""
        doc: dict[str, Any] = {}
        for name in _KNOWN_FIELDS:
            value = getattr(self, name)
            if value is not None:
                doc[name] = _thawed_json(value)
        doc.update(cast(dict[str, Any], _thawed_json(self.extras)))
        return doc

    def to_json(self) -> str:
        """Serialise as ``shorts_config.json`` text (two-space indent, trailing newline)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def with_segment_count(self, n: int) -> ShortsConfig:
        """A copy with ``segment_count`` set to ``n`` (validated)."""
        return replace(self, segment_count=n)
