"""Titles that read as a headline: the best clean sentence or phrase of the passage.

Every sentence of the passage (and, for long ones, each clause) is a candidate title.
Fillers and discourse markers are cleaned off its edges ("So, um, ..." / "..., you know"),
and the one that reads best wins: a complete thought of headline length, a question or an
exclamation, holding the passage's keywords, early in the passage, not opening on a word
that points back ("it", "that"). A title is always words of the passage in their order,
never a list of keywords.

Examples
--------
>>> headline_from_texts(["So, um, the thing is, we never tracked cash.", "Why do startups fail?"])
'Why do startups fail?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from klippers.selection.lexicon import POINTING, STOPWORDS, is_english, tokens
from klippers.selection.units import Unit

MAX_CHARS = 70
"""Longest title; longer phrases are cut at a clause or word boundary with an ellipsis."""
IDEAL_CHARS = (18, 60)

_SENTENCE = re.compile(r"(?<=[.?!…。？！])\s+")
_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+[-–—]+\s+")
_CLAUSE_EN = re.compile(
    r"(?<=[,;:])\s+|\s+[-–—]+\s+"
    r"|\s+(?=(?:oh|well|okay|so|and|but|because|at least|you know)\b)",
    re.IGNORECASE,
)
"""Clause boundaries, and in English the discourse markers that open a new thought: the
only boundaries left in speech transcribed without punctuation."""
_LEADING_EN = re.compile(
    r"^(?:(?:so|and|but|or|well|oh|okay|ok|yeah|yes|no|um+|uh+|erm|hmm|like|now|anyway|"
    r"right|also|then|because|plus|actually|basically|you know|i mean|i guess)\b[\s,.…-]*)+",
    re.IGNORECASE,
)
_TRAILING_EN = re.compile(
    r"(?:[\s,]+(?:you know|i mean|right|okay|ok|or something|and stuff|and so on|so|um+|uh+))+"
    r"(?=[\s.?!…]*$)",
    re.IGNORECASE,
)
_INNER_FILLER = re.compile(
    r",?\s*\b(?:um+|uh+|erm|hmm)\b[,.…]*\s*"
    r"|,?\s*\b(?:you know|I mean|like),\s*"
    r"|,\s*(?:you know|I mean)\b",
    re.IGNORECASE,
)
_REPEAT = re.compile(r"\b([\w']+)(?:[,.…-]*\s+\1\b)+", re.IGNORECASE)
"""A word said again right away (a stutter: "don't, don't")."""


def headline(units: Sequence[Unit], language: str, keywords: Sequence[str] = ()) -> str:
    """The title of a passage made of ``units`` (see the module docstring)."""
    return headline_from_texts([u.text for u in units], language, keywords)


def headline_from_texts(
    texts: Sequence[str], language: str = "en", keywords: Sequence[str] = ()
) -> str:
    """The best headline among the sentences and clauses of ``texts``."""
    english = is_english(language)
    best: tuple[float, str] | None = None
    position = 0
    for text in texts:
        for sentence in _SENTENCE.split(text.strip()):
            for phrase in _phrases(sentence, english):
                title = clean_phrase(phrase, english)
                if title:
                    rating = _rating(title, english, keywords) - 0.03 * position
                    if best is None or rating > best[0]:
                        best = (rating, title)
            position += 1
    if best is None:  # nothing but fillers: the words as spoken
        return _shorten(" ".join(t.strip() for t in texts).strip())
    return _shorten(best[1])


def _phrases(sentence: str, english: bool) -> list[str]:
    """The sentence itself, and its clauses when it is longer than a headline."""
    if len(sentence) <= IDEAL_CHARS[1]:
        return [sentence]
    return [sentence, *(_CLAUSE_EN if english else _CLAUSE).split(sentence)]


def clean_phrase(phrase: str, english: bool = True) -> str:
    """``phrase`` without fillers at its edges or inside, capitalised, without a final period.

    >>> clean_phrase("so, um, i'm from Chicago, you know.")
    "I'm from Chicago"
    """
    text = phrase.strip()
    if english:
        text = _INNER_FILLER.sub(" ", text).strip()
        text = _LEADING_EN.sub("", text)
        text = _TRAILING_EN.sub("", text)
        text = re.sub(r"\bi\b", "I", text)
    text = _REPEAT.sub(r"\1", text)
    text = text.strip(" \t,;:-–—…\"'“”«»")
    text = re.sub(r"\s+([,.?!;:])", r"\1", re.sub(r"\s{2,}", " ", text))
    text = re.sub(r"[.。]+$", "", text).rstrip(" ,;:")
    if not text:
        return ""
    return text[0].upper() + text[1:]


def _rating(title: str, english: bool, keywords: Sequence[str]) -> float:
    """How well ``title`` reads as a headline (higher is better)."""
    words = tokens(title)
    low, high = IDEAL_CHARS
    size = len(title)
    rating = 1.0 if low <= size <= high else 0.5 if size <= MAX_CHARS else 0.2
    if size < 10:
        rating -= 0.5
    if title.endswith("?"):
        rating += 0.3
    elif title.endswith("!"):
        rating += 0.1
    rating += 0.15 * min(2, sum(k in words for k in keywords))
    rating += 0.1 * min(2, sum(w[:1].isupper() for w in title.split()[1:]))  # names, places
    if english:
        content = [w for w in words if w not in STOPWORDS and len(w) > 2]
        if len(content) < 2:
            rating -= 0.6
        if words and words[0] in POINTING:
            rating -= 0.25
    return rating


def _shorten(title: str) -> str:
    """``title`` cut to :data:`MAX_CHARS` at a clause, else a word boundary, with "…"."""
    if len(title) <= MAX_CHARS:
        return title
    head = title[: MAX_CHARS - 1]
    cut = max(head.rfind(","), head.rfind(";"))
    if cut < MAX_CHARS // 2:
        cut = head.rfind(" ")
    return head[: cut if cut > 0 else len(head)].rstrip(" ,;:") + "…"
