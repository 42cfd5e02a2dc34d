"""The child job: render segment N as a finished vertical short.

Run as ``python -m klippers.child`` with ``USER_ID``, ``VIDEO_ID``, ``SEGMENT`` and the
warehouse in the environment. The short's recipe records what it was made from: the
segment and its captions (by digest), layout and split, background (by digest), caption
style, reframe mode, encode settings and the code version. A short whose recipe is
current is not rendered again; any change renders it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

import klipmedia
import klippers
from klipmedia.captions import Captions
from klippers.contract import (
    ENV_SEGMENT,
    REFRAMES,
    ShortsConfig,
    VideoRef,
    background_key,
    parse_segment,
    recipe_digest,
)
from klippers.jobs.parent import read_manifest
from klippers.jobs.runner import (
    JobEnvironment,
    JobInputError,
    read_config,
    read_recipe,
    run_main,
    scratch,
    write_recipe,
)
from klippers.storage import Storage, StorageKeyNotFoundError, content_fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChildResult:
    """The short's key, and whether it was already there."""

    key: str
    reused: bool


@dataclass(frozen=True)
class _Plan:
    """How a short is made: the warehouse keys it reads and the settings it uses."""

    segment: str
    captions: str
    background: str | None
    layout: klipmedia.Layout
    auto: bool
    """Split when two people share the clip and both speak (see klipmedia.plan_reframe)."""
    style: klipmedia.CaptionStyle
    reframe: str | None
    encode: klipmedia.EncodeSettings

    def recipe(self, storage: Storage, workdir: Path) -> dict[str, Any]:
        """What the short is made from: files by digest, settings by value.

        Settings that cannot affect the picture are left out: the split and background
        outside the stacked layout, the reframe mode of the blurred one, and the encoder's
        thread count.
        """
        stacked = self.layout.kind == "stacked"
        return {
            "segment": _identity(storage, self.segment, workdir),
            "captions": _identity(storage, self.captions, workdir),
            "layout": {**asdict(self.layout), "split": self.layout.split if stacked else None},
            "auto": self.auto,
            "background": (
                _identity(storage, self.background, workdir) if self.background else None
            ),
            "caption_style": _json_values(asdict(self.style)),
            "reframe": self.reframe,
            "encode": _json_values({**asdict(self.encode), "threads": None}),
            "code": {"klippers": klippers.__version__, "klipmedia": klipmedia.__version__},
        }


def run_child(
    ref: VideoRef,
    segment: int,
    storage: Storage,
    workdir: Path,
    *,
    encode: klipmedia.EncodeSettings | None = None,
    progress: klipmedia.render.Progress | None = None,
) -> ChildResult:
    """Render short ``segment`` of a video whose parent job has finished, unless the short
    in the warehouse was made from the same recipe."""
    plan = _plan(storage, ref, segment, encode or klipmedia.EncodeSettings())
    inputs = plan.recipe(storage, workdir)
    key, recipe_key = ref.short_video(segment), ref.short_recipe(segment)
    if storage.exists(key) and read_recipe(storage, recipe_key) == recipe_digest(inputs):
        log.info("%s is up to date; nothing to do", storage.describe(key))
        return ChildResult(key, reused=True)
    result = _render(storage, plan, workdir, progress)
    storage.delete(recipe_key)
    storage.upload(result.path, key)
    write_recipe(storage, recipe_key, inputs)
    log.info("wrote %s (%.1f s, audio %s)", storage.describe(key), result.duration, result.audio)
    return ChildResult(key, reused=False)


def _plan(storage: Storage, ref: VideoRef, segment: int, encode: klipmedia.EncodeSettings) -> _Plan:
    config = read_config(storage, ref)
    entry = _manifest_entry(storage, ref, segment)
    layout = _layout(config)
    stacked = layout.kind == "stacked"
    return _Plan(
        segment=ref.segment_video(segment),
        captions=_captions_key(storage, ref, segment),
        background=_background_key(storage, ref, config) if stacked else None,
        layout=layout,
        auto=config.layout == "auto",
        style=caption_style(config),
        reframe=entry.get("reframe", "speaker") if layout.kind != "blurred" else None,
        encode=encode,
    )


def _render(
    storage: Storage, plan: _Plan, workdir: Path, progress: klipmedia.render.Progress | None
) -> klipmedia.RenderResult:
    clip = storage.download(plan.segment, workdir / "segment.mp4")
    framing = klipmedia.plan_reframe(
        clip,
        mode=plan.reframe or "center",
        layout="auto" if plan.auto else plan.layout,
        fallback=plan.layout,
    )
    background = None
    if plan.background is not None:
        suffix = PurePosixPath(plan.background).suffix or ".mp4"
        background = storage.download(plan.background, workdir / f"background{suffix}")
    return klipmedia.render_short(
        clip,
        workdir / "short.mp4",
        background=background,
        captions=_captions(storage, plan.captions, workdir),
        layout=framing.layout,
        crop_path=framing.crop_path,
        content=framing.content,
        style=plan.style,
        encode=plan.encode,
        progress=progress,
    )


def _layout(config: ShortsConfig) -> klipmedia.Layout:
    """The layout to render, or with ``auto`` the one used when the clip is not split."""
    kind = "stacked" if config.layout == "auto" else config.layout
    if config.split is None:
        return klipmedia.Layout(kind)
    return klipmedia.Layout(kind, split=config.split)


def _json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as JSON values (paths and fractions as text)."""
    converted: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return converted


def _identity(storage: Storage, key: str, workdir: Path) -> dict[str, Any]:
    """Size and SHA-256 of ``key`` (recorded, else hashed from a scratch copy)."""
    found = content_fingerprint(storage, key, workdir / "hashed" / PurePosixPath(key).name)
    if found is None:
        raise StorageKeyNotFoundError(key, storage.describe(key))
    return {"size": found.size, "sha256": found.sha256}


def _manifest_entry(storage: Storage, ref: VideoRef, segment: int) -> dict[str, Any]:
    manifest = read_manifest(storage, ref)
    if manifest is None:
        raise JobInputError(
            f"{storage.describe(ref.manifest)} is missing: "
            "the parent job has not finished for this video"
        )
    for entry in manifest["segments"]:
        if entry["index"] == segment:
            if entry.get("reframe", "speaker") not in REFRAMES:
                raise JobInputError(f"segment {segment}: unknown reframe {entry['reframe']!r}")
            return dict(entry)
    raise JobInputError(
        f"segment {segment} is not in the manifest ({manifest['segment_count']} segments)"
    )


def _captions_key(storage: Storage, ref: VideoRef, segment: int) -> str:
    """The segment's words (for word-highlighted captions) if stored, else its SRT."""
    words = ref.segment_words(segment)
    return words if storage.exists(words) else ref.segment_srt(segment)


def _captions(storage: Storage, key: str, workdir: Path) -> Captions:
    path = storage.download(key, workdir / PurePosixPath(key).name)
    if key.endswith(".words.json"):
        return Captions.from_words_json(path)
    return Captions.from_srt(path)


def _background_key(storage: Storage, ref: VideoRef, config: ShortsConfig) -> str | None:
    """The configured background video: in the video's folder or the shared ``backgrounds/``
    (:func:`~klippers.contract.background_key`; any other key is a ContractError)."""
    name = config.background_video
    if not name:
        return None
    key = background_key(ref, name)
    if not storage.exists(key):
        raise JobInputError(f"background_video {name!r}: {storage.describe(key)} is missing")
    return key


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
