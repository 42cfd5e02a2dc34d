"""Decoding a span of the audio: the whole-file decode's own samples, from a seek.

AAC decodes a little differently after a seek (FFmpeg fills its noise-substituted bands from
the decoder's random state, which a seek leaves elsewhere: about 40 % of the frames after it
differ slightly, for good), so on AAC the span must match the whole decode's slice in time
and closely in value; on PCM it must match exactly.
"""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from klippers.asr.transcribe import SAMPLE_RATE, decode_audio
from tests.support.remux import shifted
from tests.support.talk import talk_video

MAX_LAG = SAMPLE_RATE // 1000
"""Best alignment at most 1 ms off."""
MAX_RELATIVE_ERROR = 0.02
"""RMS of the difference over the RMS of the signal on AAC (measured at most 0.008)."""


def best_lag(reference: np.ndarray, span: np.ndarray, reach: int = 4 * MAX_LAG) -> int:
    """The shift of ``span`` (within ``reach`` samples) that best matches ``reference``."""
    middle = slice(reach, reference.size - reach)
    errors = {
        lag: float(
            np.mean(np.square(span[reach + lag : span.size - reach + lag] - reference[middle]))
        )
        for lag in range(-reach, reach + 1)
    }
    return min(errors, key=errors.__getitem__)


def relative_error(reference: np.ndarray, span: np.ndarray) -> float:
    """RMS of ``span - reference`` over the RMS of ``reference``."""
    rms = float(np.sqrt(np.mean(np.square(reference))))
    return float(np.sqrt(np.mean(np.square(span - reference)))) / rms


def whole_slice(whole: np.ndarray, start: float, end: float | None) -> np.ndarray:
    return whole[round(start * SAMPLE_RATE) : None if end is None else round(end * SAMPLE_RATE)]


@pytest.fixture(scope="module")
def talk() -> Path:
    return talk_video()


@pytest.fixture(scope="module")
def talk_samples(talk: Path) -> np.ndarray:
    return decode_audio(talk)


@pytest.mark.parametrize(
    ("start", "end"),
    [(20.345, 35.7), (47.5, None), (50.0, 75.0)],
    ids=["middle", "to-the-end", "past-the-end"],
)
def test_a_span_of_aac_in_mp4_is_the_slice_of_the_whole_decode(
    talk: Path, talk_samples: np.ndarray, start: float, end: float | None
) -> None:
    span = decode_audio(talk, start, end)
    reference = whole_slice(talk_samples, start, end)

    assert span.size == reference.size
    assert abs(best_lag(reference, span)) <= MAX_LAG
    assert relative_error(reference, span) <= MAX_RELATIVE_ERROR


@pytest.mark.parametrize(
    ("offset", "audio", "fmt"),
    [(16.4, 0.0, "mpegts"), (2.0, -0.3, "mp4"), (2.0, 0.3, "mp4")],
    ids=["mpegts-from-16.4s", "audio-before-video", "audio-after-video"],
)
def test_a_span_keeps_the_media_timeline_of_the_whole_decode(
    tmp_path: Path, talk: Path, offset: float, audio: float, fmt: str
) -> None:
    moved = shifted(talk, tmp_path / f"moved.{fmt}", offset, audio_offset=audio, fmt=fmt)
    whole = decode_audio(moved)
    for start, end in [(0.1, 6.0), (31.234, 40.0)]:
        span = decode_audio(moved, start, end)
        reference = whole_slice(whole, start, end)

        assert span.size == reference.size
        assert abs(best_lag(reference, span)) <= MAX_LAG, (start, end)
        assert relative_error(reference, span) <= MAX_RELATIVE_ERROR, (start, end)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.round(samples * 32767).astype(np.int16).tobytes())
    return path


@pytest.mark.parametrize("rate", [44_100, 48_000])
def test_a_span_of_pcm_is_exactly_the_slice_of_the_whole_decode(tmp_path: Path, rate: int) -> None:
    noise = np.random.default_rng(7).uniform(-0.5, 0.5, 20 * rate)
    path = _write_wav(tmp_path / "noise.wav", noise, rate)
    whole = decode_audio(path)

    for start, end in [(7.77777, 12.3), (15.0, None), (0.0, 0.5)]:
        np.testing.assert_array_equal(
            decode_audio(path, start, end), whole_slice(whole, start, end)
        )


def test_a_span_past_the_end_is_empty_and_a_reversed_one_is_refused(talk: Path) -> None:
    assert decode_audio(talk, 100.0, 110.0).size == 0
    with pytest.raises(ValueError, match="start must be"):
        decode_audio(talk, 5.0, 4.0)
    with pytest.raises(ValueError, match="start must be"):
        decode_audio(talk, -1.0)


def _write_opus_webm(path: Path, seconds: int) -> Path:
    """Stereo Opus in WebM (what a downloader gets from a video site): millisecond timestamps
    and frames of 20 ms after a first one shortened by the encoder's pre-skip."""
    rate = 48_000
    noise = np.random.default_rng(3).uniform(-0.3, 0.3, seconds * rate).astype(np.float32)
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=rate, layout="stereo")
        size = stream.codec_context.frame_size or 960
        for n in range(0, noise.size - size + 1, size):
            chunk = noise[n : n + size]
            frame = av.AudioFrame.from_ndarray(
                np.stack([chunk, chunk]), format="fltp", layout="stereo"
            )
            frame.sample_rate = rate
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_a_span_of_opus_in_webm_is_the_whole_decode_s_within_half_a_millisecond(
    tmp_path: Path,
) -> None:
    """WebM's millisecond timestamps place a frame only to the nearest millisecond (the one
    after the pre-skip starts at 13.5 ms, stamped 14): a span may sit up to half of one off
    the whole decode, whose frames follow each other, and is otherwise the same samples."""
    path = _write_opus_webm(tmp_path / "speech.webm", 20)
    whole = decode_audio(path)
    for start, end in [(5.3, 9.7), (12.0, None)]:
        span, reference = decode_audio(path, start, end), whole_slice(whole, start, end)
        assert abs(span.size - reference.size) <= SAMPLE_RATE // 2000
        size = min(span.size, reference.size)
        lag = best_lag(reference[:size], span[:size])
        assert abs(lag) <= SAMPLE_RATE // 2000
        reach = 4 * MAX_LAG
        aligned = span[reach + lag : size - reach + lag]
        assert relative_error(reference[reach : size - reach], aligned) < 1e-3
