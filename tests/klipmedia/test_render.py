"""End-to-end renders on real encoded media, asserting on the decoded output."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import klipmedia
from klipmedia import Captions, CropPath, EncodeSettings
from klipmedia.crop import place_window, window_size
from klipmedia.errors import UnreadableMediaError
from tests.support import media

FAST = EncodeSettings(preset="ultrafast", crf=18)
W, H = 640, 360
FPS = Fraction(30)


def render(src: Path, out: Path, **kwargs: object) -> klipmedia.RenderResult:
    kwargs.setdefault("encode", FAST)
    return klipmedia.render_short(src, out, **kwargs)  # type: ignore[arg-type]


def measured_window(row: np.ndarray) -> tuple[float, float]:
    """Source x of the first and last column of an output row from a ramp source."""
    left, right = row[2:10].mean(), row[-10:-2].mean()
    return float(media.x_of_luma(left, W)), float(media.x_of_luma(right, W))


@pytest.fixture(scope="module")
def stacked(
    ramp_clip: Path, stepped_background: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[klipmedia.RenderResult, list[float], list[np.ndarray]]:
    out = tmp_path_factory.mktemp("stacked") / "short.mp4"
    result = render(ramp_clip, out, background=stepped_background)
    times, frames = media.decode_gray(out)
    return result, times, frames


def test_stacked_output_size_duration_and_frame_count(stacked: tuple) -> None:
    result, _times, frames = stacked
    info = klipmedia.probe(result.path)
    assert (info.width, info.height) == (1080, 1920)
    assert frames[0].shape == (1920, 1080)
    assert len(frames) == 60 == result.frames
    assert info.duration == pytest.approx(2.0, abs=1 / 30)
    assert info.fps == FPS
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"


def test_output_is_faststart_yuv420p(stacked: tuple) -> None:
    result, _, _ = stacked
    data = result.path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    with av.open(str(result.path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_top_half_is_the_centred_crop_window(stacked: tuple) -> None:
    _, _, frames = stacked
    expected = place_window(W, H, window_size(W, H, Fraction(1080, 960)), 0.5)
    left, right = measured_window(frames[30][480])
    assert left == pytest.approx(expected.x, abs=6)
    assert right == pytest.approx(expected.x + expected.width - 1, abs=6)


def test_bottom_half_is_the_looped_background(stacked: tuple) -> None:
    _, _, frames = stacked
    levels = [float(f[1440, 540]) for f in frames]
    expected = [40 + 18 * (i % 10) for i in range(len(frames))]
    assert np.abs(np.array(levels) - expected).max() <= 4


def test_background_never_contributes_audio(
    dark_clip: Path, stepped_background: Path, tmp_path: Path
) -> None:
    out = render(dark_clip, tmp_path / "s.mp4", background=stepped_background).path
    _, samples = media.decode_audio(out)
    assert np.abs(samples).max() < 0.01


def test_moving_crop_path_is_followed(ramp_clip: Path, tmp_path: Path) -> None:
    path = CropPath((0.0, 2.0), (0.2, 0.8))
    out = render(ramp_clip, tmp_path / "m.mp4", layout="full", crop_path=path).path
    times, frames = media.decode_gray(out)
    size = window_size(W, H, Fraction(9, 16))
    for t, frame in zip(times[::10], frames[::10], strict=True):
        expected = place_window(W, H, size, path.center_at(t))
        left, right = measured_window(frame[960])
        assert left == pytest.approx(expected.x, abs=6), t
        assert right == pytest.approx(expected.x + expected.width - 1, abs=6), t
    assert measured_window(frames[-1][960])[0] > measured_window(frames[0][960])[0] + 200


def test_full_layout_fills_the_frame_with_a_9_16_crop(ramp_clip: Path, tmp_path: Path) -> None:
    out = render(ramp_clip, tmp_path / "f.mp4", layout="full").path
    _, frames = media.decode_gray(out)
    expected = place_window(W, H, window_size(W, H, Fraction(9, 16)), 0.5)
    for row in (100, 960, 1800):
        left, right = measured_window(frames[5][row])
        assert left == pytest.approx(expected.x, abs=6)
        assert right == pytest.approx(expected.x + expected.width - 1, abs=6)


def test_blurred_layout_shows_the_whole_frame_over_a_dim_copy(
    ramp_clip: Path, tmp_path: Path
) -> None:
    out = render(ramp_clip, tmp_path / "b.mp4", layout="blurred").path
    _, frames = media.decode_gray(out)
    frame = frames[5].astype(float)
    left, right = measured_window(frame[960])
    assert left == pytest.approx(0, abs=6)
    assert right == pytest.approx(W - 1, abs=6)
    top_centre = frame[100, 540]
    assert top_centre == pytest.approx(16 + (media.luma_of_x(W / 2, W) - 16) * 0.6, abs=8)
    assert np.ptp(frame[100, 400:680]) < np.ptp(frame[960, 400:680])


def test_stacked_without_background_fills_with_blurred_source(
    ramp_clip: Path, tmp_path: Path
) -> None:
    out = render(ramp_clip, tmp_path / "n.mp4").path
    _, frames = media.decode_gray(out)
    bottom = frames[5][1440].astype(float)
    assert 16 < bottom.mean() < 200
    assert bottom[-20:].mean() > bottom[:20].mean()


def caption_pixels(frame: np.ndarray) -> int:
    return int((frame > 200).sum())


def test_srt_captions_show_exactly_during_their_cues(dark_clip: Path, tmp_path: Path) -> None:
    srt = (
        "1\n00:00:00,500 --> 00:00:01,000\nFirst cue\n\n"
        "2\n00:00:02,000 --> 00:00:02,500\nSecond cue\n"
    )
    out = render(dark_clip, tmp_path / "c.mp4", layout="full", captions=srt).path
    times, frames = media.decode_gray(out)
    for t, frame in zip(times, frames, strict=True):
        shown = 0.5 <= t + 1e-6 < 1.0 or 2.0 <= t + 1e-6 < 2.5
        assert (caption_pixels(frame) > 500) == shown, f"t={t:.3f}"


def test_captions_stay_in_the_safe_area(dark_clip: Path, tmp_path: Path) -> None:
    long_text = " ".join(["extraordinarily"] * 30)
    srt = f"1\n00:00:00,000 --> 00:00:03,000\n{long_text}\n"
    for position in (0.0, 1.0):
        style = klipmedia.CaptionStyle(position=position)
        out = render(
            dark_clip, tmp_path / f"safe{position}.mp4", layout="full", captions=srt, style=style
        ).path
        _, frames = media.decode_gray(out)
        for frame in frames[::15]:
            rows = np.flatnonzero((frame > 60).any(axis=1))
            cols = np.flatnonzero((frame > 60).any(axis=0))
            assert rows.size, "caption missing"
            assert rows.min() >= 0.10 * 1920
            assert rows.max() <= 0.85 * 1920
            assert cols.min() > 0
            assert cols.max() < 1079


def test_word_captions_highlight_the_spoken_word(dark_clip: Path, tmp_path: Path) -> None:
    words = [
        klipmedia.TimedWord(0.2 + 0.5 * i, 0.6 + 0.5 * i, w)
        for i, w in enumerate(["one", "two", "six"])
    ]
    caps = Captions.from_words(words)
    out = render(dark_clip, tmp_path / "w.mp4", layout="full", captions=caps).path
    centres = []
    for word in words:
        rgb = media.decode_rgb_at(out, word.start + 0.2).astype(int)
        accent = (rgb[:, :, 0] > 180) & (rgb[:, :, 1] > 150) & (rgb[:, :, 2] < 90)
        assert accent.sum() > 300, word.text
        centres.append(np.flatnonzero(accent.any(axis=0)).mean())
    assert centres[0] < centres[1] < centres[2]
    before = media.decode_rgb_at(out, 0.1)
    assert (before > 200).sum() == 0


def test_audio_stays_in_sync_with_video(tmp_path: Path) -> None:
    beeps = [0.5, 1.3, 2.1]
    src = media.write_video(
        tmp_path / "sync.mp4",
        media.flashes(W, H, FPS, beeps),
        width=W,
        height=H,
        duration=3.0,
        audio=media.tone(3.0, beeps=beeps),
    )
    result = render(src, tmp_path / "o.mp4", layout="full")
    assert result.audio == "copy"
    out = result.path
    times, frames = media.decode_gray(out)
    flash_times = [t for t, f in zip(times, frames, strict=True) if f[960, 540] > 128]
    start, samples = media.decode_audio(out)
    heard = media.onsets(samples, start)
    assert len(flash_times) == len(heard) == 3
    for seen, beep in zip(flash_times, heard, strict=True):
        assert abs(seen - beep) <= 1 / 30


def test_audio_starting_late_keeps_its_offset(tmp_path: Path) -> None:
    beeps = [0.3, 1.1]
    src = media.write_video(
        tmp_path / "late.mp4",
        media.flashes(W, H, FPS, [0.5, 1.3]),
        width=W,
        height=H,
        duration=2.0,
        audio=media.tone(1.8, beeps=beeps),
        audio_delay=0.2,
    )
    result = render(src, tmp_path / "o.mp4", layout="full")
    assert result.audio == "reencode"  # no AAC frame before the first video frame to copy
    out = result.path
    times, frames = media.decode_gray(out)
    flash_times = [t for t, f in zip(times, frames, strict=True) if f[960, 540] > 128]
    start, samples = media.decode_audio(out)
    heard = media.onsets(samples, start)
    assert flash_times == pytest.approx([0.5, 1.3], abs=1 / 30)
    assert heard == pytest.approx(flash_times, abs=1 / 30)
    assert len(samples) / media.RATE == pytest.approx(2.0, abs=1 / 30)


def _audio_packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(p.pts or 0, bytes(p)) for p in container.demux(stream) if p.size]


def test_aac_audio_is_copied_packet_for_packet(tmp_path: Path) -> None:
    src = media.write_video(
        tmp_path / "talk.mp4",
        media.ramp(W, H),
        width=W,
        height=H,
        duration=2.0,
        audio=media.tone(2.0, beeps=[0.4, 1.2]),
    )
    result = render(src, tmp_path / "o.mp4")
    assert result.audio == "copy"
    source, copied = _audio_packets(src), _audio_packets(result.path)
    assert copied[0][0] == -1024  # one frame of decoder pre-roll, dropped by the edit list
    assert copied == source[: len(copied)]
    _, samples = media.decode_audio(result.path)
    assert len(samples) / media.RATE == pytest.approx(result.duration, abs=1024 / media.RATE)


def test_surround_audio_is_mixed_down_to_stereo(tmp_path: Path) -> None:
    stereo = media.tone(1.0)
    src = media.write_video(
        tmp_path / "surround.mp4",
        media.ramp(W, H),
        width=W,
        height=H,
        duration=1.0,
        audio=np.concatenate([stereo, stereo, stereo]),
    )
    result = render(src, tmp_path / "o.mp4")
    assert result.audio == "reencode"
    with av.open(str(result.path)) as container:
        assert container.streams.audio[0].codec_context.channels == 2


def test_audio_ending_before_the_video_is_padded_with_silence(tmp_path: Path) -> None:
    src = media.write_video(
        tmp_path / "short_audio.mp4",
        media.ramp(W, H),
        width=W,
        height=H,
        duration=2.0,
        audio=media.tone(1.0),
    )
    result = render(src, tmp_path / "o.mp4")
    assert result.audio == "reencode"
    _, samples = media.decode_audio(result.path)
    assert len(samples) / media.RATE == pytest.approx(2.0, abs=1 / 30)
    assert np.abs(samples[: media.RATE // 2]).max() > 0.1
    assert np.abs(samples[-media.RATE // 2 :]).max() < 0.01


def _x264_settings(path: Path) -> dict[str, str]:
    """The options x264 wrote into the stream (its SEI user data)."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    text = data[start : data.index(b"\x00", start)].decode("ascii", "replace")
    options = text.split(" - options: ", 1)[1].split()
    return dict(option.split("=", 1) for option in options if "=" in option)


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_x264_thread_count_is_honoured(ramp_clip: Path, tmp_path: Path, threads: int) -> None:
    settings = EncodeSettings(preset="ultrafast", threads=threads)
    out = render(ramp_clip, tmp_path / "o.mp4", encode=settings).path
    assert _x264_settings(out)["threads"] == str(threads)


def test_bad_encode_settings_are_refused() -> None:
    with pytest.raises(klipmedia.KlipmediaError, match="threads"):
        EncodeSettings(threads=-1)
    with pytest.raises(klipmedia.KlipmediaError, match="preset"):
        EncodeSettings(preset="turbo")
    with pytest.raises(klipmedia.KlipmediaError, match="crf"):
        EncodeSettings(crf=60)


def test_rotated_source_is_rendered_upright(tmp_path: Path) -> None:
    src = media.write_video(
        tmp_path / "r.mp4", media.ramp(W, H), width=W, height=H, duration=0.5, rotation=90
    )
    out = render(src, tmp_path / "o.mp4", layout="full").path
    _, frames = media.decode_gray(out)
    column = frames[3][:, 540].astype(float)
    # Turned upright, the bright right edge of the coded picture is at the top.
    assert column[100] > column[1800] + 100


def test_odd_sized_source_renders(tmp_path: Path) -> None:
    src = media.write_video(
        tmp_path / "odd.mp4",
        media.ramp(641, 359),
        width=641,
        height=359,
        duration=0.5,
        pix_fmt="yuv444p",
    )
    result = render(src, tmp_path / "o.mp4")
    assert klipmedia.probe(result.path).width == 1080
    assert result.frames == 15


def test_variable_frame_rate_source_becomes_constant(tmp_path: Path) -> None:
    times = [0.0]
    while times[-1] < 2.0:
        times.append(times[-1] + (0.02 if len(times) % 2 else 0.06))
    src = media.write_video(
        tmp_path / "vfr.mp4",
        media.ramp(W, H),
        width=W,
        height=H,
        fps=Fraction(25),
        frame_times=times,
        audio=media.tone(2.04),
    )
    info = klipmedia.probe(src)
    out = render(src, tmp_path / "o.mp4")
    decoded_times, _ = media.decode_gray(out.path)
    assert out.fps == klipmedia.render.output_fps(info.fps)
    assert np.allclose(np.diff(decoded_times), float(1 / out.fps), atol=1e-3)
    assert out.duration == pytest.approx(info.duration, abs=float(1 / out.fps))


def test_source_without_audio_gets_a_silent_track(tmp_path: Path) -> None:
    src = media.write_video(
        tmp_path / "mute.mp4", media.ramp(W, H), width=W, height=H, duration=1.0
    )
    result = render(src, tmp_path / "o.mp4")
    assert result.audio == "silence"
    out = result.path
    info = klipmedia.probe(out)
    assert info.has_audio
    _, samples = media.decode_audio(out)
    assert np.abs(samples).max() < 0.01
    assert len(samples) / media.RATE == pytest.approx(1.0, abs=1 / 30)


def test_bad_media_raises_and_leaves_nothing_behind(tmp_path: Path) -> None:
    src = tmp_path / "bad.mp4"
    src.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 500)
    out_dir = tmp_path / "out"
    with pytest.raises(UnreadableMediaError):
        render(src, out_dir / "o.mp4")
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_failure_mid_render_keeps_previous_output(ramp_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    out.write_bytes(b"previous good output")
    with pytest.raises(klipmedia.CaptionError):
        render(
            ramp_clip,
            out,
            captions="1\n00:00:00,000 --> 00:00:01,000\nok\n\n"
            "2\n00:00:01,000 -> 00:00:02,000\nbroken\n",
        )
    assert out.read_bytes() == b"previous good output"
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


def test_captions_are_drawn_with_the_bundled_font(dark_clip: Path, tmp_path: Path) -> None:
    from PIL import ImageFont

    style = klipmedia.CaptionStyle(shadow=False)
    srt = "1\n00:00:00,000 --> 00:00:03,000\nHello world\n"
    out = render(dark_clip, tmp_path / "font.mp4", layout="full", captions=srt, style=style).path
    _, frames = media.decode_gray(out)
    cols = np.flatnonzero((frames[10] > 60).any(axis=0))
    font = ImageFont.truetype(str(klipmedia.bundled_font()), style.font_size)
    left, _, right, _ = font.getbbox("Hello world")
    # The white fill (the black outline is invisible on black) spans the bundled font's own
    # extent; DejaVu Sans Bold, a common host fallback, is about 80 px wider here.
    assert cols.max() - cols.min() + 1 == pytest.approx(right - left, abs=12)


def test_background_covers_its_panel_without_distortion_and_is_trimmed(
    ramp_clip: Path, tmp_path: Path
) -> None:
    background = media.write_video(
        tmp_path / "bg.mp4", media.ramp(320, 240), width=320, height=240, duration=3.0
    )
    out = render(ramp_clip, tmp_path / "o.mp4", background=background)
    _, frames = media.decode_gray(out.path)
    assert len(frames) == 60  # the 3 s background is cut to the 2 s segment
    expected = place_window(320, 240, window_size(320, 240, Fraction(1080, 960)), 0.5)
    row = frames[10][1440]
    left = media.x_of_luma(row[2:10].mean(), 320)
    right = media.x_of_luma(row[-10:-2].mean(), 320)
    assert left == pytest.approx(expected.x, abs=4)
    assert right == pytest.approx(expected.x + expected.width - 1, abs=4)
