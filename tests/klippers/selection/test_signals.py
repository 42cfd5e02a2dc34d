"""The default scorer's signals: reaction cues, language-neutral ones, and what reasons say."""

from __future__ import annotations

from klippers.asr.transcript import Transcript
from klippers.selection.highlights import select_highlights
from klippers.selection.signals import ScoringContext, TranscriptSignals
from klippers.selection.units import DurationBounds, generate_candidates, sentence_units
from tests.klippers.selection.test_boundaries import AFTER, BEFORE, STORY, _speak

GERMAN = [
    "Letzten Sommer bin ich mit dem Fahrrad nach Kopenhagen gefahren.",
    "Am zweiten Tag hat es die ganze Zeit geregnet.",
    "Mein Zelt stand mitten in einer Pfütze.",
    "Ein Bauer hat mich dann in seine Scheune eingeladen.",
    "Dort schliefen schon drei Ziegen und ein Pfau.",
    "Der Pfau hat die ganze Nacht geschrien.",
    "Am Morgen hat der Bauer gesagt, das sei ganz normal.",
    "Seitdem fahre ich nur noch mit dem Zug.",
]


def _reasons(language: str, texts: list[str], pauses: dict[int, float]) -> tuple[str, ...]:
    sentences, end = _speak(texts, pauses)
    transcript = Transcript(language, end + 1.0, tuple(sentences))
    return select_highlights(transcript, count=1, target_duration=15).highlights[0].reasons


def test_non_english_transcripts_get_the_language_neutral_signals() -> None:
    reasons = _reasons("de", GERMAN * 2, {5: 1.5})
    used = next(r for r in reasons if r.startswith("signals used"))
    assert used == (
        "signals used (de, language-neutral only): pauses, rhythm, novelty, self_contained, fit"
    )
    assert not any(r.startswith(("hook:", "starts mid-thought")) for r in reasons)


def test_english_reasons_name_the_word_lists_and_the_cues() -> None:
    reasons = _reasons("en", BEFORE + STORY + AFTER, {len(BEFORE) + 5: 2.0})
    used = next(r for r in reasons if r.startswith("signals used"))
    assert used.startswith("signals used (en, with English word lists): pauses, rhythm, story")
    cues = next(r for r in reasons if r.startswith("audience cues"))
    assert "pauses" in cues
    assert "I/me/my" in cues


def test_evenly_spaced_synthetic_timings_carry_no_pause_signal() -> None:
    sentences, end = _speak(BEFORE + STORY + AFTER, {})
    units = sentence_units(Transcript("en", end, tuple(sentences)), 45)
    signals = TranscriptSignals(ScoringContext(units, "en", 30))
    assert "pauses" not in signals.features.cues
    signals.rate(generate_candidates(units, _bounds(30), end, 0.25))
    assert "pauses" not in signals.used()


def test_a_pause_for_laughter_draws_the_pick() -> None:
    texts = BEFORE + AFTER
    quiet = select_highlights(_transcript(texts, {}), count=1, target_duration=15).highlights[0]
    laugh = next(n for n, text in enumerate(texts) if text not in quiet.text)
    laughed = select_highlights(_transcript(texts, {laugh: 2.5}), count=1, target_duration=15)
    assert texts[laugh] in laughed.highlights[0].text
    assert any("pauses" in r for r in laughed.highlights[0].reasons)


def test_sentences_said_again_and_again_make_poor_shorts() -> None:
    jingle = ["Subscribe to the channel and ring the bell for more videos like this one."]
    texts = BEFORE + jingle * 6 + STORY + jingle * 6 + AFTER
    best = select_highlights(_transcript(texts, {}), count=1, target_duration=20).highlights[0]
    assert "ring the bell" not in best.text


def _transcript(texts: list[str], pauses: dict[int, float]) -> Transcript:
    sentences, end = _speak(texts, pauses)
    return Transcript("en", end + 1.0, tuple(sentences))


def _bounds(target: float) -> DurationBounds:
    return DurationBounds.from_target(target)
