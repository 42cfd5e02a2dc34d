"""Audio for the output: the source's AAC packets copied, or its track resampled and re-encoded.

Either way the audio under the output's first video frame is the source's audio under
its first frame, and it ends with the video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import av
import av.audio.stream
import numpy as np
import numpy.typing as npt

from klipmedia.errors import UnreadableMediaError
from klipmedia.probe import open_media

if TYPE_CHECKING:
    Packet: TypeAlias = av.Packet[Any]

RATE = 48_000
LAYOUT = "stereo"
CHANNELS = 2
AAC_FRAME = 1024
"""Samples per AAC-LC frame (packet), and per frame given to the AAC encoder."""

Samples = npt.NDArray[np.float32]


class CannotCopyAudio(Exception):
    """The AAC packets cannot be copied sample-exactly; the caller re-encodes instead."""


def audio_frame_size(audio: av.audio.stream.AudioStream) -> int:
    """Samples per packet of ``audio`` (AAC's when the codec does not say)."""
    return audio.codec_context.frame_size or AAC_FRAME


def aac_copyable(audio: av.audio.stream.AudioStream) -> bool:
    """AAC-LC timed in samples (MP4/MOV): its packets can be copied and cut on the sample."""
    ctx = audio.codec_context
    return (
        ctx.name == "aac"
        and ctx.profile == "LC"
        and bool(ctx.extradata)
        and ctx.sample_rate > 0
        and audio_frame_size(audio) == AAC_FRAME
        and audio.time_base == Fraction(1, ctx.sample_rate)
    )


def aac_packet_length(packet: Packet) -> int:
    """An audio packet's duration (samples); copying cannot go on without it."""
    if not packet.duration or packet.duration < 0:
        raise CannotCopyAudio("an audio packet has no duration")
    return packet.duration


class AacSplice:
    """AAC packets (timed in samples, see :func:`aac_copyable`) made to start at ``origin``.

    Packets are added to ``pending`` in order. Released ones run without a gap from the
    frame of decoder pre-roll before sample ``origin`` and are shifted so that ``origin``
    is at 0: the pre-roll starts at a negative time and the last packet's duration is cut
    to the stop, which the MP4 muxer turns into the edit list. ``next`` is the sample the
    next released packet starts at. Raises :class:`CannotCopyAudio` when the packets do
    not allow that.
    """

    def __init__(self, origin: int | None = None) -> None:
        self.pending: deque[Packet] = deque()
        self.origin = origin
        self.next: int | None = None

    def release(self, stop: int, *, final: bool) -> Iterator[Packet]:
        """The pending packets that end by sample ``stop``, shifted.

        ``final``: those that start before it, the last one shortened to end there;
        the rest is dropped.
        """
        assert self.origin is not None, "release() before the origin is known"
        while self.pending:
            packet = self.pending[0]
            pts, length = packet.pts, aac_packet_length(packet)
            if pts is None:
                raise CannotCopyAudio("an audio packet has no timestamp")
            if self.next is None:
                if pts + length <= self.origin - AAC_FRAME:
                    self.pending.popleft()  # before the pre-roll frame
                    continue
                if pts > self.origin - AAC_FRAME:
                    raise CannotCopyAudio("the audio starts after the first video frame")
                self.next = pts
            if pts != self.next:
                raise CannotCopyAudio(f"the audio packets have a gap at sample {self.next}")
            if pts >= stop or (not final and pts + length > stop):
                break
            self.pending.popleft()
            self.next = pts + length
            packet.duration = min(length, stop - pts)
            packet.pts = packet.dts = pts - self.origin
            yield packet
        if final:
            self.pending.clear()


@dataclass(frozen=True)
class AacCopy:
    """A source's AAC packets under a video, spliced by :class:`AacSplice` to start at 0.

    ``stream`` (still open) is the template for the output's audio stream.
    """

    stream: av.audio.stream.AudioStream
    packets: tuple[Packet, ...]


@contextmanager
def aac_copy(path: str | Path, start: float, duration: float) -> Iterator[AacCopy | None]:
    """The AAC packets of ``path`` under ``[start, start + duration)`` seconds, to copy.

    Yields None when they cannot be copied sample-exactly: no audio, not AAC-LC timed
    in samples, more than two channels (shorts are stereo), no pre-roll frame before
    ``start``, a gap, or audio ending early.
    """
    with open_media(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        if audio is None or not aac_copyable(audio) or audio.codec_context.channels > CHANNELS:
            yield None
            return
        rate = audio.codec_context.sample_rate
        origin = round(start * rate)
        try:
            packets = _spliced(container.demux(audio), origin, origin + round(duration * rate))
        except av.FFmpegError as exc:
            raise UnreadableMediaError(f"{path}: cannot read the audio ({exc})") from exc
        yield None if packets is None else AacCopy(audio, packets)


def _spliced(packets: Iterator[Packet], origin: int, stop: int) -> tuple[Packet, ...] | None:
    """The packets from the pre-roll frame before ``origin`` to ``stop``, or None."""
    splice = AacSplice(origin)
    try:
        for packet in packets:
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            if packet.pts is not None and packet.pts >= stop:
                break
            splice.pending.append(packet)
        kept = tuple(splice.release(stop, final=True))
    except CannotCopyAudio:
        return None
    if splice.next is None or splice.next < stop:
        return None  # the audio ends before the video
    return kept


def source_samples(path: str | Path, start: float) -> Iterator[Samples]:
    """The first audio track as planar stereo float32 at :data:`RATE`, from ``start`` seconds.

    Samples before ``start`` are dropped; if the track begins after ``start`` the
    gap is filled with silence, so sample 0 is exactly ``start`` (the video's
    first frame). Nothing is yielded for a file without audio.
    """
    with open_media(path) as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=LAYOUT, rate=RATE)
        skip: int | None = None
        try:
            for frame in container.decode(stream):
                if skip is None and frame.time is not None:
                    offset = round((frame.time - start) * RATE)
                    if offset > 0:
                        yield np.zeros((CHANNELS, offset), dtype=np.float32)
                    skip = max(0, -offset)
                for out in resampler.resample(frame):
                    samples = _float32(out)
                    if skip:
                        dropped = min(skip, samples.shape[1])
                        samples, skip = samples[:, dropped:], skip - dropped
                    yield samples
            for out in resampler.resample(None):
                yield _float32(out)
        except av.FFmpegError as exc:
            raise UnreadableMediaError(f"{path}: audio decoding failed ({exc})") from exc


def _float32(frame: av.AudioFrame) -> Samples:
    return np.asarray(frame.to_ndarray(), dtype=np.float32)


def aac_frames(chunks: Iterator[Samples], total: int) -> Iterator[av.AudioFrame]:
    """Exactly ``total`` samples from ``chunks`` as frames of :data:`AAC_FRAME` samples.

    Missing samples at the end become silence; extra samples are dropped.
    """
    pending: list[Samples] = []
    buffered = 0
    emitted = 0
    exhausted = False
    while emitted < total:
        want = min(AAC_FRAME, total - emitted)
        while buffered < want and not exhausted:
            chunk = next(chunks, None)
            if chunk is None:
                exhausted = True
            elif chunk.shape[1]:
                pending.append(chunk)
                buffered += chunk.shape[1]
        if buffered < want:
            pending.append(np.zeros((CHANNELS, want - buffered), dtype=np.float32))
            buffered = want
        block = np.concatenate(pending, axis=1)
        pending, buffered = [block[:, want:]], buffered - want
        yield _frame(block[:, :want], emitted)
        emitted += want


def _frame(samples: Samples, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=LAYOUT)
    frame.sample_rate = RATE
    frame.pts = pts
    return frame
