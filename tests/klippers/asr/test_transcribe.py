"""Transcription on real encoded speech with real (offline) Whisper tiny.en models."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import srt
from click.testing import CliRunner

from klippers.asr.transcribe import (
    BACKENDS,
    FASTER_WHISPER,
    SAMPLE_RATE,
    WHISPER_TIMESTAMPED,
    AudioNotFoundError,
    NoAudioStreamError,
    Transcriber,
    UnknownBackendError,
    UnreadableAudioError,
    decode_audio,
    group_sentences,
    load_openai_whisper,
    load_transcriber,
    resolve_backend,
    resolve_model,
    snap_to_voice,
    transcribe_file,
    voiced_frames,
    window_bounds,
)
from klippers.asr.transcript import Transcript, Word
from klippers.cli import cli
from klippers.contract import ENV_ASR_MODEL, EXIT_BAD_INPUT
from tests.support.speech import (
    SpeechClip,
    silent_clip,
    speech_clip,
    tone,
    video_only_clip,
    word_error_rate,
    write_mp4,
)
from tests.support.whisper_models import (
    alignment_mask,
    ct2_tiny_en_path,
    dims_from_ct2,
    openai_tiny_en_checkpoint,
    read_ct2_variables,
)

ROOT = Path(__file__).resolve().parents[3]
MAX_WER = 0.15
BOUNDARY_TOLERANCE_S = 0.5
HEAVY_MODULES = ("torch", "ctranslate2", "faster_whisper", "whisper", "whisper_timestamped")


def tiny_en_model(backend: str) -> str:
    """The offline tiny.en model in the form ``backend`` loads."""
    if backend == FASTER_WHISPER:
        return str(ct2_tiny_en_path())
    return str(openai_tiny_en_checkpoint())


@pytest.fixture(scope="module")
def clip() -> SpeechClip:
    return speech_clip()


@pytest.fixture(scope="module")
def audio(clip: SpeechClip) -> np.ndarray:
    return decode_audio(clip.path)


@pytest.fixture(scope="module", params=BACKENDS)
def transcriber(request: pytest.FixtureRequest) -> Transcriber:
    backend: str = request.param
    return load_transcriber(backend, tiny_en_model(backend))


@pytest.fixture(scope="module")
def transcript(transcriber: Transcriber, audio: np.ndarray) -> Transcript:
    return transcriber.transcribe(audio)


# --- audio decoding ---------------------------------------------------------------------------


def test_decoded_audio_is_16k_mono_float32_aligned_with_the_media(
    clip: SpeechClip, audio: np.ndarray
) -> None:
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert abs(audio.size / SAMPLE_RATE - clip.duration) < 0.05
    onset = np.flatnonzero(voiced_frames(audio))[0] * 0.01
    assert abs(onset - clip.sentences[0].start) <= 0.02


def test_audio_that_starts_late_keeps_its_place_on_the_timeline(tmp_path: Path) -> None:
    path = tmp_path / "late.mp4"
    beep = np.concatenate([np.zeros(9600, np.float32), tone(0.5)])  # 0.2 s silence, 0.5 s tone
    write_mp4(path, beep, duration=1.5, audio_start=0.5)
    voiced = np.flatnonzero(voiced_frames(decode_audio(path))) * 0.01
    assert abs(voiced[0] - 0.7) <= 0.03
    assert abs(voiced[-1] - 1.2) <= 0.03


def test_video_without_audio_stream_is_a_typed_error(tmp_path: Path) -> None:
    path = video_only_clip(tmp_path / "mute.mp4")
    with pytest.raises(NoAudioStreamError, match=r"mute\.mp4: no audio stream"):
        transcribe_file(path, backend=FASTER_WHISPER, model="never-loaded")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.mp4", bytes(range(256)) * 64),
        ("empty.mp4", b""),
        ("notes.txt", b"this is not a media file\n"),
    ],
)
def test_unreadable_file_is_a_typed_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableAudioError, match=name.replace(".", r"\.")):
        decode_audio(path)


def test_truncated_video_is_a_typed_error(tmp_path: Path, clip: SpeechClip) -> None:
    path = tmp_path / "cut.mp4"
    path.write_bytes(clip.path.read_bytes()[: clip.path.stat().st_size // 2])
    with pytest.raises(UnreadableAudioError, match=r"cut\.mp4"):
        decode_audio(path)


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(AudioNotFoundError, match="no such file"):
        decode_audio(tmp_path / "absent.mp4")


# --- configuration -----------------------------------------------------------------------------


def test_backend_and_model_come_from_argument_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KLIPPERS_ASR_BACKEND", raising=False)
    monkeypatch.delenv(ENV_ASR_MODEL, raising=False)
    assert resolve_backend() == FASTER_WHISPER
    monkeypatch.setenv("KLIPPERS_ASR_BACKEND", WHISPER_TIMESTAMPED)
    monkeypatch.setenv(ENV_ASR_MODEL, "/models/tiny")
    assert resolve_backend() == WHISPER_TIMESTAMPED
    assert resolve_model() == "/models/tiny"
    assert resolve_backend(FASTER_WHISPER) == FASTER_WHISPER
    assert resolve_model("small") == "small"


def test_unknown_backend_is_a_typed_error() -> None:
    with pytest.raises(UnknownBackendError, match="vosk"):
        load_transcriber("vosk", "tiny.en")


def test_importing_klippers_loads_no_model_code() -> None:
    code = (
        "import sys, klippers.cli, klippers.asr.transcribe, klippers.asr.subtitles\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == ""


# --- word post-processing (no model) ------------------------------------------------------------


def test_words_are_trimmed_to_the_voiced_audio() -> None:
    audio = np.zeros(3 * SAMPLE_RATE, np.float32)
    audio[SAMPLE_RATE : 2 * SAMPLE_RATE] = 0.3 * np.sin(np.arange(SAMPLE_RATE) * 0.2)
    words = [Word(0.2, 1.4, "early"), Word(1.5, 2.6, "late"), Word(2.7, 2.9, "ghost")]
    snapped = snap_to_voice(words, voiced_frames(audio))
    assert snapped[0].start == pytest.approx(1.0, abs=0.011)
    assert snapped[1].end == pytest.approx(2.0, abs=0.011)
    assert snapped[2] == words[2]  # nothing voiced under it: left alone


def test_sentences_end_at_terminal_punctuation_or_a_long_pause() -> None:
    words = [
        Word(0.0, 0.3, "Hello"),
        Word(0.4, 0.8, "there."),
        Word(1.0, 1.3, "Still"),
        Word(1.4, 1.7, "talking"),
        Word(4.0, 4.4, "after"),
        Word(4.5, 4.9, "pause"),
    ]
    sentences = group_sentences(words, "en")
    assert [s.text for s in sentences] == ["Hello there.", "Still talking", "after pause"]
    assert [(s.start, s.end) for s in sentences] == [(0.0, 0.8), (1.0, 1.7), (4.0, 4.9)]


def test_long_audio_is_cut_into_windows_at_quiet_moments() -> None:
    rng = np.random.default_rng(3)
    audio = (0.2 * rng.standard_normal(100 * SAMPLE_RATE)).astype(np.float32)
    audio[int(27.0 * SAMPLE_RATE) : int(27.8 * SAMPLE_RATE)] = 0.0  # a pause near the limit
    bounds = window_bounds(audio, window=30.0, search=10.0)
    assert bounds[0][0] == 0
    assert bounds[-1][1] == audio.size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert all(hi - lo <= 30 * SAMPLE_RATE for lo, hi in bounds)
    assert 27.0 <= bounds[0][1] / SAMPLE_RATE <= 27.8
    assert window_bounds(audio[: 5 * SAMPLE_RATE], window=30.0) == [(0, 5 * SAMPLE_RATE)]


# --- the offline models --------------------------------------------------------------------------


def test_converted_checkpoint_loads_with_the_alignment_heads() -> None:
    folder = ct2_tiny_en_path()
    net = load_openai_whisper(str(openai_tiny_en_checkpoint()))
    expected = alignment_mask(folder, dims_from_ct2(read_ct2_variables(folder / "model.bin")))
    assert sum(p.numel() for p in net.parameters()) == 37_184_256
    assert np.array_equal(net.alignment_heads.to_dense().numpy(), expected)


# --- both backends on known speech ----------------------------------------------------------------


@pytest.mark.slow
def test_word_error_rate_is_low(clip: SpeechClip, transcript: Transcript) -> None:
    assert word_error_rate(clip.text, transcript.text) <= MAX_WER
    assert transcript.language == "en"


@pytest.mark.slow
def test_word_times_are_ordered_disjoint_and_inside_the_audio(
    clip: SpeechClip, transcript: Transcript
) -> None:
    words = transcript.words
    assert len(words) >= 40
    assert all(0.0 <= w.start <= w.end <= transcript.duration for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert transcript.duration == pytest.approx(clip.duration, abs=0.05)
    assert all(0.0 <= w.probability <= 1.0 for w in words)


@pytest.mark.slow
def test_sentence_boundaries_fall_in_the_known_silences(
    clip: SpeechClip, transcript: Transcript
) -> None:
    assert len(transcript.sentences) == len(clip.sentences)
    for found, truth in zip(transcript.sentences, clip.sentences, strict=True):
        assert found.start == pytest.approx(truth.start, abs=BOUNDARY_TOLERANCE_S)
        assert found.end == pytest.approx(truth.end, abs=BOUNDARY_TOLERANCE_S)
        assert found.words[0].start == found.start
        assert found.words[-1].end == found.end


@pytest.mark.slow
def test_windowed_recognition_keeps_words_on_the_timeline(
    clip: SpeechClip, audio: np.ndarray
) -> None:
    model = tiny_en_model(FASTER_WHISPER)
    windowed = load_transcriber(FASTER_WHISPER, model, window_s=12.0).transcribe(audio)
    assert len(window_bounds(audio, 12.0)) == 3
    assert word_error_rate(clip.text, windowed.text) <= MAX_WER
    assert len(windowed.sentences) == len(clip.sentences)
    for found, truth in zip(windowed.sentences, clip.sentences, strict=True):
        assert found.start == pytest.approx(truth.start, abs=BOUNDARY_TOLERANCE_S)
        assert found.end == pytest.approx(truth.end, abs=BOUNDARY_TOLERANCE_S)


@pytest.mark.slow
def test_silence_gives_an_empty_transcript(tmp_path: Path, transcriber: Transcriber) -> None:
    result = transcriber.transcribe(decode_audio(silent_clip(tmp_path / "quiet.mp4")))
    assert result.sentences == ()
    assert result.duration == pytest.approx(4.0, abs=0.05)


@pytest.mark.slow
def test_faint_noise_gives_an_empty_transcript(transcriber: Transcriber) -> None:
    hiss = np.random.default_rng(7).normal(0.0, 1e-3, 4 * SAMPLE_RATE).astype(np.float32)
    assert transcriber.transcribe(hiss).sentences == ()


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_writes_subtitles_text_and_words(tmp_path: Path, clip: SpeechClip) -> None:
    args = ["transcribe", str(clip.path), "-o", str(tmp_path / "out")]
    args += ["--backend", FASTER_WHISPER, "--model", tiny_en_model(FASTER_WHISPER)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    words = Transcript.load(out / "original.words.json")
    cues = list(srt.parse((out / "original.srt").read_text(encoding="utf-8")))
    lines = (out / "original.txt").read_text(encoding="utf-8").splitlines()
    assert word_error_rate(clip.text, " ".join(lines)) <= MAX_WER
    assert lines == [s.text for s in words.sentences]
    assert len(cues) >= len(clip.sentences)
    assert cues[0].start.total_seconds() == pytest.approx(clip.sentences[0].start, abs=0.5)
    assert sorted(p.name for p in out.iterdir()) == [
        "original.srt",
        "original.txt",
        "original.words.json",
    ]


def test_cli_reports_a_video_without_audio(tmp_path: Path) -> None:
    path = video_only_clip(tmp_path / "mute.mp4")
    result = CliRunner().invoke(cli, ["transcribe", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no audio stream" in result.output
    assert not (tmp_path / "out").exists()
