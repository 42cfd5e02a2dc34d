"""Audio for the output: the source's AAC packets copied, or its track resampled and re-encoded.

Either way the audio under the output's first video frame is the source's audio under
its first frame, and it ends with the video.
"""

from __future__ import annotations

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
FRAME_SIZE = 1024
AAC_FRAME = 1024
"""Samples per AAC-LC frame (packet)."""

Samples = npt.NDArray[np.float32]


def aac_copyable(audio: av.audio.stream.AudioStream) -> bool:
    """AAC-LC timed in samples (MP4/MOV): its packets can be copied and cut on the sample."""
    ctx = audio.codec_context
    return (
        ctx.name == "aac"
        and ctx.profile == "LC"
        and bool(ctx.extradata)
        and ctx.sample_rate > 0
        and (ctx.frame_size or AAC_FRAME) == AAC_FRAME
        and audio.time_base == Fraction(1, ctx.sample_rate)
    )


@dataclass(frozen=True)
class AacCopy:
    """A source's AAC packets under a video, timed in samples from its first frame.

    The first packet is one frame of decoder pre-roll before 0 and the last one's
    duration ends with the video; the MP4 muxer writes both into the edit list.
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
        try:
            packets = _packets_under(container.demux(audio), round(start * rate), duration * rate)
        except av.FFmpegError as exc:
            raise UnreadableMediaError(f"{path}: cannot read the audio ({exc})") from exc
        yield None if packets is None else AacCopy(audio, packets)


def _packets_under(
    packets: Iterator[Packet], origin: int, length: float
) -> tuple[Packet, ...] | None:
    """Packets from the pre-roll frame to sample ``length``, shifted so ``origin`` is 0."""
    stop = round(length)
    kept: list[Packet] = []
    expected: int | None = None
    for packet in packets:
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        if packet.pts is None or not packet.duration or packet.duration < 0:
            return None
        pts = packet.pts - origin
        if pts >= stop:
            break
        if pts + packet.duration <= -AAC_FRAME:
            continue  # before the pre-roll frame
        if expected is None and pts > -AAC_FRAME:
            return None  # no whole frame of pre-roll before the video's first frame
        if expected is not None and pts != expected:
            return None  # a gap or an overlap
        expected = pts + packet.duration
        packet.pts = packet.dts = pts
        packet.duration = min(packet.duration, stop - pts)
        kept.append(packet)
    if expected is None or expected < stop:
        return None  # the audio ends before the video
    return tuple(kept)


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
    """Exactly ``total`` samples from ``chunks`` as frames of :data:`FRAME_SIZE` samples.

    Missing samples at the end become silence; extra samples are dropped.
    """
    pending: list[Samples] = []
    buffered = 0
    emitted = 0
    exhausted = False
    while emitted < total:
        want = min(FRAME_SIZE, total - emitted)
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
