"""Read what a media file holds without decoding it: :func:`probe`."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container

from klipmedia.errors import (
    EmptyMediaError,
    MediaNotFoundError,
    NoVideoStreamError,
    UnreadableMediaError,
)

log = logging.getLogger(__name__)

FALLBACK_FPS = Fraction(30)


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` found in a media file.

    ``start_time`` is the presentation time (seconds) of the first video frame in the
    file's own timestamps: the media timeline's zero (see :func:`timeline_origin`);
    ``width``/``height`` are the coded size; ``display_width``/``display_height``
    account for ``rotation`` (degrees counter-clockwise the coded frames must be
    turned to show upright: 0, 90, 180 or 270).
    """

    path: Path
    duration: float
    fps: Fraction
    width: int
    height: int
    rotation: int
    start_time: float
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    audio_sample_rate: int | None

    @property
    def display_width(self) -> int:
        """Width of the upright picture."""
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        """Height of the upright picture."""
        return self.width if self.rotation in (90, 270) else self.height


def open_media(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open ``path`` for reading, turning FFmpeg's failures into typed errors."""
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise EmptyMediaError(f"{path}: the file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise UnreadableMediaError(f"{path}: not a readable media file ({exc})") from exc


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe the first video stream (and audio, if any) of ``path``.

    Raises
    ------
    MediaNotFoundError, EmptyMediaError, UnreadableMediaError, NoVideoStreamError

    Examples
    --------
    >>> info = probe("talk.mp4")  # doctest: +SKIP
    >>> info.fps, info.display_width, info.has_audio  # doctest: +SKIP
    (Fraction(30, 1), 1920, True)
    """
    path = Path(path)
    with open_media(path) as container:
        if not container.streams.video:
            raise NoVideoStreamError(f"{path}: the file has no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = _duration(container, video)
        if duration <= 0:
            raise UnreadableMediaError(f"{path}: the video stream has no duration (truncated?)")
        return MediaInfo(
            path=path,
            duration=duration,
            fps=stream_fps(video),
            width=video.codec_context.width,
            height=video.codec_context.height,
            video_codec=video.codec_context.name,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio else None,
            **_first_frame(container, path),
        )


def timeline_origin(container: av.container.InputContainer) -> float:
    """The file's timestamp (seconds) of the media timeline's zero: its first video frame.

    Files rarely start at 0: MPEG-TS carries the broadcast clock (e.g. 16.4 s), ``-c copy``
    trims and stream recordings keep their offset, edit lists shift or start negative, and
    audio may begin before or after the picture. Every stage (transcription, loudness,
    cutting, face analysis, thumbnails) measures time from this one origin, so a time in
    the transcript is the same moment in the cut. Audio-only media start at the
    container's start.
    """
    if container.streams.video:
        video = container.streams.video[0]
        if video.start_time is not None and video.time_base is not None:
            return float(video.start_time * video.time_base)
    start: int | None = container.start_time  # None when unknown, whatever the stubs say
    return 0.0 if start is None else float(start / av.time_base)


def stream_fps(stream: av.video.stream.VideoStream) -> Fraction:
    """The stream's average frame rate, falling back to its guessed rate, then 30."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate <= 240:
            return Fraction(rate)
    log.warning("stream reports no usable frame rate; assuming %s fps", FALLBACK_FPS)
    return FALLBACK_FPS


TAIL_SCAN_S = 30.0
"""How much of a file's end is read for the last picture when its video has no duration."""


def _duration(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> float:
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is None:
        return 0.0
    length = container.duration / av.time_base
    return _video_end(container.name, length) or length


def _video_end(path: str, length: float) -> float | None:
    """Where the last picture ends (seconds on the media timeline), from the packets of the
    file's last :data:`TAIL_SCAN_S`; None when none is found.

    WebM and Matroska record no stream duration, and the container's is its longest
    stream's: audio that runs on after the picture stops would pass for video.
    """
    try:
        with av.open(path) as container:
            video = container.streams.video[0]
            if video.time_base is None:
                return None
            origin = timeline_origin(container)
            tail = Fraction(origin + max(0.0, length - TAIL_SCAN_S))
            container.seek(round(tail / video.time_base), stream=video, backward=True)
            frame = 1 / stream_fps(video)
            ends = [
                packet.pts * video.time_base
                + (packet.duration * video.time_base if packet.duration else frame)
                for packet in container.demux(video)
                if packet.pts is not None
            ]
    except av.FFmpegError:
        return None
    return float(max(ends)) - origin if ends else None


def _first_frame(container: av.container.InputContainer, path: Path) -> dict[str, Any]:
    """Rotation and start time from the first decoded frame.

    Decoding it also proves the stream is decodable at all.
    """
    stream = container.streams.video[0]
    try:
        for frame in container.decode(stream):
            if frame.time is not None:
                return {"rotation": int(frame.rotation) % 360, "start_time": frame.time}
    except av.FFmpegError as exc:
        raise UnreadableMediaError(f"{path}: the video cannot be decoded ({exc})") from exc
    raise UnreadableMediaError(f"{path}: the video stream holds no decodable frame (truncated?)")
