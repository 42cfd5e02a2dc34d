"""Where a short starts and ends: on its hook and its payoff, with pauses as sentence ends."""

from __future__ import annotations

from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.selection.highlights import select_highlights
from klippers.selection.units import sentence_units

WORD, GAP = 0.32, 0.06

BEFORE = [
    "The garden behind the library gets watered every Tuesday by the volunteers.",
    "Most of the volunteers come from the neighbourhood association.",
    "They keep a rota on the noticeboard next to the tool shed.",
    "The tomatoes did well this year because the summer was warm.",
    "The association also runs a seed exchange in the spring.",
    "Seeds are labelled by variety and by the year they were saved.",
    "Anyone can take seeds as long as they bring some back next year.",
    "The exchange has grown to about two hundred varieties.",
]
STORY = [
    "Have you ever tried to build a wardrobe with your dad?",
    "My dad refuses to read instructions.",
    'He said "instructions are for people without imagination."',
    "Three hours later I had a wardrobe with no doors.",
    "And two doors with no wardrobe.",
    'My mum walked in and said "I see you used your imagination."',
]
AFTER = [
    "So anyway the next item on the agenda is the quarterly budget for the community hall.",
    "The budget covers heating, cleaning and the insurance of the building.",
    "Heating costs rose by about a tenth compared with the previous year.",
    "The cleaning contract will be renewed in March for another two years.",
    "The insurance premium stayed the same after the annual review.",
    "The committee will publish the full accounts on the website.",
    "Questions about the accounts can be sent to the treasurer by email.",
    "The treasurer will answer them at the next general meeting.",
]


def _speak(
    texts: list[str], pauses: dict[int, float], start: float = 0.0
) -> tuple[list[Sentence], float]:
    """Sentences spoken evenly from ``start``; ``pauses[i]`` seconds of silence after text i."""
    sentences, t = [], start
    for n, text in enumerate(texts):
        words = []
        for token in text.split():
            words.append(Word(round(t, 3), round(t + WORD, 3), token))
            t += WORD + GAP
        sentences.append(Sentence(words[0].start, words[-1].end, text, tuple(words)))
        t += pauses.get(n, 0.35)
    return sentences, t


def test_short_starts_on_the_hook_and_ends_on_the_payoff() -> None:
    """The story opens with a question and closes on a punchline the audience laughs at
    (the speaker waits 2 s); before and after it, other topics. The short is exactly the
    story: not the sentence before the hook, not the next topic's opening."""
    texts = BEFORE + STORY + AFTER
    laughs = {len(BEFORE) + 3: 1.2, len(BEFORE) + 4: 1.6, len(BEFORE) + len(STORY) - 1: 2.0}
    sentences, end = _speak(texts, laughs)
    transcript = Transcript("en", end + 1.0, tuple(sentences))
    story = sentences[len(BEFORE) : len(BEFORE) + len(STORY)]

    best = select_highlights(transcript, count=1, target_duration=30).highlights[0]

    assert best.text.startswith("Have you ever tried to build a wardrobe")
    assert best.text.endswith('"I see you used your imagination."')
    assert story[0].start - 0.25 <= best.start <= story[0].start
    assert story[-1].end <= best.end <= story[-1].end + 0.25
    assert any("audience cues" in r for r in best.reasons)


def _run_on(pieces: list[str], pause: float) -> Transcript:
    """One unpunctuated 'sentence' (as small ASR models write spontaneous speech): the
    ``pieces`` are spoken with ``pause`` seconds between them and 0.06 s between words."""
    words, t = [], 0.0
    for piece in pieces:
        for token in piece.split():
            words.append(Word(round(t, 3), round(t + WORD, 3), token))
            t += WORD + GAP
        t += pause - GAP
    text = " ".join(w.text for w in words)
    return Transcript("en", t + 1.0, (Sentence(0.0, words[-1].end, text, tuple(words)),))


PIECES = [
    "so we got to the station really early that morning",
    "and the train was already full of people with huge backpacks",
    "my sister had packed three suitcases for a weekend trip",
    "the conductor looked at her and just started laughing",
    "she told him they were all books for the journey",
    "he said lady this is a ten minute ride",
] * 6


def test_pauses_end_sentences_when_punctuation_is_missing() -> None:
    transcript = _run_on(PIECES, pause=0.8)
    units = sentence_units(transcript, max_unit=45)
    assert [u.text for u in units[: len(PIECES)]] == PIECES
    piece_starts = {u.words[0].start for u in units}
    piece_ends = {u.words[-1].end for u in units}
    result = select_highlights(transcript, count=2, target_duration=30)
    assert len(result.highlights) == 2
    for h in result.highlights:
        assert any(0 <= s - h.start <= 0.25 for s in piece_starts)
        assert any(0 <= h.end - e <= 0.25 for e in piece_ends)
        assert "ends on a finished sentence" in h.reasons


def test_short_pauses_inside_a_punctuated_sentence_do_not_split_it() -> None:
    sentences, end = _speak(["This sentence has a short pause after the comma, then goes on."], {})
    assert len(sentence_units(Transcript("en", end, tuple(sentences)), max_unit=45)) == 1
