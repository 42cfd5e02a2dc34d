"""Typed errors raised by klipmedia; catch :class:`KlipmediaError` for all of them."""

from __future__ import annotations


class KlipmediaError(Exception):
    """Base class of every error klipmedia raises on purpose."""


class MediaError(KlipmediaError):
    """A media file cannot be used."""


class MediaNotFoundError(MediaError, FileNotFoundError):
    """The media file does not exist."""


class EmptyMediaError(MediaError, ValueError):
    """The media file is zero bytes long."""


class UnreadableMediaError(MediaError, ValueError):
    """The file is not a container/codec FFmpeg can read, or it is truncated."""


class NoVideoStreamError(MediaError, ValueError):
    """The file has no video stream (audio-only or data-only)."""


class CaptionError(KlipmediaError, ValueError):
    """Captions (SRT text or timed words) are malformed."""


class CutRangeError(KlipmediaError, ValueError):
    """The requested time range is empty or lies outside the media."""


class RenderError(KlipmediaError):
    """Rendering failed for a reason other than bad input media."""
