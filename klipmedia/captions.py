"""Caption timelines from SRT cues or timed words, as a list of distinct caption images."""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import srt  # type: ignore[import-untyped]

from klipmedia.errors import CaptionError

log = logging.getLogger(__name__)

_ARROW = re.compile(r" *-[ -] *> *")
"""The arrow between a cue's start and end as ``srt`` reads it: ``-->``, ``- >`` or ``-- >``."""
_TIMESTAMP = re.compile(r"\d+:[0-5]?\d:[0-5]?\d[,.]\d{3}")
"""A well-formed cue time; ``srt`` also takes ``00:61:00``, ``00:00:01`` and ``,5`` (as 5 ms)."""
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_TAGS = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]}»]*$")
"""Terminal punctuation (Latin and CJK), optionally followed by closing quotes or brackets."""
_CLAUSE_END = (",", ";", ":")
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "yue", "bo"})
"""Languages written without spaces between words (ISO 639 codes, as Whisper names them)."""
_CJK = ((0x2E80, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))
"""Han, kana, CJK punctuation and full-width forms: a line may break between any two."""
_NO_SPACE_SCRIPTS = (*_CJK, (0x0E00, 0x0EFF), (0x0F00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF))
"""CJK, Thai, Lao, Tibetan, Myanmar and Khmer: scripts that put no space between words."""
_CONTRACTIONS = frozenset({"'s", "'t", "'re", "'ve", "'ll", "'d", "'m", "n't"})
"""Endings Whisper emits as words of their own: ``don`` + ``'t``."""
_HYPHENS = "-\u2010\u2011"


def ends_sentence(text: str) -> bool:
    """Whether ``text`` (a word or a sentence) ends with terminal punctuation.

    Examples
    --------
    >>> ends_sentence("done.”"), ends_sentence("好。"), ends_sentence("and,")
    (True, True, False)
    """
    return _SENTENCE_END.search(text.rstrip()) is not None


def is_cjk(char: str) -> bool:
    """Whether ``char`` is Chinese or Japanese writing (Han, kana, CJK punctuation).

    Examples
    --------
    >>> is_cjk("字"), is_cjk("か"), is_cjk("。"), is_cjk("a")
    (True, True, True, False)
    """
    return _in_ranges(char, _CJK)


def writes_without_spaces(char: str) -> bool:
    """Whether ``char`` belongs to a script written without spaces between words.

    Examples
    --------
    >>> writes_without_spaces("字"), writes_without_spaces("ก"), writes_without_spaces("a")
    (True, True, False)
    """
    return _in_ranges(char, _NO_SPACE_SCRIPTS)


def _in_ranges(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in ranges)


class WordLike(Protocol):
    """Anything with a start, an end (seconds) and a text, e.g. a transcript word."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class TimedWord:
    """A word and the time range (seconds) it is spoken in."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class CaptionEvent:
    """One distinct caption image shown for ``start <= t < end`` seconds.

    ``highlight`` is the index in ``words`` of the word being spoken, or None
    when no word is highlighted (plain SRT cues). ``joined[i]`` is True when
    ``words[i]`` follows the word before it with no space between (Chinese,
    Japanese, Thai); left empty, every word is spaced.
    """

    start: float
    end: float
    words: tuple[str, ...]
    highlight: int | None = None
    joined: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        if not self.joined:
            object.__setattr__(self, "joined", (False,) * len(self.words))
        elif len(self.joined) != len(self.words):
            raise CaptionError("caption event needs one joined flag per word")

    @property
    def text(self) -> str:
        """The caption text on one line.

        Examples
        --------
        >>> CaptionEvent(0.0, 1.0, ("你好", "世界", "OK"), joined=(False, True, False)).text
        '你好世界 OK'
        """
        pairs = enumerate(zip(self.words, self.joined, strict=True))
        return "".join(word if i == 0 or joined else " " + word for i, (word, joined) in pairs)


@dataclass(frozen=True)
class Captions:
    """A time-ordered, non-overlapping sequence of caption events.

    Examples
    --------
    >>> caps = Captions.from_srt("1\\n00:00:00,000 --> 00:00:01,500\\nHello there\\n")
    >>> caps.at(1.0).text, caps.at(2.0)
    ('Hello there', None)
    """

    events: tuple[CaptionEvent, ...]

    def __post_init__(self) -> None:
        for before, after in zip(self.events, self.events[1:], strict=False):
            if after.start < before.end:
                raise CaptionError("caption events must be sorted and must not overlap")

    def at(self, t: float) -> CaptionEvent | None:
        """The event shown at ``t`` seconds, if any."""
        starts = [e.start for e in self.events]
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and t < self.events[i].end:
            return self.events[i]
        return None

    def clipped(self, duration: float) -> Captions:
        """Events cut to ``[0, duration)``; those starting after the end are dropped."""
        kept = [replace(e, end=min(e.end, duration)) for e in self.events if e.start < duration]
        if len(kept) < len(self.events):
            log.info(
                "dropped %d caption(s) starting after the clip ends", len(self.events) - len(kept)
            )
        return Captions(tuple(kept))

    @classmethod
    def from_srt(cls, source: str | Path) -> Captions:
        """Parse SRT text, or the SRT file at ``source`` (BOM and CRLF accepted).

        Overlapping cues are resolved by ending the earlier cue when the next begins.
        """
        return cls(tuple(_without_overlaps(parse_srt(_read_source(source)))))

    @classmethod
    def from_words(
        cls,
        words: Iterable[WordLike],
        max_words: int = 4,
        max_gap: float = 0.6,
        hold: float = 0.5,
        language: str | None = None,
    ) -> Captions:
        """Short groups of words with the spoken word highlighted.

        A group holds at most ``max_words`` words and breaks at sentence ends, at a
        clause end once it has two words, and at pauses longer than ``max_gap``
        seconds. A group stays up ``hold`` seconds after its last word unless the
        next group starts sooner.

        Pieces of a word that Whisper emits as words of their own (``ill`` +
        ``-disposed``, ``don`` + ``'t``) become one word. Words are joined without
        a space where the ``language`` (e.g. ``"ja"``) or the script on either side
        (Han, kana, Thai...) is written without spaces.

        Examples
        --------
        >>> words = [TimedWord(0.0, 0.2, "don"), TimedWord(0.2, 0.4, "'t")]
        >>> words.append(TimedWord(0.4, 0.8, "go"))
        >>> [(e.text, e.highlight) for e in Captions.from_words(words).events]
        [("don't go", 0), ("don't go", 1)]
        """
        if max_words < 1:
            raise CaptionError("max_words must be at least 1")
        ordered = _merged_pieces(_checked_words(words))
        groups = _group_words(ordered, max_words, max_gap)
        unspaced = language is not None and _primary_language(language) in NO_SPACE_LANGUAGES
        events: list[CaptionEvent] = []
        for index, group in enumerate(groups):
            next_start = groups[index + 1][0].start if index + 1 < len(groups) else None
            events.extend(_group_events(group, next_start, hold, unspaced))
        return cls(tuple(events))

    @classmethod
    def from_words_json(cls, path: str | Path, **options: Any) -> Captions:
        """Load timed words from JSON: a list of words, ``{"words": [...]}``, or a
        transcript with ``{"sentences": [{"words": [...]}]}`` (whose ``"language"``
        is used unless ``language`` is given)."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise CaptionError(f"{path}: cannot read words JSON ({exc})") from exc
        if isinstance(doc, dict) and isinstance(doc.get("language"), str):
            options.setdefault("language", doc["language"])
        return cls.from_words(_words_from_doc(doc, path), **options)


def parse_srt(text: str) -> list[CaptionEvent]:
    """Parse SRT text into cues sorted by start; raise :class:`CaptionError` naming bad input.

    Zero-length cues and cues without text are skipped.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    _check_timing_lines(text)
    try:
        subtitles = list(srt.parse(text))
    except srt.SRTParseError as exc:
        raise _unreadable(text, exc.expected_start) from exc
    cues = [cue for sub in subtitles if (cue := _caption(sub)) is not None]
    return sorted(cues, key=lambda c: c.start)


def _check_timing_lines(text: str) -> None:
    """Raise for any line with a cue arrow that is not ``start --> end`` with valid times."""
    for number, line in enumerate(text.split("\n"), start=1):
        if _ARROW.search(line) and not _is_timing_line(line):
            raise _malformed(number, line)


def _is_timing_line(line: str) -> bool:
    start, rest = _ARROW.split(line.strip(), maxsplit=1)
    end = (rest.split() or [""])[0]  # anything after the end time is cue settings
    return bool(_TIMESTAMP.fullmatch(start) and _TIMESTAMP.fullmatch(end))


def _unreadable(text: str, offset: int) -> CaptionError:
    """The error for the block at ``offset`` that ``srt`` could not read as a cue."""
    first = text.count("\n", 0, offset)
    lines = text.split("\n")
    number = first + _timing_index(lines[first:])
    return _malformed(number + 1, lines[number])


def _malformed(number: int, line: str) -> CaptionError:
    return CaptionError(
        f"SRT line {number}: malformed timestamp line {line.strip()!r}"
        " (expected e.g. '00:00:01,000 --> 00:00:02,500')"
    )


def _timing_index(lines: Sequence[str]) -> int:
    """Index of a block's timing line: its first line neither blank nor a bare cue number."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return next((i for i in filled if not lines[i].strip().isdigit()), filled[0])


def _caption(sub: srt.Subtitle) -> CaptionEvent | None:
    """The caption for one parsed cue; None when it has no text or no duration."""
    name = _cue_name(sub)
    stray = _stray_line(sub.content)
    if stray is not None:
        raise CaptionError(
            f"SRT {name}: cannot read {stray!r} in its text as a new cue"
            " (malformed timestamp line, or no blank line before it?)"
        )
    if sub.end < sub.start:
        raise CaptionError(f"SRT {name} ends before it starts")
    if sub.end == sub.start:
        log.warning("skipping zero-length SRT %s", name)
        return None
    words = tuple(_TAGS.sub("", sub.content).split())
    if not words:
        return None
    return CaptionEvent(sub.start.total_seconds(), sub.end.total_seconds(), words)


def _cue_name(sub: srt.Subtitle) -> str:
    timing = " --> ".join(srt.timedelta_to_srt_timestamp(t) for t in (sub.start, sub.end))
    return f"cue ({timing})" if sub.index is None else f"cue {sub.index} ({timing})"


def _stray_line(content: str) -> str | None:
    """A line of another cue that ``srt`` folded into this cue's text, if any.

    ``srt`` appends a block it cannot read as a cue to the previous cue's text after a
    blank line, and a cue that lacks the blank line before it likewise.
    """
    paragraphs = _BLANK_LINE.split(content.strip(), maxsplit=1)
    if len(paragraphs) > 1:
        lines = paragraphs[1].split("\n")
        return lines[_timing_index(lines)].strip()
    return next((line.strip() for line in content.split("\n") if _ARROW.search(line)), None)


def _read_source(source: str | Path) -> str:
    if isinstance(source, Path) or ("-->" not in source and "\n" not in source):
        try:
            return Path(source).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CaptionError(f"{source}: cannot read SRT file ({exc})") from exc
    return source


def _without_overlaps(cues: Sequence[CaptionEvent]) -> list[CaptionEvent]:
    kept: list[CaptionEvent] = []
    for cue in cues:
        if kept and cue.start < kept[-1].end:
            log.warning(
                "SRT cue at %.3f s overlaps the previous one; ending that one early", cue.start
            )
            if cue.start <= kept[-1].start:
                kept.pop()
            else:
                kept[-1] = replace(kept[-1], end=cue.start)
        kept.append(cue)
    return kept


def _checked_words(words: Iterable[WordLike]) -> list[TimedWord]:
    checked: list[TimedWord] = []
    for word in words:
        text = word.text.strip()
        if not text:
            continue
        if not word.end >= word.start >= 0:
            raise CaptionError(
                f"word {text!r} has an invalid time range {word.start:.3f}-{word.end:.3f} s"
            )
        checked.append(TimedWord(float(word.start), float(word.end), text))
    checked.sort(key=lambda w: w.start)
    return checked


def _merged_pieces(words: Sequence[TimedWord]) -> list[TimedWord]:
    """``words`` with each piece Whisper split off a word put back on it."""
    merged: list[TimedWord] = []
    for word in words:
        if merged and _continues(merged[-1].text, word.text):
            last = merged[-1]
            merged[-1] = TimedWord(last.start, max(last.end, word.end), last.text + word.text)
        else:
            merged.append(word)
    return merged


def _continues(previous: str, word: str) -> bool:
    """Whether ``word`` is the rest of ``previous``: ``-disposed`` after ``ill``,
    ``'t`` after ``don``; a dash on its own (``-``, ``—``) is a word of its own."""
    if not previous[-1].isalnum():
        return False
    if word[0] in _HYPHENS:
        return len(word) > 1 and word[1].isalpha()
    return word.lower().replace("\u2019", "'") in _CONTRACTIONS


def join_words(texts: Sequence[str], language: str | None = None) -> str:
    """Words as running text: spaced, but for pieces Whisper split off a word and scripts
    (or a ``language``) written without spaces.

    Examples
    --------
    >>> join_words(["I", "don", "'t", "feel", "ill", "-disposed", "-", "ok."])
    "I don't feel ill-disposed - ok."
    >>> join_words(["我们", "今天"], "zh")
    '我们今天'
    """
    unspaced = language is not None and _primary_language(language) in NO_SPACE_LANGUAGES
    text = ""
    for word in texts:
        if text and not (_continues(text, word) or _joined(text, word, unspaced)):
            text += " "
        text += word
    return text


def _primary_language(language: str) -> str:
    """``"zh"`` for ``"zh-Hans"`` or ``"ZH_cn"``."""
    return language.replace("_", "-").split("-")[0].lower()


def _joined(previous: str, word: str, unspaced: bool) -> bool:
    """Whether ``word`` follows ``previous`` with no space between."""
    return unspaced or writes_without_spaces(previous[-1]) or writes_without_spaces(word[0])


def _group_words(
    words: Sequence[TimedWord], max_words: int, max_gap: float
) -> list[list[TimedWord]]:
    groups: list[list[TimedWord]] = []
    for word in words:
        current = groups[-1] if groups else None
        if current is None or _breaks_after(current, word, max_words, max_gap):
            groups.append([word])
        else:
            current.append(word)
    return groups


def _breaks_after(
    group: Sequence[TimedWord], word: TimedWord, max_words: int, max_gap: float
) -> bool:
    last = group[-1]
    return (
        len(group) >= max_words
        or word.start - last.end > max_gap
        or ends_sentence(last.text)
        or (len(group) >= 2 and last.text.endswith(_CLAUSE_END))
    )


def _group_events(
    group: Sequence[TimedWord], next_start: float | None, hold: float, unspaced: bool
) -> list[CaptionEvent]:
    texts = tuple(w.text for w in group)
    joined = (False, *(_joined(a, b, unspaced) for a, b in itertools.pairwise(texts)))
    end = group[-1].end + hold
    if next_start is not None:
        end = min(end, next_start)
    events: list[CaptionEvent] = []
    for index, word in enumerate(group):
        start = max(word.start, events[-1].end if events else word.start)
        stop = group[index + 1].start if index + 1 < len(group) else end
        stop = min(max(stop, start), end)
        if stop > start:
            events.append(CaptionEvent(start, stop, texts, index, joined))
    return events


def _words_from_doc(doc: Any, path: str | Path) -> list[TimedWord]:
    if isinstance(doc, dict) and "sentences" in doc:
        raw = [w for s in doc["sentences"] for w in s.get("words", [])]
    elif isinstance(doc, dict) and "words" in doc:
        raw = doc["words"]
    elif isinstance(doc, list):
        raw = doc
    else:
        raise CaptionError(f"{path}: expected a list of words or an object with 'words'")
    try:
        return [
            TimedWord(float(w["start"]), float(w["end"]), str(w.get("text", w.get("word", ""))))
            for w in raw
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise CaptionError(f"{path}: a word lacks a numeric start/end ({exc})") from exc
