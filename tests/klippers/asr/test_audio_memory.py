"""Long audio at flat memory: decoded samples are memory-mapped, loudness is read in blocks."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest

from klippers.asr.loudness import BLOCK_SECONDS, SILENCE_DB, loudness_of_samples
from klippers.asr.transcribe import SAMPLE_RATE, decode_audio

ROOT = Path(__file__).resolve().parents[3]
LONG_MINUTES = 20


def _tone() -> np.ndarray:
    """One second of a 440 Hz tone as 16-bit samples at :data:`SAMPLE_RATE`."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    return np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def _write_wav(path: Path, seconds: int) -> Path:
    """``seconds`` of the repeated tone, 16 kHz mono 16-bit WAV."""
    second = _tone().tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for _ in range(seconds):
            out.writeframes(second)
    return path


def test_decoded_audio_is_mapped_from_a_file_that_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    audio = decode_audio(_write_wav(tmp_path / "tone.wav", 3))

    assert isinstance(audio, np.memmap)
    assert list(scratch.iterdir()) == [], "the backing file has no name to leave behind"
    assert audio.size == 3 * SAMPLE_RATE
    np.testing.assert_allclose(audio[-SAMPLE_RATE:], _tone() / 32768, atol=1e-6)
    audio[0] = 1.0  # writable, as a decoded array always was


_MEASURE = """
import json, sys
from pathlib import Path
from klippers.asr.transcribe import decode_audio

def peak_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

decode_audio(sys.argv[1])  # load the codecs before measuring
Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
before = peak_kib()
audio = decode_audio(sys.argv[2])
print(json.dumps({"growth": (peak_kib() - before) * 1024, "samples": int(audio.size)}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_decoding_long_audio_keeps_the_process_memory_flat(tmp_path: Path) -> None:
    short = _write_wav(tmp_path / "short.wav", 1)
    long = _write_wav(tmp_path / "long.wav", LONG_MINUTES * 60)
    decoded_bytes = LONG_MINUTES * 60 * SAMPLE_RATE * 4

    found = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(short), str(long)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(found.stdout)

    assert result["samples"] == LONG_MINUTES * 60 * SAMPLE_RATE
    assert result["growth"] < decoded_bytes / 8, (
        f"decoding {LONG_MINUTES} min grew the peak memory by {result['growth'] / 2**20:.0f} MiB "
        f"({decoded_bytes / 2**20:.0f} MiB of samples)"
    )


def test_loudness_read_in_blocks_matches_the_whole_signal_at_once() -> None:
    rate = 100
    seconds = 2 * BLOCK_SECONDS + 7
    rng = np.random.default_rng(3)
    samples = rng.uniform(0.01, 1.0, seconds)[:, None] * rng.standard_normal((seconds, rate))
    samples = np.append(samples.astype(np.float32).reshape(-1), np.full(30, 0.5, np.float32))
    samples[rate * 10 : rate * 11] = 0.0  # one silent second

    levels = loudness_of_samples(samples, rate)

    whole = np.square(samples.astype(np.float64))
    starts = np.arange(0, whole.size, rate)
    power = np.add.reduceat(whole, starts) / np.diff(np.append(starts, whole.size))
    with np.errstate(divide="ignore"):
        expected = np.maximum(10 * np.log10(power), SILENCE_DB)
    assert levels.shape == (seconds + 1,)
    np.testing.assert_allclose(levels, expected, atol=1e-9)
    assert levels[10] == SILENCE_DB
    assert levels[-1] == pytest.approx(-6.02, abs=0.01)
