"""Per-second loudness of a media file's audio for the highlight scorer.

Only the audio stream is decoded (video packets are never decoded), resampled to a low
rate and reduced to one RMS level (over all channels) per second.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from klipmedia.errors import UnreadableMediaError
from klipmedia.probe import open_media, timeline_origin

log = logging.getLogger(__name__)

ANALYSIS_RATE = 8000
SILENCE_DB = -90.0
"""Floor for silent seconds (and seconds past the end of the audio)."""


def loudness_per_second(path: str | Path, rate: int = ANALYSIS_RATE) -> npt.NDArray[np.float64]:
    """RMS level in dBFS (all channels) for each whole or partial second of the first audio stream.

    Returns an empty array when the media has no audio.

    Raises
    ------
    MediaNotFoundError, EmptyMediaError, UnreadableMediaError

    Examples
    --------
    >>> levels = loudness_per_second("talk.mp4")  # doctest: +SKIP
    >>> levels.shape, float(levels.max())  # doctest: +SKIP
    ((3600,), -11.8)
    """
    with open_media(path) as container:
        if not container.streams.audio:
            log.info("%s has no audio stream: no loudness signal", path)
            return np.zeros(0)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", rate=rate)
        bins = _SecondBins(rate, timeline_origin(container))
        try:
            for frame in container.decode(stream):
                for mono in resampler.resample(frame):
                    bins.add(mono)
            for mono in resampler.resample(None):
                bins.add(mono)
        except av.FFmpegError as exc:
            raise UnreadableMediaError(f"{path}: cannot decode the audio ({exc})") from exc
    return bins.levels()


class _SecondBins:
    """Running sums of squared samples and sample counts per second of media time."""

    def __init__(self, rate: int, origin: float) -> None:
        self.rate = rate
        self.origin = origin
        self.sums = np.zeros(64)
        self.counts = np.zeros(64)
        self.used = 0
        self.cursor = 0

    def add(self, frame: av.AudioFrame) -> None:
        """Place the frame's samples by its time on the media timeline (or after the previous)."""
        power = np.mean(np.square(frame.to_ndarray(), dtype=np.float64), axis=0)
        start = self.cursor if frame.time is None else round((frame.time - self.origin) * self.rate)
        self.cursor = start + power.size
        skip = max(0, -start)  # audio before the first video frame is off the timeline
        power, first = power[skip:], start + skip
        if power.size == 0:
            return
        seconds = (first + np.arange(power.size)) // self.rate
        low, high = int(seconds[0]), int(seconds[-1]) + 1
        self._grow(high)
        offsets = seconds - low
        self.sums[low:high] += np.bincount(offsets, weights=power)
        self.counts[low:high] += np.bincount(offsets)
        self.used = max(self.used, high)

    def levels(self) -> npt.NDArray[np.float64]:
        """dBFS per second, floored at :data:`SILENCE_DB`."""
        mean_square = self.sums[: self.used] / np.maximum(self.counts[: self.used], 1)
        with np.errstate(divide="ignore"):
            levels = 10 * np.log10(mean_square)
        floored = np.maximum(np.nan_to_num(levels, nan=SILENCE_DB, neginf=SILENCE_DB), SILENCE_DB)
        return np.asarray(floored, np.float64)

    def _grow(self, size: int) -> None:
        if size > self.sums.size:
            capacity = max(size, 2 * self.sums.size)
            self.sums = np.concatenate((self.sums, np.zeros(capacity - self.sums.size)))
            self.counts = np.concatenate((self.counts, np.zeros(capacity - self.counts.size)))
