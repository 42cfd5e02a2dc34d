"""Transcription of real speech: pyannote's phone call against its own references, and the
word error rate over every real recording against faster-whisper's own defaults.

The call (30 s, 16 kHz, two speakers, phone bandwidth, silent for the first 6.7 s) ships
with a reference transcript (utterances with speaker and times) and speaker turns.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from pathlib import Path

import pytest

from klipmedia.captions import ends_sentence
from klippers.asr.transcribe import FASTER_WHISPER, decode_audio, load_transcriber, transcribe_file
from klippers.asr.transcript import Transcript, Word
from tests.support.recordings import (
    CallSample,
    FetchError,
    Package,
    Utterance,
    fetch,
    pyannote_sample,
    real_speech,
)
from tests.support.speech import normalise_words, word_error_rate
from tests.support.whisper_models import ct2_tiny_en_path

MAX_WER = 0.22
"""Measured with tiny.en (int8, beam 5): 0.173 with 2 to 8 CPU threads, 0.198 with one
(CTranslate2's int8 kernels round differently per thread count). Phone-band speech and
crosstalk ("Neither did I" heard as "I needed to die", "in Texas" as "and Texas", "beep" as
"beat") keep it well above the synthetic clips' 0.15."""
LIBRARY_DEFAULT_WER = 0.0613
"""Pooled WER over :func:`real_speech` (84 s) of faster-whisper's own defaults,
``WhisperModel(tiny.en, int8, 2 threads).transcribe(audio)`` (beam 5, temperature fallback,
conditioned on the previous text, no VAD, no word timestamps): the call 0.160, the readings
0.0. Ours measured 0.052 (the call 0.123, Dickens 0.008, Beckett 0.0); before VAD, with word
timestamps moving faster-whisper's 30 s seek onto the last word, 0.066 (the call 0.173)."""
TIMING_TOLERANCE_S = 0.1
"""How far outside its reference utterance a recognised word's middle may fall."""
BOUNDARY_TOLERANCE_S = 0.5
CROSSTALK_S = (27.0, 28.5)
"""Sheila's "so what can I say?" over Diane's "Oh, I don't hear...": tiny.en hears "So I don't
hear..." there, so a sentence ends 1 s before Sheila's utterance and the next starts 0.6 s
before Diane's."""


@pytest.fixture(scope="module")
def call() -> CallSample:
    return pyannote_sample()


@pytest.fixture(scope="module")
def transcript(call: CallSample) -> Transcript:
    return transcribe_file(call.wav, backend=FASTER_WHISPER, model=str(ct2_tiny_en_path()))


def matched_words(
    reference: list[tuple[str, Utterance]], hypothesis: list[tuple[str, Word]]
) -> list[tuple[Utterance, Word]]:
    """Pairs of equal words on a minimum-edit-distance alignment of the two word lists."""
    rows = [list(range(len(hypothesis) + 1))]
    for i, (ref_word, _) in enumerate(reference, start=1):
        row = [i]
        for j, (hyp_word, _) in enumerate(hypothesis, start=1):
            diagonal = rows[-1][j - 1] + (ref_word != hyp_word)
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, diagonal))
        rows.append(row)
    pairs: list[tuple[Utterance, Word]] = []
    i, j = len(reference), len(hypothesis)
    while i and j:
        same = reference[i - 1][0] == hypothesis[j - 1][0]
        if rows[i][j] == rows[i - 1][j - 1] + (not same):
            if same:
                pairs.append((reference[i - 1][1], hypothesis[j - 1][1]))
            i, j = i - 1, j - 1
        elif rows[i][j] == rows[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def turn_changes(call: CallSample) -> list[float]:
    """Times where the other speaker takes over and the reference ends a sentence.

    A change is the middle of the gap (or overlap) between a turn and the next turn of the
    other speaker; turns wholly inside another's (back-channel) are left out.
    """
    turns = [
        t for t in call.turns if not any(o.start < t.start and t.end < o.end for o in call.turns)
    ]
    sentence_ends = [u.end for u in call.utterances if ends_sentence(u.text)]
    changes = [
        (a.end + b.start) / 2 for a, b in itertools.pairwise(turns) if a.speaker != b.speaker
    ]
    return [
        t for t in changes if any(abs(t - end) <= BOUNDARY_TOLERANCE_S for end in sentence_ends)
    ]


def sentence_breaks(transcript: Transcript) -> list[float]:
    """The middle of the pause between each pair of consecutive sentences."""
    return [(a.end + b.start) / 2 for a, b in itertools.pairwise(transcript.sentences)]


# --- the recording ----------------------------------------------------------------------------


def test_reference_transcript_and_turns_describe_the_call(call: CallSample) -> None:
    assert [u.speaker for u in call.utterances[:2]] == ["Diane", "Sheila"]
    assert len(normalise_words(call.text)) == 81
    assert {t.speaker for t in call.turns} == {"speaker90", "speaker91"}
    assert all(0.0 <= u.start < u.end <= 30.0 for u in call.utterances)
    assert len(turn_changes(call)) == 8


# --- tiny.en on the call --------------------------------------------------------------------


@pytest.mark.slow
def test_word_error_rate_against_the_reference(call: CallSample, transcript: Transcript) -> None:
    assert transcript.language == "en"
    assert word_error_rate(call.text, transcript.text) <= MAX_WER


@pytest.mark.slow
def test_word_times_are_ordered_and_inside_the_audio(transcript: Transcript) -> None:
    words = transcript.words
    assert transcript.duration == pytest.approx(30.0, abs=0.01)
    assert len(words) >= 60
    assert all(0.0 <= w.start <= w.end <= transcript.duration for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))


@pytest.mark.slow
def test_recognised_words_fall_in_their_reference_utterance(
    call: CallSample, transcript: Transcript
) -> None:
    reference = [(w, u) for u in call.utterances for w in normalise_words(u.text)]
    hypothesis = [(n, w) for w in transcript.words for n in normalise_words(w.text)]
    pairs = matched_words(reference, hypothesis)
    assert len(pairs) >= 0.8 * len(reference)
    # how far each word's middle lies outside its utterance: a repeated "hello" or "I" may
    # be paired with the neighbouring one, so a few may be off by up to one word
    outside = [
        max(u.start - (w.start + w.end) / 2, (w.start + w.end) / 2 - u.end) for u, w in pairs
    ]
    assert sum(d <= TIMING_TOLERANCE_S for d in outside) >= 0.9 * len(pairs)
    assert max(outside) <= 0.75


@pytest.mark.slow
def test_sentences_begin_and_end_where_reference_utterances_do(
    call: CallSample, transcript: Transcript
) -> None:
    starts = [u.start for u in call.utterances]
    ends = [u.end for u in call.utterances]
    assert len(transcript.sentences) >= 10  # punctuated, not one run-on sentence
    for sentence in transcript.sentences:
        for edge, marks in ((sentence.start, starts), (sentence.end, ends)):
            if not CROSSTALK_S[0] <= edge <= CROSSTALK_S[1]:
                assert min(abs(edge - t) for t in marks) <= BOUNDARY_TOLERANCE_S


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=(
        "with silero VAD tiny.en (beam 5) punctuates this call and 6 of the 8 speaker changes "
        "get a sentence break within 0.5 s; two changes are lost with the words around them: "
        "Sheila's 'Hello?' (7.6 s) right after Diane's is not heard, and her 'so what can I "
        "say?' (28 s) is said over Diane. (Without VAD, beam 5 wrote no punctuation at all and "
        "the call was one 22 s sentence; greedy decoding found all 8.)"
    ),
)
def test_sentences_break_where_the_speaker_changes(
    call: CallSample, transcript: Transcript
) -> None:
    breaks = sentence_breaks(transcript)
    missed = [
        t for t in turn_changes(call) if all(abs(t - b) > BOUNDARY_TOLERANCE_S for b in breaks)
    ]
    assert missed == []


@pytest.mark.slow
def test_real_speech_is_recognised_at_least_as_well_as_by_the_library_defaults(
    transcript: Transcript,
) -> None:
    transcriber = load_transcriber(FASTER_WHISPER, str(ct2_tiny_en_path()))
    errors = words = 0.0
    for recording in real_speech():
        heard = transcript
        if recording.name != "pyannote_call":
            heard = transcriber.transcribe(decode_audio(recording.wav))
        count = len(normalise_words(recording.text))
        errors += word_error_rate(recording.text, heard.text) * count
        words += count
    assert words == 81 + 119 + 12
    assert errors / words <= LIBRARY_DEFAULT_WER


# --- fetching the recording ----------------------------------------------------------------


def _wheel(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(member, data)
    return buffer.getvalue()


WHEEL = _wheel("demo/sample/voice.wav", b"RIFF")
DEMO = Package("demo", "1.0", hashlib.sha256(WHEEL).hexdigest(), ("demo/sample/voice.wav",))


def _offline(package: Package, dest: Path) -> Path:
    raise FetchError("connection refused")


def _served(package: Package, dest: Path) -> Path:
    path = dest / "demo-1.0-py3-none-any.whl"
    path.write_bytes(WHEEL)
    return path


def test_a_fetch_unpacks_once_into_a_folder_per_version(tmp_path: Path) -> None:
    folder = fetch(DEMO, _served, tmp_path)
    assert folder == tmp_path / "demo-1.0"
    assert (folder / "voice.wav").read_bytes() == b"RIFF"
    assert fetch(DEMO, _offline, tmp_path) == folder  # cached: no second download
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-1.0"]


def test_a_failed_download_skips_outside_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"cannot download demo-1\.0 .*refused"):
        fetch(DEMO, _offline, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"cannot download demo-1\.0 .*CI is set"):
        fetch(DEMO, _offline, tmp_path)


def test_an_archive_with_another_digest_fails(tmp_path: Path) -> None:
    changed = Package(DEMO.name, DEMO.version, "0" * 64, DEMO.members)
    with pytest.raises(pytest.fail.Exception, match="SHA-256"):
        fetch(changed, _served, tmp_path)
    assert list(tmp_path.iterdir()) == []
