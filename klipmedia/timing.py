"""Time conversions in one place: integer pts and Fraction time bases <-> seconds."""

from __future__ import annotations

from fractions import Fraction


def frame_count(duration: float, fps: Fraction) -> int:
    """Number of constant-rate frames that cover ``duration`` seconds (at least 1)."""
    return max(1, round(Fraction(duration).limit_denominator(1_000_000) * fps))


def frame_time(index: int, fps: Fraction) -> float:
    """Start time in seconds of frame ``index`` at ``fps``."""
    return float(index / fps)


def seconds(pts: int, time_base: Fraction) -> float:
    """Seconds for ``pts`` ticks of ``time_base``."""
    return float(pts * time_base)


def output_fps(source_fps: Fraction, max_fps: int = 60) -> Fraction:
    """A sane constant output rate for a source rate (variable-rate sources included).

    Common NTSC rates stay exact (30000/1001); anything above ``max_fps`` is halved
    until it fits; odd averages from variable-rate files round to an integer.
    """
    fps = source_fps
    while fps > max_fps:
        fps /= 2
    if fps.denominator in (1, 1001):
        return fps
    return Fraction(max(1, round(fps)))
