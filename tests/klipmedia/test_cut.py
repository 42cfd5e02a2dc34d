"""Frame-accurate cuts: first frame, length and audio sync checked on real encoded media."""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from klipmedia.cut import CutRangeError, CutSettings, cut_segment
from klipmedia.errors import NoVideoStreamError, UnreadableMediaError

FPS = 30
GOP = 60
SECONDS = 12
WIDTH, HEIGHT = 320, 192
BITS = 10
RATE = 48_000
BEEP = 0.1  # seconds of 1 kHz tone at the start of every second
FRAME = 1 / FPS
AAC_FRAME = 1024
CLOSED_GOPS = f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=3:b-adapt=0"


def _index_image(index: int) -> npt.NDArray[np.uint8]:
    """A grey image whose 10 vertical bars spell ``index`` in binary (bright = 1).

    Mild noise makes every frame differ from its re-encoding (flat bars survive x264
    bit for bit), so copied frames can be told from re-encoded ones.
    """
    bits = [(index >> (BITS - 1 - b)) & 1 for b in range(BITS)]
    row = np.repeat(np.array([215 if bit else 40 for bit in bits], np.int16), WIDTH // BITS)
    noise = np.random.default_rng(index).integers(-12, 13, (HEIGHT, WIDTH), dtype=np.int16)
    image = np.clip(np.tile(row, (HEIGHT, 1)) + noise, 0, 255).astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2)


def _read_index(frame: av.VideoFrame) -> int:
    luma = frame.to_ndarray(format="gray")
    bars = luma[HEIGHT // 4 : 3 * HEIGHT // 4].reshape(HEIGHT // 2, BITS, -1).mean(axis=(0, 2))
    return int("".join("1" if v > 128 else "0" for v in bars), 2)


def _make_source(
    path: Path, x264_params: str, *, audio_codec: str = "aac", audio_start: float = 0.0
) -> Path:
    """Frames showing their index; mono audio (from ``audio_start`` s) beeping every second."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20", "x264-params": x264_params}
        audio = out.add_stream(audio_codec, rate=RATE, layout="mono")
        for index in range(SECONDS * FPS):
            frame = av.VideoFrame.from_ndarray(_index_image(index), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        offset = round(audio_start * RATE)
        t = np.arange(offset, SECONDS * RATE) / RATE
        tone = np.where(t % 1.0 < BEEP, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
        chunk_size = audio.codec_context.frame_size or AAC_FRAME
        for first in range(0, tone.size, chunk_size):
            chunk = tone[None, first : first + chunk_size].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.time_base = RATE, Fraction(1, RATE)
            frame.pts = offset + first
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s, 30 fps, closed GOPs of 60 frames with B-frames, AAC beeps on every second."""
    folder = tmp_path_factory.mktemp("cut")
    return _make_source(folder / "source.mp4", CLOSED_GOPS)


@pytest.fixture(scope="module")
def open_gop_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cut-open")
    return _make_source(folder / "open.mp4", f"{CLOSED_GOPS}:open-gop=1")


@pytest.fixture(scope="module")
def no_b_frames_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``source`` without B-frames: keyframes' decode and display times coincide."""
    folder = tmp_path_factory.mktemp("cut-no-b")
    return _make_source(
        folder / "source.mp4", f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0"
    )


def _frame_indices(path: Path) -> tuple[list[int], list[float]]:
    with av.open(str(path)) as container:
        frames = [(f.time, _read_index(f)) for f in container.decode(video=0)]
    return [i for _, i in frames], [float(t) for t, _ in frames]


@cache
def _source_pictures(path: Path) -> tuple[bytes, ...]:
    """The raw YUV bytes of every decoded source frame, in display order."""
    with av.open(str(path)) as container:
        return tuple(f.to_ndarray().tobytes() for f in container.decode(video=0))


def _untouched_frames(source: Path, cut: Path) -> int:
    """How many frames of ``cut`` decode bit for bit to the source frame they show."""
    pictures = _source_pictures(source)
    with av.open(str(cut)) as container:
        return sum(
            f.to_ndarray().tobytes() == pictures[_read_index(f)] for f in container.decode(video=0)
        )


def _decoded_audio(path: Path) -> npt.NDArray[np.float32]:
    """The first channel of the decoded audio, as a player gets it (edit list applied)."""
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.sample_rate == RATE
        chunks = [f.to_ndarray()[0] for f in container.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float32)


def _beep_onsets(samples: npt.NDArray[np.float32]) -> list[float]:
    """Times (in the cut) where a beep starts."""
    loud = np.convolve(np.abs(samples) > 0.2, np.ones(48), mode="same") > 0
    rising = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    return [float(i / RATE) for i in rising]


def _check_beeps(
    samples: npt.NDArray[np.float32], first: int, tolerance: float = FRAME, shift: float = 0.0
) -> list[float]:
    """Every beep inside the cut is heard within ``tolerance`` of its time, and nothing else.

    ``shift``: how much later than the picture the source's audio track was placed.
    """
    beeps = [s + shift - first * FRAME for s in range(SECONDS + 1)]
    length = samples.size / RATE
    onsets = _beep_onsets(samples)
    for onset in onsets:
        assert min(abs(onset - b) for b in beeps) < tolerance, (onset, beeps)
    for beep in beeps:
        if 0 < beep < length - 2 * FRAME:
            assert min((abs(o - beep) for o in onsets), default=1.0) < tolerance, (beep, onsets)
    return onsets


def _check_cut(path: Path, start: float, end: float, audio_shift: float = 0.0) -> None:
    """The cut holds exactly the source frames [start, end) and beeps where they belong."""
    indices, times = _frame_indices(path)
    first = round(start * FPS)
    assert indices[0] == first
    assert indices == list(range(first, first + len(indices)))
    assert times == pytest.approx([i * FRAME for i in range(len(indices))], abs=FRAME / 2)
    video_seconds = len(indices) * FRAME
    assert abs(video_seconds - (end - start)) <= FRAME
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert audio.duration is not None
        audio_seconds = float(audio.duration * audio.time_base)
    assert abs(audio_seconds - video_seconds) <= FRAME
    samples = _decoded_audio(path)
    assert abs(samples.size / RATE - video_seconds) <= FRAME
    _check_beeps(samples, first, shift=audio_shift)


@pytest.mark.parametrize(
    ("name", "start", "end", "head"),
    [
        ("source", 75 / FPS, 225 / FPS, 120 - 75),  # head and tail partial GOPs
        ("source", 2.0, 6.0, 0),  # starts and ends on keyframes: pure copy
        ("source", 4.3, 5.1, 24),  # inside one GOP: all re-encoded
        ("source", 9.5, 12.0, 15),  # up to the end of the media: head, then the last GOP
        ("source", 0.0, 3.0, 0),  # from the first frame: audio pre-roll is the priming frame
        ("source", 61 / FPS, 4.0, 59),  # just after a keyframe: the GOP read for the pre-roll
        ("no_b_frames_source", 2.5, 7.5, 45),  # every frame ends a mini-GOP: tail all copied
    ],
)
def test_smart_cut_is_frame_accurate(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, start: float, end: float, head: int
) -> None:
    """Only the head's frames and the tail's last incomplete mini-GOP are re-encoded.

    A mini-GOP is a run of frames decoded and shown as a block (a P-frame and the
    B-frames before it); the sources have at most 3 B-frames in a row, none at all for
    ``no_b_frames_source``.
    """
    source = request.getfixturevalue(name)
    result = cut_segment(source, start, end, tmp_path / "cut.mp4")
    assert result.method == "smart"
    assert result.audio == "copy"
    tail = result.reencoded_frames - head
    assert 0 <= tail <= (0 if name == "no_b_frames_source" else 3)
    assert result.start == pytest.approx(round(start * FPS) / FPS)
    _check_cut(tmp_path / "cut.mp4", start, end)
    # what was not re-encoded was copied: it decodes exactly as in the source, the rest not
    copied = result.frames - result.reencoded_frames
    assert _untouched_frames(source, tmp_path / "cut.mp4") == copied


def test_reencode_cut_is_frame_accurate(source: Path, tmp_path: Path) -> None:
    result = cut_segment(source, 2.5, 7.5, tmp_path / "cut.mp4", settings=CutSettings(smart=False))
    assert result.method == "reencode"
    assert result.reencoded_frames == result.frames == 150
    _check_cut(tmp_path / "cut.mp4", 2.5, 7.5)


def test_open_gop_source_falls_back_to_reencoding(open_gop_source: Path, tmp_path: Path) -> None:
    result = cut_segment(open_gop_source, 2.5, 7.5, tmp_path / "cut.mp4")
    assert result.method == "reencode"
    _check_cut(tmp_path / "cut.mp4", 2.5, 7.5)


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("source", 2.5, 7.5),
        ("source", 0.0, 3.0),
        ("source", 4.3, 5.1),
        ("no_b_frames_source", 2.0, 4.0),  # the pre-roll lies before the seek's keyframe
        ("no_b_frames_source", 4.01, 6.5),
    ],
)
def test_aac_audio_is_copied_packet_for_packet(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, start: float, end: float
) -> None:
    """The cut's audio packets are the source's, from one frame before the start to the end.

    Source packet k (0-based, the encoder's priming frame first) holds samples from
    ``(k - 1) * 1024``; the sample under the first frame must fall in the packet after the
    first copied one, and the last copied packet must hold the sample before the end.
    """
    source = request.getfixturevalue(name)
    result = cut_segment(source, start, end, tmp_path / "cut.mp4")
    assert result.audio == "copy"
    first_sample = round(result.start * RATE)
    end_sample = round(result.end * RATE)
    first = first_sample // AAC_FRAME
    last = (end_sample - 1) // AAC_FRAME + 1
    assert _audio_packets(tmp_path / "cut.mp4") == _audio_packets(source)[first : last + 1]
    with av.open(str(tmp_path / "cut.mp4")) as container:
        audio = container.streams.audio[0]
        assert audio.duration is not None
        assert audio.duration * audio.time_base == pytest.approx(result.duration, abs=1 / RATE)
    samples = _decoded_audio(tmp_path / "cut.mp4")
    # the edit list drops the pre-roll to the sample; FFmpeg keeps the last frame whole
    assert 0 <= samples.size - (end_sample - first_sample) < AAC_FRAME
    _check_beeps(samples, round(start * FPS), tolerance=0.001)


@pytest.mark.parametrize("copy_audio", [True, False])
def test_audio_stays_in_sync_across_the_joins(
    source: Path, tmp_path: Path, copy_audio: bool
) -> None:
    """Each beep is heard when the frame of its second is shown, in every piece of the cut.

    [75, 211) re-encodes frames 75-119 (beep 3 at frame 90), copies 120-179 (beeps 4, 5)
    and the tail GOP's whole mini-GOPs 180-208 (beep 6), and re-encodes the B-frames
    209-210 (beep 7) before the P-frame 211 that ends their mini-GOP. The frame times
    are the decoded ones.
    """
    result = cut_segment(
        source,
        75 / FPS,
        211 / FPS,
        tmp_path / "cut.mp4",
        settings=CutSettings(copy_audio=copy_audio),
    )
    assert result.reencoded_frames == 45 + 2
    assert result.audio == ("copy" if copy_audio else "reencode")
    indices, times = _frame_indices(tmp_path / "cut.mp4")
    assert indices == list(range(75, 211))
    shown = dict(zip(indices, times, strict=True))
    onsets = _beep_onsets(_decoded_audio(tmp_path / "cut.mp4"))
    beep_frames = [s * FPS for s in range(3, 8)]
    assert len(onsets) == len(beep_frames)
    for onset, index in zip(onsets, beep_frames, strict=True):
        assert abs(onset - shown[index]) < FRAME / 4, (index, onset, shown[index])


def test_non_aac_audio_is_reencoded_to_aac(tmp_path: Path) -> None:
    source = _make_source(tmp_path / "opus.mp4", CLOSED_GOPS, audio_codec="libopus")
    result = cut_segment(source, 2.5, 7.5, tmp_path / "cut.mp4")
    assert (result.method, result.audio) == ("smart", "reencode")
    _check_cut(tmp_path / "cut.mp4", 2.5, 7.5)


def test_audio_starting_after_the_cut_is_reencoded_with_silence(tmp_path: Path) -> None:
    """AAC that cannot supply the pre-roll falls back to re-encoding, padded with silence."""
    source = _make_source(tmp_path / "late.mp4", CLOSED_GOPS, audio_start=1.0)
    result = cut_segment(source, 0.5, 3.0, tmp_path / "cut.mp4")
    assert (result.method, result.audio) == ("smart", "reencode")
    _check_cut(tmp_path / "cut.mp4", 0.5, 3.0)
    samples = _decoded_audio(tmp_path / "cut.mp4")
    assert not np.any(np.abs(samples[: round(0.45 * RATE)]) > 0.01)


def test_smart_cut_output_lists_every_parameter_set(source: Path, tmp_path: Path) -> None:
    """Source SPS plus one SPS per re-encoded piece, with distinct ids, all in avcC."""
    cut_segment(source, 2.5, 7.5, tmp_path / "cut.mp4")
    with av.open(str(tmp_path / "cut.mp4")) as container:
        avcc = container.streams.video[0].codec_context.extradata
    assert avcc is not None
    assert avcc[0] == 1
    assert avcc[5] & 0x1F == 3


@pytest.mark.parametrize(
    ("start", "end"), [(5.0, 5.0), (6.0, 4.0), (-1.0, 2.0), (11.0, 13.0), (12.5, 14.0)]
)
def test_range_outside_the_media_is_refused(
    source: Path, tmp_path: Path, start: float, end: float
) -> None:
    with pytest.raises(CutRangeError, match="cannot cut"):
        cut_segment(source, start, end, tmp_path / "cut.mp4")
    assert not (tmp_path / "cut.mp4").exists()
    assert list(tmp_path.iterdir()) == []


def test_audio_only_file_has_no_video(tmp_path: Path) -> None:
    path = tmp_path / "audio.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, RATE), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = RATE, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(NoVideoStreamError):
        cut_segment(path, 0.0, 0.5, tmp_path / "cut.mp4")


def test_garbage_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(UnreadableMediaError):
        cut_segment(path, 0.0, 1.0, tmp_path / "cut.mp4")
