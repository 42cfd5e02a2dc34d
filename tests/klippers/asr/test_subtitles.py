"""Subtitle, text and words JSON writers, checked with a real SRT parser."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import srt
from click.testing import CliRunner

import klipmedia
from klippers.asr.subtitles import (
    CueLimits,
    make_cues,
    wrap_words,
    write_atomic,
    write_srt,
    write_text,
    write_transcript_files,
    write_words_json,
)
from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.cli import cli

LONG_SENTENCE = (
    "When you build a garden box you want boards that do not warp, screws that do not rust, "
    "and a finish that keeps the water out for many summers to come."
)


def timed_sentence(text: str, start: float, seconds_per_word: float = 0.4) -> Sentence:
    """A sentence whose words follow each other with a small gap."""
    words = []
    for i, token in enumerate(text.split()):
        t = start + i * seconds_per_word
        words.append(Word(round(t, 3), round(t + seconds_per_word * 0.8, 3), token, 0.9))
    return Sentence(words[0].start, words[-1].end, text, tuple(words))


@pytest.fixture
def transcript() -> Transcript:
    sentences = (
        timed_sentence("Hi.", 0.5),
        timed_sentence(LONG_SENTENCE, 1.0),
        timed_sentence("A slow sentence with very long pauses.", 14.0, seconds_per_word=1.6),
        timed_sentence("Thanks.", 25.5),
    )
    return Transcript(language="en", duration=30.0, sentences=sentences)


def parsed_srt(path: Path) -> list[srt.Subtitle]:
    return list(srt.parse(path.read_text(encoding="utf-8")))


def test_srt_round_trips_through_a_parser(tmp_path: Path, transcript: Transcript) -> None:
    cues = make_cues(transcript)
    parsed = parsed_srt(write_srt(transcript, tmp_path / "original.srt"))
    assert [p.index for p in parsed] == list(range(1, len(cues) + 1))
    for cue, sub in zip(cues, parsed, strict=True):
        assert sub.start.total_seconds() == pytest.approx(cue.start, abs=0.0005)
        assert sub.end.total_seconds() == pytest.approx(cue.end, abs=0.0005)
        assert sub.content.split("\n") == list(cue.lines)


def test_cues_respect_line_and_duration_limits(tmp_path: Path, transcript: Transcript) -> None:
    limits = CueLimits()
    parsed = parsed_srt(write_srt(transcript, tmp_path / "original.srt", limits))
    assert len(parsed) > len(transcript.sentences)  # long sentences were split
    for sub in parsed:
        lines = sub.content.split("\n")
        assert 1 <= len(lines) <= limits.max_lines
        assert all(0 < len(line) <= limits.max_chars for line in lines)
        assert 0 < (sub.end - sub.start).total_seconds() <= limits.max_duration
    assert all(a.end <= b.start for a, b in itertools.pairwise(parsed))


def test_each_cue_holds_words_of_one_sentence_only(transcript: Transcript) -> None:
    cues = make_cues(transcript)
    starts = [s.start for s in transcript.sentences]
    assert set(starts) <= {c.start for c in cues}  # every sentence opens a cue
    for sentence in transcript.sentences:
        own = [c for c in cues if max(t for t in starts if t <= c.start) == sentence.start]
        assert " ".join(" ".join(c.lines) for c in own).split() == sentence.text.split()


def test_short_cue_is_held_without_overlapping_the_next(transcript: Transcript) -> None:
    first, second = make_cues(transcript)[:2]
    assert first.lines == ("Hi.",)
    assert first.end == pytest.approx(second.start)  # "Hi." lasts 0.32 s; held until 1.0 s
    last = make_cues(transcript)[-1]
    assert last.end - last.start == pytest.approx(CueLimits().min_duration)


def test_wrap_balances_two_lines_at_word_boundaries() -> None:
    words = ["and", "a", "finish", "that", "keeps", "the", "water", "out", "for", "many"]
    lines = wrap_words(words, max_chars=42)
    assert lines is not None
    assert len(lines) == 2
    assert " ".join(lines).split() == words
    assert abs(len(lines[0]) - len(lines[1])) <= 8
    assert wrap_words(["short", "line"], 42) == ("short line",)
    assert wrap_words(["word"] * 30, 42) is None


def test_a_word_longer_than_a_line_gets_a_cue_line_of_its_own() -> None:
    giant = "Pneumonoultramicroscopicsilicovolcanoconiosis-caused-trouble"
    sentence = timed_sentence(f"Doctors fear {giant} today.", 0.0)
    cues = make_cues(Transcript("en", 5.0, (sentence,)))
    assert any(giant in cue.lines for cue in cues)
    assert all(len(line) <= 42 for cue in cues for line in cue.lines if line != giant)


def test_sentence_without_word_times_is_spread_over_its_span() -> None:
    sentence = Sentence(2.0, 12.0, "No word times came with this rather long sentence at all.")
    cues = make_cues(Transcript("en", 12.0, (sentence,)))
    assert cues[0].start == 2.0
    assert cues[-1].end == pytest.approx(12.0)
    assert all(c.end - c.start <= 7.0 for c in cues)


def _awkward_transcript() -> Transcript:
    """What real ASR output holds: zero-length words, a word at the next one's start,
    sub-millisecond times, and words running past the end of the media."""
    words = (
        Word(0.0, 0.0, "Um,"),
        Word(0.0, 0.4, "so"),
        Word(0.4, 0.4, "yes."),
        Word(0.4004, 0.4004, "Okay."),
        Word(0.4004, 1.2, "Right."),
        Word(9.9996, 10.4, "Bye"),
        Word(10.5, 11.0, "now."),
    )
    sentences = (
        Sentence(0.0, 0.4, "Um, so yes.", words[:3]),
        Sentence(0.4004, 0.4004, "Okay.", words[3:4]),
        Sentence(0.4004, 1.2, "Right.", words[4:5]),
        Sentence(9.9996, 11.0, "Bye now.", words[5:]),
    )
    return Transcript("en", 10.0, sentences)


def test_cues_never_last_no_time_nor_run_past_the_media() -> None:
    cues = make_cues(_awkward_transcript())
    assert cues, "the real words still get cues"
    assert all(round(c.end * 1000) > round(c.start * 1000) for c in cues)
    assert all(c.end <= 10.0 for c in cues)
    assert all(b.start >= a.end for a, b in itertools.pairwise(cues))
    assert "Right." in [line for c in cues for line in c.lines]


def test_our_srt_round_trips_through_srt_and_klipmedia(tmp_path: Path) -> None:
    """What the writer emits, both parsers read back unchanged (times to the millisecond)."""
    path = write_srt(_awkward_transcript(), tmp_path / "original.srt")
    cues = make_cues(_awkward_transcript())
    parsed = parsed_srt(path)
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in parsed] == [
        (c.start, c.end) for c in cues
    ]
    assert [s.content.splitlines() for s in parsed] == [list(c.lines) for c in cues]
    assert [s.index for s in parsed] == list(range(1, len(cues) + 1))
    events = klipmedia.Captions.from_srt(path).events
    assert [(e.start, e.end, e.text) for e in events] == [
        (c.start, c.end, " ".join(c.lines)) for c in cues
    ]


def test_klip_render_reads_the_projects_own_srt(ramp_clip: Path, tmp_path: Path) -> None:
    """``klip render seg.mp4 --srt original.srt`` on a transcript with awkward timings."""
    path = write_srt(_awkward_transcript(), tmp_path / "original.srt")
    out = tmp_path / "short.mp4"
    args = ["render", str(ramp_clip), "-o", str(out), "--srt", str(path)]
    result = CliRunner().invoke(cli, [*args, "--layout", "full", "--preset", "ultrafast"])
    assert result.exit_code == 0, result.output
    assert klipmedia.probe(out).duration > 0


def test_text_and_words_json_writers(tmp_path: Path, transcript: Transcript) -> None:
    text = write_text(transcript, tmp_path / "original.txt").read_text(encoding="utf-8")
    assert text.splitlines() == [s.text for s in transcript.sentences]
    loaded = Transcript.load(write_words_json(transcript, tmp_path / "original.words.json"))
    assert loaded == transcript


def test_empty_transcript_writes_empty_files(tmp_path: Path) -> None:
    paths = write_transcript_files(Transcript("en", 3.0), tmp_path / "out")
    assert paths["srt"].read_text(encoding="utf-8") == ""
    assert paths["text"].read_text(encoding="utf-8") == ""
    assert Transcript.load(paths["words"]).sentences == ()


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "original.txt"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "half written \ud800 text")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["original.txt"]
