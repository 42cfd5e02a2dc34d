"""Write a transcript for people (SRT, plain text) and for later stages (words JSON).

SRT cues follow sentences: a sentence that is too long for one cue is split at word
boundaries using the word times, so each cue holds at most two lines of about 42 characters
and lasts at most about 7 seconds; cues never overlap, never last no time and never run
past the end of the media. The SRT text is composed by the ``srt`` library, so what we
write is what :func:`klipmedia.Captions.from_srt` reads. Every write is atomic.

Examples
--------
>>> from klippers.asr.subtitles import write_transcript_files
>>> paths = write_transcript_files(transcript, "out/")  # original.srt, .txt, .words.json
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import srt

from klipmedia.io import atomic_path
from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.contract import ORIGINAL_SRT, ORIGINAL_TXT, ORIGINAL_WORDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CueLimits:
    """Readability limits for subtitle cues."""

    max_chars: int = 42
    """Characters per line (a single longer word still gets a line of its own)."""
    max_lines: int = 2
    max_duration: float = 7.0
    min_duration: float = 1.0
    """Short cues are held up to this long when the next cue leaves room."""


@dataclass(frozen=True)
class Cue:
    """One subtitle: times in seconds and its text lines."""

    start: float
    end: float
    lines: tuple[str, ...]


def wrap_words(texts: Sequence[str], max_chars: int, max_lines: int = 2) -> tuple[str, ...] | None:
    """Break words into at most ``max_lines`` balanced lines of ``max_chars``, or None.

    One line when it fits; otherwise two lines split where the longer one is shortest.
    A single word longer than ``max_chars`` is accepted on a line of its own.
    """
    one = " ".join(texts)
    if len(one) <= max_chars or len(texts) == 1:
        return (one,)
    if max_lines < 2:
        return None
    best: tuple[str, str] | None = None
    for cut in range(1, len(texts)):
        top, bottom = " ".join(texts[:cut]), " ".join(texts[cut:])
        fits = all(len(line) <= max_chars or " " not in line for line in (top, bottom))
        if fits and (best is None or max(map(len, (top, bottom))) < max(map(len, best))):
            best = (top, bottom)
    return best


def _timed_words(sentence: Sentence) -> tuple[Word, ...]:
    """The sentence's words; without word times, spread its text evenly over its span."""
    if sentence.words:
        return sentence.words
    texts = sentence.text.split()
    total = sum(len(t) for t in texts) or 1
    span = max(sentence.end - sentence.start, 0.0)
    words, cursor = [], sentence.start
    for text in texts:
        end = cursor + span * len(text) / total
        words.append(Word(cursor, end, text))
        cursor = end
    return tuple(words)


def _cue(words: Sequence[Word], lines: tuple[str, ...]) -> Cue:
    return Cue(words[0].start, words[-1].end, lines)


def sentence_cues(sentence: Sentence, limits: CueLimits) -> list[Cue]:
    """Split one sentence into cues that respect ``limits``, greedily at word boundaries."""
    cues: list[Cue] = []
    current: list[Word] = []
    lines: tuple[str, ...] = ()
    for word in _timed_words(sentence):
        candidate = [*current, word]
        wrapped = wrap_words([w.text for w in candidate], limits.max_chars, limits.max_lines)
        too_long = word.end - candidate[0].start > limits.max_duration
        if current and (wrapped is None or too_long):
            cues.append(_cue(current, lines))
            candidate = [word]
            wrapped = wrap_words([word.text], limits.max_chars, limits.max_lines)
        current, lines = candidate, wrapped or (word.text,)
    if current:
        cues.append(_cue(current, lines))
    return cues


def _settle(cues: list[Cue], limits: CueLimits) -> list[Cue]:
    """Hold short cues longer where there is room, cap long ones, and remove overlaps."""
    settled: list[Cue] = []
    for i, cue in enumerate(cues):
        next_start = cues[i + 1].start if i + 1 < len(cues) else float("inf")
        start = max(cue.start, settled[-1].end if settled else 0.0)
        end = max(cue.end, min(start + limits.min_duration, next_start))
        end = min(end, next_start, start + limits.max_duration)
        settled.append(Cue(start, max(end, start), cue.lines))
    return settled


def make_cues(transcript: Transcript, limits: CueLimits | None = None) -> list[Cue]:
    """Sentence-aligned, readable, non-overlapping cues for ``transcript``.

    Cue times are whole milliseconds (what SRT can say) and end by the transcript's
    duration; a cue that would last no time (a word with no duration right before the
    next cue, or one at the very end of the media) is left out: no player shows it.
    """
    limits = limits or CueLimits()
    cues = [cue for sentence in transcript.sentences for cue in sentence_cues(sentence, limits)]
    return _within(_settle(cues, limits), transcript.duration)


def _within(cues: Sequence[Cue], duration: float) -> list[Cue]:
    """``cues`` on whole milliseconds, clipped to ``duration`` (when known), none empty."""
    last_ms = _millis(duration) if duration > 0 else None
    kept: list[Cue] = []
    for cue in cues:
        start_ms = _millis(cue.start)
        end_ms = _millis(cue.end) if last_ms is None else min(_millis(cue.end), last_ms)
        if end_ms > start_ms:
            kept.append(Cue(start_ms / 1000, end_ms / 1000, cue.lines))
        else:
            log.debug("cue %r at %.3f s lasts no time: left out", " ".join(cue.lines), cue.start)
    return kept


def _millis(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def format_srt(cues: Sequence[Cue]) -> str:
    """SRT text for ``cues`` (numbered from 1), composed by the ``srt`` library."""
    return srt.compose(
        srt.Subtitle(
            index=i,
            start=timedelta(milliseconds=_millis(cue.start)),
            end=timedelta(milliseconds=_millis(cue.end)),
            content="\n".join(cue.lines),
        )
        for i, cue in enumerate(cues, start=1)
    )


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` via a temporary file beside it and ``os.replace``."""
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def write_srt(transcript: Transcript, path: str | Path, limits: CueLimits | None = None) -> Path:
    """Write the human-readable subtitles (``original.srt``)."""
    return write_atomic(path, format_srt(make_cues(transcript, limits)))


def write_text(transcript: Transcript, path: str | Path) -> Path:
    """Write the plain text, one sentence per line (``original.txt``)."""
    text = transcript.text
    return write_atomic(path, text + "\n" if text else "")


def write_words_json(transcript: Transcript, path: str | Path) -> Path:
    """Write the words JSON that later stages read (``original.words.json``)."""
    return write_atomic(path, transcript.to_json() + "\n")


def write_transcript_files(transcript: Transcript, directory: str | Path) -> dict[str, Path]:
    """Write ``original.srt``, ``original.txt`` and ``original.words.json`` into ``directory``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "srt": write_srt(transcript, folder / ORIGINAL_SRT),
        "text": write_text(transcript, folder / ORIGINAL_TXT),
        "words": write_words_json(transcript, folder / ORIGINAL_WORDS),
    }
