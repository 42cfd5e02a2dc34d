"""The word-timed transcript that transcription writes and later stages read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class TranscriptError(ValueError):
    """A words JSON document is malformed."""


@dataclass(frozen=True)
class Word:
    """One spoken word; times in seconds from the start of the media."""

    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Sentence:
    """A sentence (or sentence-like segment) spanning a run of words."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """Words and sentences of one media file, with its language and duration."""

    language: str
    duration: float
    sentences: tuple[Sentence, ...] = field(default_factory=tuple)

    @property
    def words(self) -> tuple[Word, ...]:
        """Every word, in time order."""
        return tuple(w for s in self.sentences for w in s.words)

    @property
    def text(self) -> str:
        """The plain text, one sentence per line."""
        return "\n".join(s.text for s in self.sentences)

    def to_json(self) -> str:
        """Serialise as the words JSON document (``original.words.json``)."""
        doc = {
            "version": FORMAT_VERSION,
            "language": self.language,
            "duration": self.duration,
            "sentences": [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "words": [asdict(w) for w in s.words],
                }
                for s in self.sentences
            ],
        }
        return json.dumps(doc, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Transcript:
        """Parse a words JSON document; raises :class:`TranscriptError` when malformed."""
        try:
            doc = json.loads(text)
            return cls(
                language=str(doc["language"]),
                duration=float(doc["duration"]),
                sentences=tuple(_sentence(s) for s in doc["sentences"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TranscriptError(f"malformed words JSON: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Transcript:
        """Read a words JSON file."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _word(raw: Mapping[str, Any]) -> Word:
    return Word(
        start=float(raw["start"]),
        end=float(raw["end"]),
        text=str(raw["text"]),
        probability=float(raw.get("probability", 1.0)),
    )


def _sentence(raw: Mapping[str, Any]) -> Sentence:
    words: Sequence[Mapping[str, Any]] = raw.get("words", [])
    return Sentence(
        start=float(raw["start"]),
        end=float(raw["end"]),
        text=str(raw["text"]),
        words=tuple(_word(w) for w in words),
    )
