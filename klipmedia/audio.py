"""Audio for the output: the source's track resampled, trimmed to the video, in AAC-sized frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from klipmedia.errors import UnreadableMediaError
from klipmedia.probe import open_media

RATE = 48_000
LAYOUT = "stereo"
CHANNELS = 2
FRAME_SIZE = 1024

Samples = npt.NDArray[np.float32]


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
