"""Titles read as a headline: a clean sentence or phrase of the passage, never keywords."""

from __future__ import annotations

import re

import pytest

from klippers.asr.transcript import Transcript
from klippers.selection.highlights import select_highlights
from klippers.selection.titles import clean_phrase, headline_from_texts
from tests.klippers.selection.test_boundaries import _speak

CONVERSATIONS = [
    [
        "Um, so, yeah.",
        "So my neighbour, uh, my neighbour bought a goat.",
        "Like, an actual goat, you know?",
        "And she keeps it on the balcony.",
        "On the fourth floor!",
        "The landlord came round and just stared at it.",
    ],
    [
        "okay so the thing about sourdough is you can't rush it",
        "I tried to rush it once and it came out like a brick",
        "my brother used it as a doorstop for a month",
        "honestly it was the best doorstop we ever had",
    ],
    [
        "Wait, wait.",
        "Did you really drive all the way to Glasgow for a sandwich?",
        "I did, yeah.",
        "It was a very good sandwich though.",
        "Best eight hours of my life, I mean, of my week.",
    ],
]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _is_phrase_of(title: str, texts: list[str]) -> bool:
    """Every word of ``title`` appears in the passage, in the same order."""
    spoken = iter(_words(" ".join(texts)))
    return all(any(word == heard for heard in spoken) for word in _words(title))


def _reads_as_headline(title: str, texts: list[str]) -> None:
    assert title, "empty title"
    assert len(title) <= 70
    assert title[0].isupper(), title
    assert _is_phrase_of(title, texts), title
    assert len(_words(title)) >= 3, title
    assert not re.match(r"(?i)(so|and|but|um|uh|okay|yeah|well|like)\b", title), title
    assert not re.search(r"(?i)\b(um|uh)\b", title), title
    assert not re.fullmatch(r"\w+(, \w+)* and \w+", title), f"a keyword list: {title}"


@pytest.mark.parametrize("texts", CONVERSATIONS)
def test_titles_of_conversational_speech_read_as_headlines(texts: list[str]) -> None:
    _reads_as_headline(headline_from_texts(texts), texts)


def test_a_question_or_the_passage_keywords_make_the_title() -> None:
    assert (
        headline_from_texts(CONVERSATIONS[2])
        == "Did you really drive all the way to Glasgow for a sandwich?"
    )
    goat = headline_from_texts(CONVERSATIONS[0], keywords=["goat", "balcony"])
    assert "goat" in goat.lower()
    assert not goat.lower().startswith("it "), goat


@pytest.mark.parametrize(
    ("spoken", "clean"),
    [
        ("Don't, uh, don't say that word.", "Don't say that word"),
        ("um so yeah i was totally lost you know", "I was totally lost"),
        ("Okay, then I thought, you know, I heard a beep.", "I thought I heard a beep"),
        ("So I I went there and, like, it was closed.", "I went there and it was closed"),
        ("Why does nobody read the manual?", "Why does nobody read the manual?"),
        ("Bonjour, je m'appelle Claire.", "Bonjour, je m'appelle Claire"),
    ],
)
def test_fillers_stutters_and_final_periods_are_cleaned_off(spoken: str, clean: str) -> None:
    assert clean_phrase(spoken, english=not spoken.startswith("Bonjour")) == clean


def test_long_sentences_are_cut_at_a_clause() -> None:
    texts = [
        "The committee, after eleven meetings and four site visits and a public consultation "
        "that nobody attended, finally approved the new bicycle shed behind the station."
    ]
    title = headline_from_texts(texts)
    assert len(title) <= 70
    assert _is_phrase_of(title.rstrip("…"), texts)


def test_highlight_titles_on_a_chatty_transcript() -> None:
    texts = [t for conversation in CONVERSATIONS for t in conversation] * 3
    sentences, end = _speak(texts, {})
    result = select_highlights(
        Transcript("en", end + 1, tuple(sentences)), count=3, target_duration=20
    )
    assert len(result.highlights) == 3
    for h in result.highlights:
        _reads_as_headline(h.title, [h.text])


@pytest.mark.slow
def test_titles_and_boundaries_on_a_real_phone_call() -> None:
    """pyannote's sample call (two people, phone band) through the project's own ASR:
    tiny.en writes it as one unpunctuated run, which the seed titled with keyword salad
    ("Hello, i'm and jersey"). Every title must be a clean phrase of its passage and every
    passage must start and end between words."""
    from klippers.asr.transcribe import FASTER_WHISPER, transcribe_file
    from tests.support.recordings import pyannote_sample
    from tests.support.whisper_models import ct2_tiny_en_path

    call = pyannote_sample()
    transcript = transcribe_file(call.wav, backend=FASTER_WHISPER, model=str(ct2_tiny_en_path()))
    words = transcript.words
    result = select_highlights(transcript, count=2, target_duration=10)
    assert len(result.highlights) == 2
    for h in result.highlights:
        _reads_as_headline(h.title, [h.text])
        assert not any(w.start < h.start < w.end or w.start < h.end < w.end for w in words)
        assert any("signals used" in r for r in h.reasons)
