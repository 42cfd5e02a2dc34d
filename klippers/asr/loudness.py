"""Per-second loudness for the highlight scorer, from the audio decoded for transcription.

The parent decodes the audio once (16 kHz mono, sample 0 at the media timeline's zero)
and measures both speech and loudness from it, so the two share one timeline.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SILENCE_DB = -90.0
"""Floor for silent seconds."""


BLOCK_SECONDS = 60
"""Samples are squared in float64 this many seconds at a time, so memory stays flat."""


def loudness_of_samples(samples: npt.ArrayLike, rate: int) -> npt.NDArray[np.float64]:
    """RMS level in dBFS of each whole or partial second of mono ``samples`` at ``rate`` Hz.

    ``samples`` is read :data:`BLOCK_SECONDS` at a time: a memory-mapped hour of audio is
    never copied whole.

    Examples
    --------
    >>> loudness_of_samples(np.full(12_000, 0.5), 8000).round(1).tolist()
    [-6.0, -6.0]
    """
    flat = np.asarray(samples).reshape(-1)
    if flat.size == 0:
        return np.zeros(0)
    block = rate * BLOCK_SECONDS
    power = np.concatenate(
        [_power_per_second(flat[i : i + block], rate) for i in range(0, flat.size, block)]
    )
    counts = np.full(power.size, rate)
    counts[-1] = flat.size - rate * (power.size - 1)
    with np.errstate(divide="ignore"):
        levels = 10 * np.log10(power / counts)
    floored = np.maximum(np.nan_to_num(levels, nan=SILENCE_DB, neginf=SILENCE_DB), SILENCE_DB)
    return np.asarray(floored, np.float64)


def _power_per_second(samples: np.ndarray, rate: int) -> npt.NDArray[np.float64]:
    """Summed squares of each whole or partial second of ``samples``, in float64."""
    power = np.square(samples.astype(np.float64))
    return np.add.reduceat(power, np.arange(0, power.size, rate))
