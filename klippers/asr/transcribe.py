"""Speech to word-timed text with Whisper, behind one interface and two backends.

Backends, picked by name (``backend=`` or ``$KLIPPERS_ASR_BACKEND``):

- ``faster-whisper``: CTranslate2, int8 on CPU. The default: several times faster than
  whisper-timestamped on CPU at the same accuracy (see ``benchmarks/bench_asr.py``).
- ``whisper-timestamped``: openai-whisper plus cross-attention DTW word alignment.

The model is a name the backend knows (``tiny.en``, ``base``, ``small``... downloaded by the
backend on first use) or a local path (a CTranslate2 folder for faster-whisper, an
openai-whisper ``.pt`` checkpoint for whisper-timestamped), given by ``model=`` or
``$KLIPPERS_ASR_MODEL``. Heavy modules (torch, ctranslate2, the backends) are imported only
when that backend is loaded. Audio is decoded with PyAV to 16 kHz mono float32, demuxing
only the audio stream, whole or one span of it (a transcription window).

Long audio is recognised in windows cut at quiet moments. With faster-whisper the windows
run concurrently (``workers=`` or ``$KLIPPERS_ASR_WORKERS``; one CTranslate2 model with that
many workers, the CPU threads split between them), and silero voice-activity detection
(shipped inside faster-whisper) drops long silences before decoding. ``device="cuda"``
(``$KLIPPERS_ASR_DEVICE``) runs the model in float16 on a GPU, int8 being the CPU default.

Examples
--------
>>> from klippers.asr.transcribe import transcribe_file
>>> transcript = transcribe_file("talk.mp4", backend="faster-whisper", model="tiny.en")
>>> [(w.start, w.end, w.text) for w in transcript.words[:3]]  # seconds from media start
"""

from __future__ import annotations

import base64
import gzip
import itertools
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

import av
import numpy as np

from klipmedia.captions import ends_sentence, join_words
from klipmedia.probe import timeline_origin
from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.contract import DEFAULT_ASR_MODEL, ENV_ASR_MODEL
from klippers.workload import cpu_cores

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FASTER_WHISPER = "faster-whisper"
WHISPER_TIMESTAMPED = "whisper-timestamped"
BACKENDS = (FASTER_WHISPER, WHISPER_TIMESTAMPED)
DEFAULT_BACKEND = FASTER_WHISPER
BACKEND_ENV = "KLIPPERS_ASR_BACKEND"
CPU, CUDA = "cpu", "cuda"
DEVICES = (CPU, CUDA)
DEVICE_ENV = "KLIPPERS_ASR_DEVICE"
WORKERS_ENV = "KLIPPERS_ASR_WORKERS"
THREADS_PER_WORKER = 1
"""CPU threads each concurrent window gets by default (see ``benchmarks/bench_asr.py``)."""
COMPUTE_TYPES = {CPU: "int8", CUDA: "float16"}
DEFAULT_BEAM_SIZE = 5
"""Beam search width of both backends. Greedy decoding (1) measured against it with
faster-whisper tiny.en (int8, 2 CPU threads, ``bench_asr.py --parts beams``) on the real
recordings (84 s, 212 words): pooled WER 0.066 to 0.104 (three runs) against 0.052, and no
faster: beam 5 / greedy time x0.95, x1.09, x1.02 (medians of 5, 7 and 9 interleaved
rounds; single rounds 0.55 to 1.50). Greedy is faster on the clean readings (x1.28 on
Dickens) but on the phone call it loops, fails the compression-ratio check and falls back to
sampling (x0.84).
Narrower beams kept the WER (beam 2: 0.047, beam 3: 0.052) but gained little: beam 5 took
x1.15 (1.11 to 1.18) the time of beam 2 and x1.10 (1.10 to 1.11) that of beam 3 (5 rounds)."""

SILENCE_PEAK = 1e-3
"""Audio whose absolute peak stays below this (-60 dBFS) holds no speech: skip the model."""
VOICE_FRAME = 160
"""Loudness is measured over 10 ms frames (160 samples at 16 kHz)."""
VOICE_FLOOR = 1e-3
VOICE_RELATIVE = 0.02
"""A frame is voiced above ``max(VOICE_FLOOR, VOICE_RELATIVE * loud)``, where ``loud`` is the
95th percentile frame RMS: well under quiet consonants, well over a quiet room."""
WINDOW_S = 300.0
"""Audio is recognised at most this many seconds at a time (bounds memory on long videos)."""
MIN_WINDOW_S = 60.0
"""Windows are made shorter than :data:`WINDOW_S` to keep every worker busy, not below this:
each cut loses the text before it as context."""
SPLIT_SEARCH_S = 20.0
QUIET_FRAMES = 50
"""Windows are cut at the quietest ``QUIET_FRAMES`` x 10 ms in the last ``SPLIT_SEARCH_S``."""
SEEK_PREROLL_S = Fraction(1, 2)
"""A span of the audio is decoded from this long before it: after a seek, codecs need a few
packets (AAC one, MP3 up to nine, Opus 80 ms) to decode their samples exactly."""
RESAMPLE_PREROLL = SAMPLE_RATE // 20
"""Samples resampled and dropped before a span, so the resampler's filter is as warm there as
in a whole-file decode."""
GAP_TOLERANCE_S = Fraction(1, 50)
"""Audio frames are placed by their timestamps: a frame this much later than the samples
before it end (a dropout in a stream recording) is preceded by silence, one this much
earlier has its repeated samples dropped; closer frames simply follow each other."""
MAX_GAP_S = 600
MAX_OVERLAP_S = 1
"""A jump forward further than ``MAX_GAP_S``, or back further than ``MAX_OVERLAP_S``, is a
broken timestamp (joined recordings), not lost or repeated audio: frames then follow each
other."""
SENTENCE_PAUSE_S = 1.5
"""A pause this long between words ends a sentence even without punctuation."""
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class TranscriptionError(Exception):
    """Base class of every error raised on purpose by transcription."""


class AudioNotFoundError(TranscriptionError, FileNotFoundError):
    """The media file does not exist."""


class AudioInputError(TranscriptionError, ValueError):
    """The media file cannot be used as a source of speech."""


class UnreadableAudioError(AudioInputError):
    """The file is empty, corrupt or not a container/codec FFmpeg can read."""


class NoAudioStreamError(AudioInputError):
    """The file has no audio stream (e.g. a silent screen recording)."""


class UnknownBackendError(TranscriptionError, ValueError):
    """The backend name is not one of :data:`BACKENDS`."""


class ConfigurationError(TranscriptionError, ValueError):
    """A device or worker count that cannot be used."""


class BackendUnavailableError(TranscriptionError):
    """The backend's Python packages are not installed."""


class ModelLoadError(TranscriptionError):
    """The model could not be found, downloaded or loaded."""


# --- audio -----------------------------------------------------------------------------------


def _open_media(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise AudioNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise UnreadableAudioError(f"{path}: file is empty")
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise UnreadableAudioError(f"{path}: not a readable media file ({exc})") from exc


class _SampleFile:
    """Float32 samples appended to an unnamed temporary file, then mapped back as an array.

    Decoded audio lives in the page cache, not in the process's own memory: pages come in
    while they are read and the kernel can take them back, so a long video costs little
    more than a short one. The file (opened unnamed, e.g. by ``tempfile.TemporaryFile``)
    may be closed once mapped: its space is freed with the array. Samples beyond ``limit``
    are not kept.
    """

    def __init__(self, file: BinaryIO, limit: int | None = None) -> None:
        self._file = file
        self._size = 0
        self._limit = limit

    @property
    def full(self) -> bool:
        """Whether ``limit`` samples are kept already."""
        return self._limit is not None and self._size >= self._limit

    def append(self, chunk: np.ndarray) -> None:
        if self._limit is not None:
            chunk = chunk[: max(0, self._limit - self._size)]
        self._file.write(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
        self._size += chunk.size

    def pad(self, count: int) -> None:
        """Append ``count`` samples of silence, a second at a time."""
        for start in range(0, count, SAMPLE_RATE):
            self.append(np.zeros(min(SAMPLE_RATE, count - start), dtype=np.float32))

    def samples(self) -> np.ndarray:
        """The samples so far, memory-mapped copy-on-write (writes stay private)."""
        if self._size == 0:
            return np.zeros(0, dtype=np.float32)
        self._file.flush()
        return np.memmap(self._file, dtype=np.float32, mode="c", shape=(self._size,))


def _chunks(frames: Iterable[av.AudioFrame]) -> Iterable[np.ndarray]:
    for frame in frames:
        yield frame.to_ndarray().reshape(-1)


def _frames(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[av.AudioFrame]:
    for packet in container.demux(stream):
        yield from packet.decode()


def _row_width(frame: av.AudioFrame) -> int:
    """Values per sample in a row of ``frame.to_ndarray()``: one per plane, all channels
    interleaved in one row when packed."""
    return 1 if frame.format.is_planar else len(frame.layout.channels)


def _frame_like(like: av.AudioFrame, samples: Any) -> av.AudioFrame:
    """A frame of ``samples`` (shaped as ``like.to_ndarray()``) in ``like``'s format,
    layout and rate."""
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples), format=like.format.name, layout=like.layout.name
    )
    frame.sample_rate = like.sample_rate
    return frame


def _trimmed(frame: av.AudioFrame, count: int) -> av.AudioFrame:
    """``frame`` without its first ``count`` samples."""
    if count <= 0:
        return frame
    rest = _frame_like(frame, frame.to_ndarray()[:, count * _row_width(frame) :])
    if frame.pts is not None and frame.time_base is not None:
        rest.time_base = frame.time_base
        rest.pts = frame.pts + round(Fraction(count, frame.sample_rate) / frame.time_base)
    return rest


@dataclass(frozen=True)
class _Grid:
    """Where the resampler's input and output samples coincide: every ``step_in`` samples
    of the source rate, ``step_out`` samples at :data:`SAMPLE_RATE`, counted from the
    stream's first sample. Resampling from any such point gives the whole-file samples."""

    rate: int
    step_in: int
    step_out: int

    @classmethod
    def of(cls, rate: int) -> _Grid:
        common = math.gcd(rate, SAMPLE_RATE)
        return cls(rate, rate // common, SAMPLE_RATE // common)

    def floor_out(self, index: int) -> int:
        """The last grid point at or before output sample ``index`` (not below 0)."""
        return max(0, index // self.step_out * self.step_out)

    def ceil_in(self, index: int) -> int:
        """The first grid point at or after input sample ``index``."""
        return -(-index // self.step_in) * self.step_in

    def to_in(self, index: int) -> int:
        """The input sample of output grid point ``index``."""
        return index // self.step_out * self.step_in

    def to_out(self, index: int) -> int:
        """The output sample of input grid point ``index``."""
        return index // self.step_in * self.step_out


def _fed_from(
    frames: Iterator[av.AudioFrame], zero: Fraction, feed: int, grid: _Grid
) -> tuple[int, Iterator[av.AudioFrame]] | None:
    """The frames from input sample ``feed`` on (counted from ``zero``, the stream's first
    sample), the first one trimmed to start there, and where they start; None past the end.

    Where the frames begin later than ``feed`` (a seek that overshot, a gap) they are fed
    from the next grid point instead.
    """
    seen = 0  # frames without timestamps follow each other
    for frame in frames:
        at = seen
        if frame.pts is not None and frame.time_base is not None:
            at = round((frame.pts * frame.time_base - zero) * grid.rate)
        seen = at + frame.samples
        feed = max(feed, grid.ceil_in(at))
        if seen > feed:
            return feed, itertools.chain([_trimmed(frame, feed - at)], frames)
    return None


def _silence(like: av.AudioFrame, count: int) -> av.AudioFrame:
    """``count`` samples of silence in ``like``'s format, layout and rate."""
    rows = like.to_ndarray()
    return _frame_like(like, np.zeros((rows.shape[0], count * _row_width(like)), rows.dtype))


def _placed(
    frames: Iterable[av.AudioFrame], at: int, zero: Fraction, rate: int
) -> Iterator[av.AudioFrame]:
    """``frames`` (the first starting at input sample ``at``, counted from ``zero``) where
    their timestamps put them: silence fills a dropout, samples played twice are dropped
    (see :data:`GAP_TOLERANCE_S`), so the words after a dropout keep their times."""
    tolerance = round(GAP_TOLERANCE_S * rate)
    expected = at
    for frame in frames:
        if frame.pts is not None and frame.time_base is not None:
            ahead = round((frame.pts * frame.time_base - zero) * rate) - expected
            if tolerance < ahead <= MAX_GAP_S * rate:
                logger.warning(
                    "audio dropout of %.2f s at %.2f s: filled with silence",
                    ahead / rate,
                    expected / rate,
                )
                for start in range(0, ahead, rate):
                    yield _silence(frame, min(rate, ahead - start))
                expected += ahead
            elif -MAX_OVERLAP_S * rate <= ahead < -tolerance:
                if ahead + frame.samples <= 0:
                    continue  # played already
                frame = _trimmed(frame, -ahead)
        expected += frame.samples
        yield frame


def _keep(frames: Iterable[av.AudioFrame], skip: int, buffer: _SampleFile) -> int:
    """Append the samples of ``frames`` after the first ``skip``; return what is left to skip."""
    for chunk in _chunks(frames):
        drop = min(max(skip, 0), chunk.size)
        skip -= drop
        buffer.append(chunk[drop:])
    return skip


def _decode_stream(
    container: av.container.InputContainer, stream: av.AudioStream, first: int, stop: int | None
) -> np.ndarray | None:
    """Resample samples ``[first, stop)`` of ``stream`` (16 kHz indices on the media
    timeline; ``stop`` None for the end) into a mapped file; None when no frame decodes.

    The whole-file decode feeds the resampler from the stream's first sample and puts that
    sample at its time from the media's zero. A window seeks to :data:`SEEK_PREROLL_S`
    before a grid point (:class:`_Grid`) :data:`RESAMPLE_PREROLL` samples before ``first``,
    feeds the resampler from there and drops its output up to ``first``: the kept samples
    are the whole-file decode's own.
    """
    frames = _frames(container, stream)
    head = next(frames, None)
    if head is None:
        return None
    zero = Fraction(0)
    if head.pts is not None and head.time_base is not None:
        zero = Fraction(head.pts * head.time_base)
    lead = round((float(zero) - timeline_origin(container)) * SAMPLE_RATE)
    grid = _Grid.of(head.sample_rate)
    want = first - lead  # output index on the stream's own count
    feed = grid.to_in(grid.floor_out(want - RESAMPLE_PREROLL))
    seek_to = zero + Fraction(feed, grid.rate) - SEEK_PREROLL_S
    if seek_to > zero and stream.time_base is not None:
        container.seek(math.floor(seek_to / stream.time_base), stream=stream, backward=True)
        frames = _frames(container, stream)
    else:
        frames = itertools.chain([head], frames)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    with tempfile.TemporaryFile(prefix="klippers-audio-") as file:
        buffer = _SampleFile(file, None if stop is None else stop - first)
        fed = _fed_from(frames, zero, feed, grid)
        if fed is None:  # the span lies past the end of the audio
            return buffer.samples()
        at, fed_frames = fed
        frames = _placed(fed_frames, at, zero, grid.rate)
        skip = want - grid.to_out(at)  # resampled samples before ``first``
        buffer.pad(-skip)  # audio that starts late keeps its place
        for frame in frames:
            skip = _keep(resampler.resample(frame), skip, buffer)
            if buffer.full:
                return buffer.samples()
        _keep(resampler.resample(None), skip, buffer)
        return buffer.samples()


def decode_audio(path: str | Path, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """Decode the first audio stream of ``path`` to 16 kHz mono float32 samples.

    Only audio packets are demuxed and decoded (video frames are never decoded). Samples
    are resampled chunk by chunk into an unnamed temporary file (in ``$TMPDIR``, about
    230 MB per hour) and returned memory-mapped (an :class:`numpy.memmap`, copy-on-write),
    so a long video's audio does not stay in the process's memory. Sample 0 is the media
    timeline's zero (its first video frame, :func:`klipmedia.probe.timeline_origin`).

    ``start`` and ``end`` (seconds on that timeline; ``end`` None for the end of the audio)
    decode only that span: the stream is sought to just before ``start`` and decoding stops
    at ``end``. The samples are those of the whole-file decode,
    ``decode_audio(path)[round(start * 16000) : round(end * 16000)]``: the same on PCM, within
    about 1 % RMS on AAC (whose noise-filled bands decode differently after a seek), and
    up to half a millisecond off where timestamps are whole milliseconds (WebM, Matroska).

    Raises
    ------
    AudioNotFoundError, UnreadableAudioError, NoAudioStreamError
    ValueError
        ``start`` is negative or ``end`` is before it.
    """
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"audio span {start} to {end} s: start must be >= 0 and <= end")
    path = Path(path)
    first = round(start * SAMPLE_RATE)
    stop = None if end is None else round(end * SAMPLE_RATE)
    with _open_media(path) as container:
        if not container.streams.audio:
            raise NoAudioStreamError(f"{path}: no audio stream to transcribe")
        try:
            samples = _decode_stream(container, container.streams.audio[0], first, stop)
        except av.FFmpegError as exc:
            raise UnreadableAudioError(f"{path}: audio cannot be decoded ({exc})") from exc
    if samples is None:
        raise UnreadableAudioError(f"{path}: the audio stream holds no decodable frames")
    return samples


def is_silent(audio: np.ndarray, peak: float = SILENCE_PEAK) -> bool:
    """Whether ``audio`` never rises above ``peak`` (digital silence or near it)."""
    return audio.size == 0 or float(np.max(np.abs(audio))) < peak


# --- from backend words to a Transcript --------------------------------------------------------


def clean_words(words: Iterable[Word], duration: float) -> list[Word]:
    """Strip words, drop those without a letter or digit, and clamp times into order.

    Backends can emit a word that starts a few milliseconds before the previous one ends,
    or ends past the last sample, and on faint noise a stray ``"."`` as a word; later
    stages rely on none of these happening.
    """
    cleaned: list[Word] = []
    floor = 0.0
    for word in words:
        text = word.text.strip()
        if not any(ch.isalnum() for ch in text):
            continue
        start = min(max(word.start, floor), duration)
        end = min(max(word.end, start), duration)
        cleaned.append(Word(round(start, 3), round(end, 3), text, round(word.probability, 4)))
        floor = cleaned[-1].end
    return cleaned


def frame_rms(audio: np.ndarray, frame: int = VOICE_FRAME) -> np.ndarray:
    """Root-mean-square level of each whole ``frame``-sample frame of ``audio``."""
    count = audio.size // frame
    frames = audio[: count * frame].reshape(count, frame)
    rms: np.ndarray = np.sqrt(np.einsum("ij,ij->i", frames, frames) / frame)
    return rms


def voiced_frames(audio: np.ndarray, frame: int = VOICE_FRAME) -> np.ndarray:
    """Which ``frame``-sample frames of ``audio`` are louder than the silence threshold."""
    rms = frame_rms(audio, frame)
    if rms.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = max(VOICE_FLOOR, VOICE_RELATIVE * float(np.quantile(rms, 0.95)))
    voiced: np.ndarray = rms > threshold
    return voiced


def snap_to_voice(
    words: Sequence[Word], voiced: np.ndarray, frame: int = VOICE_FRAME
) -> list[Word]:
    """Shrink each word's interval to the voiced audio inside it (never widen it).

    Whisper often lets a word begin inside the silence before it (most of all the first
    word of a segment) or end inside the silence after it. Loudness is independent of the
    model, so trimming silent edges moves sentence boundaries onto the real pauses.
    Words over silence only (or over constant noise) are left as they are.
    """
    step = frame / SAMPLE_RATE
    snapped: list[Word] = []
    for word in words:
        first, last = int(word.start / step), int(np.ceil(word.end / step))
        inside = np.flatnonzero(voiced[first:last])
        if inside.size == 0:
            snapped.append(word)
            continue
        start = max(word.start, (first + inside[0]) * step)
        end = min(word.end, (first + inside[-1] + 1) * step)
        snapped.append(Word(start, max(end, start), word.text, word.probability))
    return snapped


def group_sentences(
    words: Sequence[Word], language: str, pause: float = SENTENCE_PAUSE_S
) -> tuple[Sentence, ...]:
    """Group words into sentences at terminal punctuation or at a pause of ``pause`` seconds."""
    sentences: list[Sentence] = []
    current: list[Word] = []
    for i, word in enumerate(words):
        current.append(word)
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt is None or ends_sentence(word.text) or nxt.start - word.end >= pause:
            text = join_words([w.text for w in current], language)
            sentences.append(Sentence(current[0].start, current[-1].end, text, tuple(current)))
            current = []
    return tuple(sentences)


def build_transcript(words: Iterable[Word], language: str, audio: np.ndarray) -> Transcript:
    """Clean raw backend words, trim them to the voiced audio, and group them into sentences."""
    duration = audio.size / SAMPLE_RATE
    cleaned = clean_words(snap_to_voice(list(words), voiced_frames(audio)), duration)
    return Transcript(language, round(duration, 3), group_sentences(cleaned, language))


# --- backends ----------------------------------------------------------------------------------


Progress = Callable[[float, float], None]
"""Called with the seconds of audio transcribed so far and the seconds in all."""


class Transcriber(Protocol):
    """A loaded model that turns 16 kHz mono float32 audio into a transcript."""

    model: str

    @property
    def backend(self) -> str:
        """The backend's name, one of :data:`BACKENDS`."""
        ...

    def transcribe(
        self, audio: np.ndarray, language: str | None = None, progress: Progress | None = None
    ) -> Transcript:
        """Transcribe ``audio``; ``language`` (e.g. ``"en"``) or None to detect it;
        ``progress`` is told each time a window is done."""
        ...


def window_bounds(
    audio: np.ndarray, window: float = WINDOW_S, search: float = SPLIT_SEARCH_S
) -> list[tuple[int, int]]:
    """Cut ``audio`` into windows of at most ``window`` seconds, at quiet moments.

    Each cut is placed at the quietest half second of the last ``search`` seconds before
    the window limit, so that a cut rarely falls inside a word.
    """
    limit, reach = round(window * SAMPLE_RATE), round(search * SAMPLE_RATE)
    bounds: list[tuple[int, int]] = []
    start = 0
    while audio.size - start > limit:
        lo = start + max(limit - reach, limit // 2)
        rms = frame_rms(audio[lo : start + limit])
        smooth = np.convolve(rms, np.ones(QUIET_FRAMES) / QUIET_FRAMES, mode="same")
        cut = lo + int(np.argmin(smooth)) * VOICE_FRAME if smooth.size else start + limit
        bounds.append((start, cut))
        start = cut
    bounds.append((start, audio.size))
    return bounds


def window_length(seconds: float, workers: int, window: float = WINDOW_S) -> float:
    """The window length for ``seconds`` of audio shared by ``workers`` concurrent windows.

    One worker takes ``window`` seconds at a time; several get about an equal share each, but
    never less than :data:`MIN_WINDOW_S` (nor more than ``window``).
    """
    if workers <= 1:
        return window
    return min(window, max(MIN_WINDOW_S, seconds / workers))


@dataclass
class _WindowedTranscriber:
    """Runs a backend window by window and puts the words back on the audio's timeline.

    Recognising a few minutes at a time bounds memory on long videos (faster-whisper builds
    the whole log-mel spectrogram at once: about 0.5 GB per 10 minutes), to ``workers``
    windows in flight. Silent windows are skipped: Whisper invents words ("You") on digital
    silence. The language of an English-only model is English; otherwise it is detected on
    the first window with sound and kept for the following ones.
    """

    backend: ClassVar[str]
    model: str
    beam_size: int = DEFAULT_BEAM_SIZE
    threads: int = 0
    window_s: float = WINDOW_S
    device: str = CPU
    workers: int = 1

    def recognise(self, audio: np.ndarray, language: str | None) -> tuple[list[Word], str]:
        """Words (times from the start of ``audio``) and language of one window."""
        raise NotImplementedError

    def known_language(self) -> str | None:
        """The language the model always reports (``"en"`` for ``.en`` models), else None."""
        raise NotImplementedError

    def transcribe(
        self, audio: np.ndarray, language: str | None = None, progress: Progress | None = None
    ) -> Transcript:
        """Transcribe ``audio`` (16 kHz mono float32); ``progress`` gets the seconds done
        (silent windows count as done at once) each time a window is done."""
        window = window_length(audio.size / SAMPLE_RATE, self.workers, self.window_s)
        bounds = [b for b in window_bounds(audio, window) if not is_silent(audio[b[0] : b[1]])]
        total = audio.size / SAMPLE_RATE
        done = total - sum(hi - lo for lo, hi in bounds) / SAMPLE_RATE
        report = progress or (lambda done, total: None)
        report(done, total)
        language = language or self.known_language()
        found: dict[tuple[int, int], list[Word]] = {}
        if language is None and bounds:  # detect it on the first window, alone
            first = bounds.pop(0)
            found[first], language = self._recognise_at(audio, first, None)
            done += (first[1] - first[0]) / SAMPLE_RATE
            report(done, total)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self._recognise_at, audio, b, language): b for b in bounds}
            for future in as_completed(futures):
                lo, hi = futures[future]
                found[lo, hi] = future.result()[0]
                done += (hi - lo) / SAMPLE_RATE
                report(done, total)
        words = [word for bounds in sorted(found) for word in found[bounds]]
        return build_transcript(words, language or "und", audio)

    def _recognise_at(
        self, audio: np.ndarray, bounds: tuple[int, int], language: str | None
    ) -> tuple[list[Word], str]:
        """Recognise ``audio[lo:hi]`` and move its words onto the timeline of ``audio``."""
        lo, hi = bounds
        found, detected = self.recognise(audio[lo:hi], language)
        offset = lo / SAMPLE_RATE
        shifted = [Word(w.start + offset, w.end + offset, w.text, w.probability) for w in found]
        return shifted, detected


def resolve_device(device: str | None = None) -> str:
    """The device: ``device``, else ``$KLIPPERS_ASR_DEVICE``, else ``"cpu"``."""
    name = device or os.environ.get(DEVICE_ENV) or CPU
    if name not in DEVICES:
        raise ConfigurationError(f"unknown ASR device {name!r}; choose one of {DEVICES}")
    return name


def resolve_workers(workers: int | None = None, device: str = CPU, threads: int = 0) -> int:
    """Windows recognised at once: ``workers``, else ``$KLIPPERS_ASR_WORKERS``, else a default.

    The default on CPU gives each worker :data:`THREADS_PER_WORKER` of the ``threads`` (0:
    every core); on a GPU it is 1 (several workers there are unmeasured).
    """
    raw = workers if workers is not None else os.environ.get(WORKERS_ENV) or 0
    try:
        count = int(raw)
    except ValueError:
        raise ConfigurationError(f"ASR workers must be a whole number, not {raw!r}") from None
    if count < 0:
        raise ConfigurationError(f"ASR workers must be 0 (automatic) or more, not {count}")
    if count:
        return count
    if device != CPU:
        return 1
    return max(1, (threads or cpu_cores()) // THREADS_PER_WORKER)


def _missing_backend(backend: str, exc: ImportError) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"the {backend} backend is not installed ({exc.name} missing): "
        "pip install 'klippers[asr]' (see README for whisper-timestamped)"
    )


@dataclass
class FasterWhisperTranscriber(_WindowedTranscriber):
    """faster-whisper (CTranslate2) backend: int8 on CPU, float16 on CUDA.

    One model serves every window: CTranslate2 runs ``workers`` of them in parallel, with
    the CPU threads split evenly between them.
    """

    backend: ClassVar[str] = FASTER_WHISPER

    def __post_init__(self) -> None:
        try:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]
        except ImportError as exc:
            raise _missing_backend(self.backend, exc) from exc
        threads = max(1, (self.threads or cpu_cores()) // self.workers)
        try:
            self._model = WhisperModel(
                self.model,
                device=self.device,
                compute_type=COMPUTE_TYPES[self.device],
                cpu_threads=threads,
                num_workers=self.workers,
            )
        except Exception as exc:
            raise ModelLoadError(f"faster-whisper cannot load model {self.model!r}: {exc}") from exc

    def known_language(self) -> str | None:
        """``"en"`` for an English-only model."""
        return None if self._model.model.is_multilingual else "en"

    def recognise(self, audio: np.ndarray, language: str | None) -> tuple[list[Word], str]:
        """Words and language of one window, long silences left out by silero VAD."""
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=True,  # silero, default options: skips silences over 2 s
        )
        words = [
            Word(w.start, w.end, w.word, w.probability)
            for segment in segments
            for w in segment.words or ()
        ]
        return words, str(info.language)


def _alignment_dump(mask: Any) -> bytes:
    """Encode a boolean (layers, heads) tensor the way ``Whisper.set_alignment_heads`` reads it."""
    raw = mask.numpy().astype(bool).tobytes()
    return base64.b85encode(gzip.compress(raw))


def load_openai_whisper(model: str, device: str = CPU) -> Any:
    """Load an openai-whisper model by name, or from a local ``.pt`` checkpoint, on ``device``.

    A checkpoint may carry an ``alignment_heads`` boolean mask (the cross-attention heads
    that follow the speech); it is applied so word timing uses the right heads.
    """
    import torch
    import whisper  # type: ignore[import-untyped]
    import whisper_timestamped  # type: ignore[import-untyped]

    if not Path(model).is_file():
        return whisper_timestamped.load_model(model, device=device)
    checkpoint = torch.load(model, map_location="cpu", weights_only=True)
    net = whisper.model.Whisper(whisper.model.ModelDimensions(**checkpoint["dims"]))
    net.load_state_dict(checkpoint["model_state_dict"])
    heads = checkpoint.get("alignment_heads")
    if heads is not None:
        net.set_alignment_heads(_alignment_dump(heads))
    return net.to(device).eval()


@dataclass
class WhisperTimestampedTranscriber(_WindowedTranscriber):
    """whisper-timestamped backend (openai-whisper, DTW word alignment).

    float32 on CPU, float16 on CUDA; one window at a time (the model is not thread-safe).
    """

    backend: ClassVar[str] = WHISPER_TIMESTAMPED

    def __post_init__(self) -> None:
        try:
            import torch
            import whisper_timestamped
        except ImportError as exc:
            raise _missing_backend(self.backend, exc) from exc
        if self.threads:
            torch.set_num_threads(self.threads)
        self._transcribe = whisper_timestamped.transcribe_timestamped
        try:
            self._model = load_openai_whisper(self.model, self.device)
        except Exception as exc:
            raise ModelLoadError(
                f"whisper-timestamped cannot load model {self.model!r}: {exc}"
            ) from exc

    def known_language(self) -> str | None:
        """``"en"`` for an English-only model."""
        return None if self._model.is_multilingual else "en"

    def recognise(self, audio: np.ndarray, language: str | None) -> tuple[list[Word], str]:
        """Words and language of one window."""
        beam: dict[str, Any] = {}
        if self.beam_size > 1:
            beam = {"beam_size": self.beam_size, "best_of": self.beam_size}
        with warnings.catch_warnings():
            # openai-whisper's tokenizer leaves its vocabulary file open on first use.
            warnings.simplefilter("ignore", ResourceWarning)
            result = self._transcribe(
                self._model,
                audio,
                language=language,
                vad=False,  # True fetches Silero VAD through torch.hub
                fp16=self.device == CUDA,
                verbose=None,
                temperature=_FALLBACK_TEMPERATURES,
                **beam,
            )
        words = [
            Word(w["start"], w["end"], w["text"], w.get("confidence", 1.0))
            for segment in result["segments"]
            for w in segment.get("words", ())
        ]
        return words, str(result.get("language") or language or "und")


def resolve_backend(backend: str | None = None) -> str:
    """The backend name: ``backend``, else ``$KLIPPERS_ASR_BACKEND``, else the default."""
    name = backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if name not in BACKENDS:
        raise UnknownBackendError(f"unknown ASR backend {name!r}; choose one of {BACKENDS}")
    return name


def resolve_model(model: str | None = None) -> str:
    """The model name or path: ``model``, else ``$KLIPPERS_ASR_MODEL``, else the default."""
    return model or os.environ.get(ENV_ASR_MODEL) or DEFAULT_ASR_MODEL


def load_transcriber(
    backend: str | None = None,
    model: str | None = None,
    *,
    beam_size: int = DEFAULT_BEAM_SIZE,
    threads: int = 0,
    window_s: float = WINDOW_S,
    device: str | None = None,
    workers: int | None = None,
) -> Transcriber:
    """Load a model once, for transcribing one or more audio arrays.

    Parameters
    ----------
    backend : ``"faster-whisper"`` or ``"whisper-timestamped"``; None reads the environment.
    model : model name or local path; None reads ``$KLIPPERS_ASR_MODEL``.
    beam_size : beam search width (1 is greedy decoding).
    threads : CPU threads in all; 0 uses every core this process may run on
        (whisper-timestamped sets torch's process-wide thread count).
    window_s : at most this many seconds of audio are recognised at a time.
    device : ``"cpu"`` or ``"cuda"``; None reads ``$KLIPPERS_ASR_DEVICE`` (default cpu).
    workers : windows recognised concurrently (faster-whisper only); None reads
        ``$KLIPPERS_ASR_WORKERS``, 0 or unset picks one per :data:`THREADS_PER_WORKER` cores.

    Raises
    ------
    UnknownBackendError, ConfigurationError, BackendUnavailableError, ModelLoadError
    """
    name, model_ref = resolve_backend(backend), resolve_model(model)
    where = resolve_device(device)
    if name == FASTER_WHISPER:
        count = resolve_workers(workers, where, threads)
        logger.info("loading %s model %s on %s, %d worker(s)", name, model_ref, where, count)
        return FasterWhisperTranscriber(model_ref, beam_size, threads, window_s, where, count)
    logger.info("loading %s model %s on %s", name, model_ref, where)
    return WhisperTimestampedTranscriber(model_ref, beam_size, threads, window_s, where)


def transcribe_file(
    path: str | Path,
    *,
    backend: str | None = None,
    model: str | None = None,
    language: str | None = None,
    device: str | None = None,
    workers: int | None = None,
) -> Transcript:
    """Decode the audio of a media file and transcribe it with word timestamps.

    ``device`` and ``workers`` are those of :func:`load_transcriber`.

    Raises
    ------
    AudioNotFoundError, UnreadableAudioError, NoAudioStreamError
        The media cannot be used (checked before the model is loaded).
    UnknownBackendError, ConfigurationError, BackendUnavailableError, ModelLoadError
        The backend, device, worker count or model cannot be used.
    """
    audio = decode_audio(path)
    transcriber = load_transcriber(backend, model, device=device, workers=workers)
    logger.info("transcribing %.1f s of audio from %s", audio.size / SAMPLE_RATE, path)
    return transcriber.transcribe(audio, language=language)
