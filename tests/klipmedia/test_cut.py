"""Frame-accurate cuts: first frame, length and audio sync checked on real encoded media."""

from __future__ import annotations

from fractions import Fraction
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


def _index_image(index: int) -> npt.NDArray[np.uint8]:
    """A grey image whose 10 vertical bars spell ``index`` in binary (bright = 1)."""
    bits = [(index >> (BITS - 1 - b)) & 1 for b in range(BITS)]
    row = np.repeat(np.array([215 if bit else 40 for bit in bits], np.uint8), WIDTH // BITS)
    return np.repeat(np.tile(row, (HEIGHT, 1))[:, :, None], 3, axis=2)


def _read_index(frame: av.VideoFrame) -> int:
    luma = frame.to_ndarray(format="gray")
    bars = luma[HEIGHT // 4 : 3 * HEIGHT // 4].reshape(HEIGHT // 2, BITS, -1).mean(axis=(0, 2))
    return int("".join("1" if v > 128 else "0" for v in bars), 2)


def _make_source(path: Path, x264_params: str) -> Path:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20", "x264-params": x264_params}
        audio = out.add_stream("aac", rate=RATE, layout="mono")
        for index in range(SECONDS * FPS):
            frame = av.VideoFrame.from_ndarray(_index_image(index), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        t = np.arange(SECONDS * RATE) / RATE
        tone = np.where(t % 1.0 < BEEP, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
        for first in range(0, tone.size, 1024):
            chunk = tone[None, first : first + 1024].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, first, Fraction(1, RATE)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s, 30 fps, closed GOPs of 60 frames with B-frames, beeps on every second."""
    folder = tmp_path_factory.mktemp("cut")
    return _make_source(
        folder / "source.mp4", f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=3"
    )


@pytest.fixture(scope="module")
def open_gop_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cut-open")
    return _make_source(
        folder / "open.mp4", f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=3:open-gop=1"
    )


def _frame_indices(path: Path) -> tuple[list[int], list[float]]:
    with av.open(str(path)) as container:
        frames = [(f.time, _read_index(f)) for f in container.decode(video=0)]
    return [i for _, i in frames], [float(t) for t, _ in frames]


def _beep_onsets(path: Path) -> list[float]:
    """Times (in the cut) where a beep starts."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [f.to_ndarray()[0] for f in container.decode(audio=0)]
    samples = np.abs(np.concatenate(chunks))
    loud = np.convolve(samples > 0.2, np.ones(48), mode="same") > 0
    rising = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    return [float(i / rate) for i in rising]


def _check_cut(path: Path, start: float, end: float) -> None:
    """The cut holds exactly the source frames [start, end) and beeps where they belong."""
    indices, times = _frame_indices(path)
    first = round(start * FPS)
    assert indices[0] == first
    assert indices == list(range(first, first + len(indices)))
    assert abs(times[0]) < FRAME / 2
    assert abs(len(indices) * FRAME - (end - start)) <= FRAME
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        audio_seconds = float(
            container.streams.audio[0].duration * container.streams.audio[0].time_base
        )
    assert abs(audio_seconds - len(indices) * FRAME) <= FRAME
    expected = [s - first * FRAME for s in range(SECONDS) if first * FRAME < s < end - 2 * FRAME]
    onsets = _beep_onsets(path)
    assert len(onsets) == len(expected)
    for got, want in zip(onsets, expected, strict=True):
        assert abs(got - want) < FRAME, (got, want)


@pytest.mark.parametrize(
    ("start", "end", "reencoded"),
    [
        (75 / FPS, 225 / FPS, (120 - 75) + (225 - 180)),  # head and tail partial GOPs
        (2.0, 6.0, 0),  # starts and ends on keyframes: pure copy
        (4.3, 5.1, 24),  # inside one GOP
        (9.5, 12.0, 15),  # up to the end of the media: head, then the last GOP copied
    ],
)
def test_smart_cut_is_frame_accurate(
    source: Path, tmp_path: Path, start: float, end: float, reencoded: int
) -> None:
    result = cut_segment(source, start, end, tmp_path / "cut.mp4")
    assert result.method == "smart"
    assert result.reencoded_frames == reencoded
    assert result.start == pytest.approx(round(start * FPS) / FPS)
    _check_cut(tmp_path / "cut.mp4", start, end)


def test_reencode_cut_is_frame_accurate(source: Path, tmp_path: Path) -> None:
    result = cut_segment(source, 2.5, 7.5, tmp_path / "cut.mp4", settings=CutSettings(smart=False))
    assert result.method == "reencode"
    assert result.reencoded_frames == result.frames == 150
    _check_cut(tmp_path / "cut.mp4", 2.5, 7.5)


def test_open_gop_source_falls_back_to_reencoding(open_gop_source: Path, tmp_path: Path) -> None:
    result = cut_segment(open_gop_source, 2.5, 7.5, tmp_path / "cut.mp4")
    assert result.method == "reencode"
    _check_cut(tmp_path / "cut.mp4", 2.5, 7.5)


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
