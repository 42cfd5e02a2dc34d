"""Render a landscape segment as a finished vertical short: :func:`render_short`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

from klipmedia import layout as lay
from klipmedia.audio import RATE, aac_copy, aac_frames, source_samples
from klipmedia.captions import Captions
from klipmedia.crop import CropPath, Window, window_size
from klipmedia.encode import EncodeSettings, Mp4Writer
from klipmedia.errors import RenderError
from klipmedia.frames import (
    Planes,
    constant_rate,
    decoded_planes,
    frame_planes,
    looped_frames,
    timed_frames,
)
from klipmedia.io import atomic_path
from klipmedia.layout import Layout, LayoutKind
from klipmedia.letterbox import Content, resolve_content
from klipmedia.pipeline import prefetched
from klipmedia.probe import MediaInfo, probe
from klipmedia.text import CaptionPainter, CaptionStyle, blend
from klipmedia.timing import frame_count, frame_time, output_fps

log = logging.getLogger(__name__)

Panels = list[tuple[int, Planes]]
"""Pictures to paste into the output frame, each with its top row."""

AudioMethod = Literal["copy", "reencode", "silence"]
"""How a render wrote the audio track."""

Progress = Callable[[int, int], None]
"""Called after each encoded frame with (frames done, frames in all)."""


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_short` wrote."""

    path: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    audio: AudioMethod
    """"copy": the source's AAC packets; "reencode": its audio re-encoded; "silence": none."""

    @property
    def duration(self) -> float:
        """Duration of the video in seconds."""
        return float(self.frames / self.fps)


def render_short(
    segment: str | Path,
    output: str | Path,
    *,
    background: str | Path | None = None,
    captions: Captions | str | Path | None = None,
    layout: Layout | LayoutKind = "stacked",
    crop_path: CropPath | tuple[CropPath, CropPath] | None = None,
    content: Content = "detect",
    style: CaptionStyle | None = None,
    encode: EncodeSettings | None = None,
    progress: Progress | None = None,
) -> RenderResult:
    """Render ``segment`` as a 1080x1920 short with burned-in captions.

    Parameters
    ----------
    segment : the landscape clip (any FFmpeg-readable file).
    output : the .mp4 to write; written atomically.
    background : a video looped (muted) under the speaker in the stacked layout;
        without one, a blurred copy of the speaker fills that panel.
    captions : :class:`Captions`, an SRT file or text, or a words ``.json`` file.
    layout : a :class:`Layout` or one of "stacked", "full", "blurred", "split".
    crop_path : where the crop window is centred over time, as fractions of the
        picture's width (default: centre); for "split", the top and bottom panels'
        paths (default: a quarter and three quarters of the width).
    content : the picture inside black bars that the crop, the blurred fill and the
        foreground use: "detect" (default), "frame" (the whole frame) or a known box.
    style : caption look; encode : x264/AAC settings.
    progress : called with (frames done, frames in all) as rendering goes.

    Examples
    --------
    >>> import klipmedia  # doctest: +SKIP
    >>> klipmedia.render_short("seg.mp4", "out.mp4", background="bg.mp4",
    ...                        captions="seg.srt")  # doctest: +SKIP
    """
    layout = layout if isinstance(layout, Layout) else Layout(layout)
    encode = encode or EncodeSettings()
    info = probe(segment)
    fps = encode.fps or output_fps(info.fps)
    count = frame_count(info.duration, fps)
    timeline = _captions(captions, layout, style or CaptionStyle(), float(count / fps))
    log.info("rendering %s: %d frames at %s fps, layout %s", segment, count, fps, layout.kind)
    box = resolve_content(info, content)
    log.info("%s: content box %s", segment, box)
    fill_bottom = layout.kind == "stacked" and background is None
    paths = _crop_paths(crop_path, layout)
    panels = _panels(info, box, layout, paths, fps, count, fill_bottom)
    backgrounds = _backgrounds(background, layout, fps)
    with (
        aac_copy(segment, info.start_time, float(count / fps)) as copied,
        atomic_path(output) as temp,
        Mp4Writer(
            temp, layout.width, layout.height, fps, encode, audio=copied or _pcm(info, count, fps)
        ) as writer,
        prefetched(panels) as panel_frames,
        prefetched(backgrounds) as background_frames,
    ):
        # One output frame serves every index: x264 copies each picture as it is sent,
        # and the panels cover the whole frame, so nothing of the last picture shows.
        frame = av.VideoFrame(layout.width, layout.height, "yuv420p")
        planes = frame_planes(frame)
        for index, pasted in enumerate(panel_frames):
            for top, panel in pasted:
                lay.paste(planes, panel, top)
            if layout.kind == "stacked" and background is not None:
                lay.paste(planes, next(background_frames), layout.top_height)
            # A frame shows what is said during it: a word shorter than a frame still shows.
            middle = (frame_time(index, fps) + frame_time(index + 1, fps)) / 2
            _draw_caption(timeline, planes, middle)
            writer.write_video(frame, index)
            writer.write_audio(frame_time(index + 1, fps))
            if progress is not None:
                progress(index + 1, count)
    audio: AudioMethod = "copy" if copied else "reencode" if info.has_audio else "silence"
    log.info("rendered %s: audio %s", output, audio)
    return RenderResult(Path(output), count, fps, layout.width, layout.height, audio)


def _pcm(info: MediaInfo, count: int, fps: Fraction) -> Iterator[av.AudioFrame]:
    """The source's audio (or silence) under the video, as frames for the AAC encoder."""
    return aac_frames(source_samples(info.path, info.start_time), round(count / fps * RATE))


def _captions(
    captions: Captions | str | Path | None, layout: Layout, style: CaptionStyle, duration: float
) -> tuple[CaptionPainter, Captions] | None:
    if captions is None:
        return None
    if not isinstance(captions, Captions):
        is_words = str(captions).lower().endswith(".json")
        captions = Captions.from_words_json(captions) if is_words else Captions.from_srt(captions)
    seam = {"stacked": layout.split, "split": 0.5}.get(layout.kind, 0.7)
    painter = CaptionPainter(style, layout.width, layout.height, default_position=seam)
    return painter, painter.paginate(captions.clipped(duration))


def _draw_caption(
    timeline: tuple[CaptionPainter, Captions] | None, planes: Planes, t: float
) -> None:
    if timeline is None:
        return
    painter, captions = timeline
    event = captions.at(t)
    if event is not None:
        blend(planes, painter.sprite(event))


def _crop_paths(
    crop_path: CropPath | tuple[CropPath, CropPath] | None, layout: Layout
) -> tuple[CropPath, ...]:
    """One path per crop panel: one, or two for the split layout."""
    if layout.kind == "split":
        if isinstance(crop_path, CropPath):
            raise RenderError("the split layout takes two crop paths (top, bottom)")
        return crop_path or (CropPath.fixed(0.25), CropPath.fixed(0.75))
    if isinstance(crop_path, tuple):
        raise RenderError(f"the {layout.kind} layout takes one crop path, not two")
    return (crop_path or CropPath.center(),)


def _panels(
    info: MediaInfo,
    box: Window,
    layout: Layout,
    paths: tuple[CropPath, ...],
    fps: Fraction,
    count: int,
    fill_bottom: bool,
) -> Iterator[Panels]:
    """The source-derived panels of every output frame, in order.

    ``box``: the picture inside any black bars. ``paths``: one per crop panel, top down
    (two for the split layout, each panel half the height). ``fill_bottom``: the stacked
    layout has no background video, so a blurred copy of the picture fills the lower panel.
    """
    tops = [0, layout.top_height][: len(paths)]
    heights = [layout.top_height, layout.height - layout.top_height][: len(paths)]
    sizes = [
        window_size(info.display_width, info.display_height, Fraction(layout.width, h), box)
        for h in heights
    ]
    for index, frame in enumerate(constant_rate(timed_frames(info.path), fps, count)):
        source = decoded_planes(frame).rotated(info.rotation)
        picture = source.crop(box.x, box.y, box.width, box.height)
        if layout.kind == "blurred":
            yield _blurred_panels(picture, layout)
            continue
        t = frame_time(index, fps)
        panels: Panels = []
        for top, path, size, height in zip(tops, paths, sizes, heights, strict=True):
            window = lay.panel_window(path, t, source.width, source.height, size, box)
            panels.append((top, lay.speaker_panel(source, window, layout.width, height)))
        if fill_bottom:
            bottom = lay.blurred(picture, layout.width, layout.height - layout.top_height)
            panels.append((layout.top_height, bottom))
        yield panels


def _blurred_panels(source: Planes, layout: Layout) -> Panels:
    foreground = lay.fit_width(source, layout.width)
    top = max(0, (layout.height - foreground.height) // 4 * 2)
    return [(0, lay.blurred(source, layout.width, layout.height)), (top, foreground)]


def _backgrounds(background: str | Path | None, layout: Layout, fps: Fraction) -> Iterator[Planes]:
    """Background panels for the stacked layout, looped; nothing when not needed."""
    if background is None or layout.kind != "stacked":
        return
    info = probe(background)
    height = layout.height - layout.top_height
    last: tuple[av.VideoFrame, Planes] | None = None
    for frame in looped_frames(background, info.duration, fps):
        if last is None or last[0] is not frame:  # a held frame is scaled once
            source = decoded_planes(frame).rotated(info.rotation)
            last = (frame, lay.cover(source, layout.width, height, sharp=False))
        yield last[1]
