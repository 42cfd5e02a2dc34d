from __future__ import annotations

import logging
from pathlib import Path

import pytest

from klipmedia import CaptionError, CaptionEvent, Captions, CaptionStyle, TimedWord
from klipmedia.captions import parse_srt
from klipmedia.text import SAFE_BOTTOM, SAFE_TOP, CaptionPainter

SRT = (
    "1\n00:00:01,000 --> 00:00:02,500\nHello <i>world</i>\n\n"
    "2\n00:00:03,000 --> 00:00:04,000\nBye\n"
)


def test_parse_basic_srt_and_lookup() -> None:
    caps = Captions.from_srt(SRT)
    assert [(e.start, e.end, e.text) for e in caps.events] == [
        (1.0, 2.5, "Hello world"),
        (3.0, 4.0, "Bye"),
    ]
    assert caps.at(0.999) is None
    assert caps.at(1.0).text == "Hello world"  # type: ignore[union-attr]
    assert caps.at(2.5) is None
    assert caps.at(3.5).text == "Bye"  # type: ignore[union-attr]


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "subs.srt"
    path.write_bytes(("\ufeff" + SRT).replace("\n", "\r\n").encode("utf-8"))
    assert Captions.from_srt(path) == Captions.from_srt(SRT)


def test_overlapping_cues_end_the_earlier_one() -> None:
    srt = "1\n00:00:00,000 --> 00:00:03,000\nfirst\n\n2\n00:00:02,000 --> 00:00:04,000\nsecond\n"
    caps = Captions.from_srt(srt)
    assert [(e.start, e.end, e.text) for e in caps.events] == [
        (0.0, 2.0, "first"),
        (2.0, 4.0, "second"),
    ]


def test_cues_past_the_end_are_clipped_or_dropped() -> None:
    caps = Captions.from_srt(SRT).clipped(3.5)
    assert [(e.start, e.end) for e in caps.events] == [(1.0, 2.5), (3.0, 3.5)]
    assert Captions.from_srt(SRT).clipped(2.0).events[-1].end == 2.0
    assert len(Captions.from_srt(SRT).clipped(2.0).events) == 1


@pytest.mark.parametrize(
    "line",
    [
        "00:00:01,000 -> 00:00:02,000",
        "00:00:01 --> 00:00:02,000",
        "00:61:01,000 --> 00:62:02,000",
        "aa:00:01,000 --> 00:00:02,000",
    ],
)
def test_malformed_timestamps_name_the_line(line: str) -> None:
    with pytest.raises(CaptionError, match=r"SRT line 2"):
        Captions.from_srt(f"1\n{line}\ntext\n")


def test_cue_ending_before_it_starts_is_an_error() -> None:
    with pytest.raises(CaptionError, match="before it starts"):
        Captions.from_srt("1\n00:00:02,000 --> 00:00:01,000\ntext\n")


def test_real_world_srt_quirks_are_accepted() -> None:
    srt = (
        "\ufeff\r\n\r\n"  # BOM and blank lines before the first cue
        "7\r\n00:00:01.000 --> 00:00:02.500\r\n<i>Hello</i> <b>big</b>\r\nworld\r\n\r\n\r\n\r\n"
        "00:00:03,000 --> 00:00:04,000 X1:10 X2:20 Y1:30 Y2:40\r\n{\\an8}No number\r\n\r\n"
        '1.5\r\n00:00:05,250 --> 00:00:06,000\r\n<font color="#ffffff">Odd</font> number\r\n'
        "\r\n\r\n"
    )
    assert [(e.start, e.end, e.text) for e in parse_srt(srt)] == [
        (1.0, 2.5, "Hello big world"),
        (3.0, 4.0, "No number"),
        (5.25, 6.0, "Odd number"),
    ]


def test_cues_are_sorted_and_textless_cues_dropped() -> None:
    srt = (
        "2\n00:00:03,000 --> 00:00:04,000\nsecond\n\n"
        "1\n00:00:01,000 --> 00:00:02,000\nfirst\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\n<i></i>\n"
    )
    assert [e.text for e in parse_srt(srt)] == ["first", "second"]


def test_zero_length_cue_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    srt = SRT + "\n3\n00:00:05,000 --> 00:00:05,000\nflash\n"
    with caplog.at_level(logging.WARNING, logger="klipmedia.captions"):
        caps = Captions.from_srt(srt)
    assert [e.text for e in caps.events] == ["Hello world", "Bye"]
    assert "zero-length SRT cue 3 (00:00:05,000 --> 00:00:05,000)" in caplog.text


def test_cue_ending_before_it_starts_names_the_cue() -> None:
    srt = SRT + "\n3\n00:00:06,000 --> 00:00:05,500\nback\n"
    with pytest.raises(CaptionError, match=r"cue 3 \(00:00:06,000 --> 00:00:05,500\) ends before"):
        parse_srt(srt)


@pytest.mark.parametrize(
    ("block", "line", "bad"),
    [
        # srt reads these as cues at the wrong time (61 min, no or 5 ms) ...
        ("3\n00:61:00,000 --> 00:62:00,000\nc\n", 10, "00:61:00,000 --> 00:62:00,000"),
        ("3\n00:00:05 --> 00:00:06,000\nc\n", 10, "00:00:05 --> 00:00:06,000"),
        ("3\n00:00:05,5 --> 00:00:06,000\nc\n", 10, "00:00:05,5 --> 00:00:06,000"),
        # ... folds this one into the text of cue 2 ...
        ("3\naa:bb:cc,ddd --> 00:00:06,000\nc\n", 10, "aa:bb:cc,ddd --> 00:00:06,000"),
        # ... and raises SRTParseError for these.
        ("3\n00:00:05,000 -> 00:00:06,000\nc\n", 10, "00:00:05,000 -> 00:00:06,000"),
        (
            "\n\n3\n00:00:05,000 > 00:00:06,000\nc\n\n4\n00:00:07,000 --> 00:00:08,000\nd\n",
            12,
            "00:00:05,000 > 00:00:06,000",
        ),
    ],
)
def test_malformed_timestamp_after_good_cues_names_line_and_text(
    block: str, line: int, bad: str
) -> None:
    with pytest.raises(CaptionError, match=r"SRT line \d+: malformed timestamp line") as caught:
        parse_srt(SRT + "\n" + block)
    assert f"SRT line {line}:" in str(caught.value)
    assert repr(bad) in str(caught.value)


@pytest.mark.parametrize(
    ("srt", "bad"),
    [
        # srt folds a block it cannot read into the previous cue's text ...
        (SRT + "\n3\nfoo -> bar\nc\n", "foo -> bar"),
        (SRT + "\n3\n", "3"),
        # ... and a cue with no blank line before it.
        (SRT + "00:00:05,000 --> 00:00:06,000\nc\n", "00:00:05,000 --> 00:00:06,000"),
    ],
)
def test_blocks_srt_folds_into_a_cue_are_errors(srt: str, bad: str) -> None:
    with pytest.raises(CaptionError, match=r"cue 2 \(00:00:03,000 --> 00:00:04,000\)") as caught:
        parse_srt(srt)
    assert repr(bad) in str(caught.value)


def test_missing_srt_file_is_a_caption_error(tmp_path: Path) -> None:
    with pytest.raises(CaptionError, match="cannot read"):
        Captions.from_srt(tmp_path / "missing.srt")


def test_word_groups_highlight_each_word_in_turn() -> None:
    words = [
        TimedWord(0.0, 0.3, "One"),
        TimedWord(0.3, 0.6, "two"),
        TimedWord(0.6, 0.9, "three."),
        TimedWord(1.0, 1.2, "Four"),
    ]
    caps = Captions.from_words(words)
    assert [(e.words, e.highlight) for e in caps.events] == [
        (("One", "two", "three."), 0),
        (("One", "two", "three."), 1),
        (("One", "two", "three."), 2),
        (("Four",), 0),
    ]
    assert caps.events[2].end == 1.0  # held until the next group starts
    assert caps.events[3].end == pytest.approx(1.7)  # held 0.5 s after the last word


def test_word_groups_break_at_max_words_and_long_pauses() -> None:
    words = [TimedWord(i * 0.2, i * 0.2 + 0.15, f"w{i}") for i in range(6)]
    words.append(TimedWord(5.0, 5.2, "late"))
    groups = {e.words for e in Captions.from_words(words, max_words=4).events}
    assert groups == {("w0", "w1", "w2", "w3"), ("w4", "w5"), ("late",)}


def test_words_json_formats(tmp_path: Path) -> None:
    doc = (
        '{"sentences": [{"start": 0, "end": 1, "text": "a b", "words": '
        '[{"start": 0, "end": 0.5, "text": "a"}, {"start": 0.5, "end": 1, "text": "b"}]}]}'
    )
    (tmp_path / "t.json").write_text(doc)
    (tmp_path / "l.json").write_text('[{"start": 0, "end": 0.5, "text": "a"}]')
    assert len(Captions.from_words_json(tmp_path / "t.json").events) == 2
    assert len(Captions.from_words_json(tmp_path / "l.json").events) == 1
    (tmp_path / "bad.json").write_text('[{"text": "a"}]')
    with pytest.raises(CaptionError, match="start/end"):
        Captions.from_words_json(tmp_path / "bad.json")


def test_invalid_word_times_are_rejected() -> None:
    with pytest.raises(CaptionError, match="invalid time range"):
        Captions.from_words([TimedWord(2.0, 1.0, "back")])


def test_long_cue_is_split_into_pages_that_fit() -> None:
    text = " ".join(f"word{i}" for i in range(60))
    painter = CaptionPainter(CaptionStyle(), 1080, 1920, default_position=0.5)
    caps = painter.paginate(Captions.from_srt(f"1\n00:00:00,000 --> 00:00:06,000\n{text}\n"))
    assert len(caps.events) > 1
    assert " ".join(w for e in caps.events for w in e.words) == text
    assert caps.events[0].start == 0.0
    assert caps.events[-1].end == 6.0
    for event in caps.events:
        sprite = painter.sprite(event)
        assert sprite.y >= SAFE_TOP * 1920
        assert sprite.y + sprite.height <= (1 - SAFE_BOTTOM) * 1920
        assert sprite.x >= 0
        assert sprite.x + sprite.width <= 1080


def test_one_giant_word_is_shrunk_not_cut() -> None:
    painter = CaptionPainter(CaptionStyle(), 1080, 1920, default_position=0.5)
    event = Captions.from_srt("1\n00:00:00,000 --> 00:00:01,000\n" + "W" * 60 + "\n").events[0]
    sprite = painter.sprite(event)
    assert sprite.x >= 0
    assert sprite.x + sprite.width <= 1080


def test_style_is_validated() -> None:
    with pytest.raises(CaptionError, match="text_color"):
        CaptionStyle(text_color="not-a-colour")
    with pytest.raises(CaptionError, match="min_font_size"):
        CaptionStyle(font_size=20, min_font_size=40)


def test_bundled_font_is_used_by_default() -> None:
    style = CaptionStyle()
    assert style.font_path.name == "Inter-ExtraBold.otf"
    assert style.font_path.is_file()


def test_pages_are_balanced_without_orphans() -> None:
    text = "This caption is long enough that it should wrap onto a second line nicely " * 2
    painter = CaptionPainter(CaptionStyle(), 1080, 1920, default_position=0.5)
    caps = painter.paginate(Captions.from_srt(f"1\n00:00:00,000 --> 00:00:06,000\n{text}\n"))
    sizes = [len(e.words) for e in caps.events]
    assert len(sizes) >= 2
    assert min(sizes) >= max(sizes) // 2, sizes


def _timed(*texts: str) -> list[TimedWord]:
    return [TimedWord(0.25 * i, 0.25 * i + 0.2, text) for i, text in enumerate(texts)]


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (("ill", "-disposed"), "ill-disposed"),
        (("don", "'t", "go"), "don't go"),
        (("it", "'s", "fine"), "it's fine"),
        (("IT", "’S", "FINE"), "IT’S FINE"),
        (("we", "'re", "well", "-known"), "we're well-known"),
        (("wait", "-", "what"), "wait - what"),
        (("so", "—", "yes"), "so — yes"),
        (("minus", "-5"), "minus -5"),
        (("just", "'cause"), "just 'cause"),
        (("'s", "first"), "'s first"),
    ],
)
def test_word_pieces_whisper_splits_off_are_joined(tokens: tuple[str, ...], text: str) -> None:
    caps = Captions.from_words(_timed(*tokens), max_words=10)
    assert {e.text for e in caps.events} == {text}


def test_a_joined_word_is_highlighted_while_each_of_its_pieces_is_spoken() -> None:
    caps = Captions.from_words(_timed("an", "ill", "-disposed", "man"))
    assert [(e.start, e.end, e.words[e.highlight or 0]) for e in caps.events] == [
        (0.0, 0.25, "an"),
        (0.25, 0.75, "ill-disposed"),
        (0.75, pytest.approx(1.45), "man"),
    ]
    assert all(e.words == ("an", "ill-disposed", "man") for e in caps.events)


@pytest.mark.parametrize(
    ("tokens", "language", "text"),
    [
        (("我", "今天", "很", "高兴", "。"), None, "我今天很高兴。"),
        (("今日", "は", "いい", "天気"), "ja", "今日はいい天気"),
        (("สวัสดี", "ครับ"), None, "สวัสดีครับ"),
        (("I", "love", "東京", "tower"), "en", "I love東京tower"),
        (("New", "York"), None, "New York"),
        (("100", "%"), "zh", "100%"),
        (("100", "%"), "zh-Hans", "100%"),
        (("100", "%"), "en", "100 %"),
    ],
)
def test_no_space_scripts_and_languages_are_joined_without_spaces(
    tokens: tuple[str, ...], language: str | None, text: str
) -> None:
    caps = Captions.from_words(_timed(*tokens), max_words=10, language=language)
    assert {e.text for e in caps.events} == {text}
    assert [e.highlight for e in caps.events] == list(range(len(tokens)))


def test_words_json_uses_the_transcripts_language(tmp_path: Path) -> None:
    words = '[{"start": 0, "end": 0.5, "text": "100"}, {"start": 0.5, "end": 1, "text": "%"}]'
    path = tmp_path / "words.json"
    path.write_text(f'{{"language": "zh", "sentences": [{{"words": {words}}}]}}')
    assert Captions.from_words_json(path).events[0].text == "100%"
    assert Captions.from_words_json(path, language="en").events[0].text == "100 %"


def test_event_text_follows_the_joined_flags() -> None:
    event = CaptionEvent(0.0, 1.0, ("你好", "世界", "OK"), joined=(False, True, False))
    assert event.text == "你好世界 OK"
    assert CaptionEvent(0.0, 1.0, ("a", "b")).joined == (False, False)
    with pytest.raises(CaptionError, match="joined flag per word"):
        CaptionEvent(0.0, 1.0, ("a", "b"), joined=(False,))
