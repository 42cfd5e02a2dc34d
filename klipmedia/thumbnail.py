"""A still picture of a video: :func:`thumbnail`."""

from __future__ import annotations

import os
from pathlib import Path

import av

from klipmedia.errors import UnreadableMediaError
from klipmedia.frames import decoded_planes, open_video, planes_to_frame
from klipmedia.io import atomic_path
from klipmedia.probe import probe


def thumbnail(
    video: str | os.PathLike[str],
    output: str | os.PathLike[str],
    at: float | None = None,
    width: int | None = None,
) -> Path:
    """Save the upright frame shown at ``at`` seconds (default: a third in) as a PNG.

    ``width`` scales the picture keeping its aspect ratio. Written atomically.

    Examples
    --------
    >>> thumbnail("talk.mp4", "thumbnail.png", width=640)  # doctest: +SKIP
    PosixPath('thumbnail.png')
    """
    info = probe(video)
    target = info.start_time + (info.duration / 3 if at is None else max(0.0, at))
    picture = _frame_at(Path(video), target)
    upright = planes_to_frame(decoded_planes(picture).rotated(info.rotation))
    if width is not None:
        height = max(2, round(upright.height * width / upright.width))
        upright = upright.reformat(width=width, height=height)
    image = upright.to_image()  # type: ignore[no-untyped-call]
    with atomic_path(output) as temp:
        image.save(temp, format="PNG")
    return Path(output)


def _frame_at(path: Path, seconds: float) -> av.VideoFrame:
    """The last frame that starts at or before ``seconds``."""
    container, stream = open_video(path)
    chosen: av.VideoFrame | None = None
    with container:
        if stream.time_base is not None and seconds > 0:
            container.seek(int(seconds / stream.time_base), stream=stream)
        try:
            for frame in container.decode(stream):
                if chosen is not None and frame.time is not None and frame.time > seconds:
                    break
                chosen = frame
        except av.FFmpegError as exc:
            raise UnreadableMediaError(f"{path}: decoding failed ({exc})") from exc
    if chosen is None:
        raise UnreadableMediaError(f"{path}: no frame to make a thumbnail from")
    return chosen
