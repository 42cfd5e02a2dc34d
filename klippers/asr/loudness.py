"""Per-second loudness for the highlight scorer, from the audio decoded for transcription.

The parent decodes the audio once (16 kHz mono, sample 0 at the media timeline's zero)
and measures both speech and loudness from it, so the two share one timeline.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SILENCE_DB = -90.0
"""Floor for silent seconds."""


def loudness_of_samples(samples: npt.ArrayLike, rate: int) -> npt.NDArray[np.float64]:
    """RMS level in dBFS of each whole or partial second of mono ``samples`` at ``rate`` Hz.

    Examples
    --------
    >>> loudness_of_samples(np.full(12_000, 0.5), 8000).round(1).tolist()
    [-6.0, -6.0]
    """
    power = np.square(np.asarray(samples, np.float64).reshape(-1))
    starts = np.arange(0, power.size, rate)
    if starts.size == 0:
        return np.zeros(0)
    counts = np.diff(np.append(starts, power.size))
    with np.errstate(divide="ignore"):
        levels = 10 * np.log10(np.add.reduceat(power, starts) / counts)
    floored = np.maximum(np.nan_to_num(levels, nan=SILENCE_DB, neginf=SILENCE_DB), SILENCE_DB)
    return np.asarray(floored, np.float64)
