"""Resting listeners: who the last speaker window names, sample by sample, and how the
mouths skipped at single samples are scored."""

from __future__ import annotations

import itertools
import math

from klipmedia.faces import Face
from klipmedia.reframe import Sample
from klipmedia.speaker import HOP, Loudness, RecentSpeaker, active_speakers

RATE = 7.5


def envelope(t: float) -> float:
    """A speech-like loudness envelope, 0-1, of about four syllables a second."""
    return max(0.0, math.sin(2 * math.pi * 2.1 * t)) * (0.6 + 0.4 * math.sin(1.3 * t) ** 2)


def level(seconds: float) -> Loudness:
    return Loudness(tuple(-60.0 + 45.0 * envelope(i * HOP) for i in range(round(seconds / HOP))))


def face(track: int, mouth: float | None) -> Face:
    return Face(200.0 + 800 * track, 300.0, 200.0, 200.0, 0.9, track=track, mouth=mouth)


def listener(t: float) -> float:
    """A chewing listener: a mouth moving out of time with the voice."""
    return 0.2 + 0.1 * math.sin(2 * math.pi * 1.3 * t + 1.0)


def test_the_listener_of_a_clear_speaker_rests_at_every_other_sample() -> None:
    recent = RecentSpeaker(level(4.0), RATE)
    resting = []
    for index in range(30):
        t = index / RATE
        rests = recent.resting()
        resting.append(1 in rests)
        assert 0 not in rests  # the speaker is always measured
        mouth = None if 1 in rests else listener(t)
        recent.add(t, [face(0, 0.1 + 0.4 * envelope(t)), face(1, mouth)])
    assert not any(resting[:4])  # too few mouths to score yet
    assert any(resting)
    assert not any(a and b for a, b in itertools.pairwise(resting))


def test_nobody_rests_while_nobody_is_clearly_speaking() -> None:
    recent = RecentSpeaker(level(4.0), RATE)
    for index in range(30):
        t = index / RATE
        assert recent.resting() == frozenset()
        recent.add(t, [face(0, listener(t)), face(1, listener(t))])  # a tie: nobody clear


def test_a_listener_who_starts_speaking_stops_resting() -> None:
    recent = RecentSpeaker(level(8.0), RATE)
    rests_late = []
    for index in range(60):
        t = index / RATE
        rests = recent.resting()
        talking = 0.1 + 0.4 * envelope(t)
        mouths = (talking, listener(t)) if t < 4 else (listener(t), talking)
        recent.add(
            t, [face(track, None if track in rests else m) for track, m in enumerate(mouths)]
        )
        if t > 5.5:
            rests_late.append(rests)
    assert all(1 not in rests for rests in rests_late)
    assert any(0 in rests for rests in rests_late)


def test_a_mouth_skipped_at_single_samples_still_names_its_speaker() -> None:
    """A listener who starts to speak while resting is named before its mouths are dense:
    one missing sample is its neighbours' mean (only a window in which the mouth is seen
    at 70 % of the samples is scored)."""
    times = [i / RATE for i in range(30)]
    samples = [
        Sample(t, (face(0, listener(t)), face(1, 0.1 + 0.4 * envelope(t) if i % 3 else None)))
        for i, t in enumerate(times)
    ]
    named = active_speakers(samples, level(4.0))
    assert named.count(1) > 10
    assert 0 not in named
