"""Windows and their merge: every word once, in order, whatever the overlap holds."""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest

from klippers.asr.transcript import Word
from klippers.contract import MAX_SHARD_COUNT, MIN_SHARDED_SECONDS, SHARD_SECONDS
from klippers.jobs.runner import JobInputError
from klippers.jobs.shard import parse_shard
from klippers.jobs.windows import (
    ShardPlan,
    Window,
    join_point,
    merge_shards,
    merge_words,
    shard_count_for,
    shard_windows,
    shifted,
)

INPUTS = {"source": {"size": 1, "sha256": "0" * 64}, "asr": {"model": "tiny.en"}}


def speech(duration: float, seed: int = 0) -> list[Word]:
    """Words of 0.2 to 0.6 s with pauses of 0.05 to 1.2 s, numbered in order."""
    rng = random.Random(seed)
    words, t = [], 0.3
    while t < duration - 1:
        length = rng.uniform(0.2, 0.6)
        words.append(Word(round(t, 3), round(t + length, 3), f"w{len(words)}"))
        t += length + rng.uniform(0.05, 1.2)
    return words


def heard(words: list[Word], window: Window, jitter: float = 0.0, seed: int = 0) -> list[Word]:
    """What a window's transcription returns: the words inside its audio (a word cut by an
    edge comes out garbled), times shifted by up to ``jitter`` seconds."""
    rng = random.Random(seed)
    out = []
    for w in words:
        if w.end <= window.start or w.start >= window.end:
            continue
        if w.start < window.start or w.end > window.end:
            out.append(Word(max(w.start, window.start), min(w.end, window.end), "garbled"))
            continue
        d = rng.uniform(-jitter, jitter)
        out.append(Word(w.start + d, w.end + d, w.text))
    return out


def test_windows_share_the_timeline_and_overlap_by_the_margin() -> None:
    windows = shard_windows(3600, 5, overlap=10)  # 12-minute shares

    assert [w.share_start for w in windows] == [0, 720, 1440, 2160, 2880]
    assert windows[-1].share_end == 3600
    assert (windows[0].start, windows[0].end) == (0, 730)
    assert (windows[2].start, windows[2].end) == (1430, 2170)
    assert windows[-1].end == 3600


def test_shard_count_grows_with_duration_up_to_the_limit() -> None:
    assert shard_count_for(MIN_SHARDED_SECONDS - 1) == 1
    assert shard_count_for(MIN_SHARDED_SECONDS) == math.ceil(MIN_SHARDED_SECONDS / SHARD_SECONDS)
    assert shard_count_for(3600) == 1
    assert shard_count_for(2 * 3600) == 8
    assert shard_count_for(100 * 3600) == MAX_SHARD_COUNT


@pytest.mark.parametrize("count", [2, 3, 7])
@pytest.mark.parametrize("jitter", [0.0, 0.03])
def test_merge_keeps_every_word_once_in_order(count: int, jitter: float) -> None:
    duration = 600.0
    words = speech(duration, seed=count)
    windows = shard_windows(duration, count, overlap=10)
    parts = [heard(words, w, jitter, seed=k) for k, w in enumerate(windows)]

    merged = merge_words(parts, windows)

    assert [w.text for w in merged] == [w.text for w in words]


def test_merged_transcript_is_monotonic_and_grouped() -> None:
    duration = 300.0
    words = speech(duration, seed=4)
    windows = shard_windows(duration, 3, overlap=10)
    parts = [heard(words, w, 0.05, seed=k) for k, w in enumerate(windows)]

    transcript = merge_shards(parts, windows, "en", duration)

    merged = transcript.words
    assert [w.text for w in merged] == [w.text for w in words]
    assert all(a.end <= b.start for a, b in pairwise(merged))
    assert all(w.start <= w.end <= duration for w in merged)
    assert transcript.duration == duration
    assert transcript.sentences


def test_the_cut_falls_in_the_widest_pause_of_either_side() -> None:
    before = [Word(95.0, 99.0, "a"), Word(99.5, 100.4, "b")]
    after = [Word(99.6, 100.5, "b"), Word(103.0, 104.0, "c")]

    cut = join_point(before, after, boundary=100.0, reach=5.0)

    assert cut == pytest.approx((100.5 + 103.0) / 2)


def test_a_join_without_words_is_cut_at_the_boundary() -> None:
    assert join_point([], [], boundary=50.0, reach=5.0) == 50.0


def test_words_of_one_window_are_moved_onto_the_timeline() -> None:
    from klippers.asr.transcript import Sentence, Transcript

    local = Transcript("en", 20.0, (Sentence(1.0, 2.0, "hi", (Word(1.0, 2.0, "hi"),)),))

    moved = shifted(local, 710.0, 1450.0)

    assert moved.words == (Word(711.0, 712.0, "hi"),)
    assert (moved.sentences[0].start, moved.duration) == (711.0, 1450.0)


def test_plan_round_trips_and_names_each_window_inputs() -> None:
    plan = ShardPlan(3, 900.0, 10.0, INPUTS)

    again = ShardPlan.from_json(plan.to_json())

    assert again == plan
    assert plan.shard_inputs(2) == {**INPUTS, "window": [290.0, 610.0]}
    assert ShardPlan(1, None, 10.0, INPUTS).windows == ()


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"version": 1, "shard_count": 0, "duration": 9, "overlap": 1, "inputs": {}}',
        '{"version": 1, "shard_count": 3, "duration": null, "overlap": 1, "inputs": {}}',
        "not json",
    ],
)
def test_a_bad_plan_is_bad_input(text: str) -> None:
    with pytest.raises(JobInputError, match="shard plan"):
        ShardPlan.from_json(text)


def test_shard_values() -> None:
    assert parse_shard("plan") is None
    assert parse_shard(" 3 ") == 3
    for bad in ("0", "-1", "x", str(MAX_SHARD_COUNT + 1)):
        with pytest.raises(JobInputError, match="SHARD"):
            parse_shard(bad)
