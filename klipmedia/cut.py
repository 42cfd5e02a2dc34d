"""Cut a time range out of a video into an MP4 (H.264 + AAC), frame-accurately: :func:`cut_segment`.

The first frame of the cut is the source frame shown at ``start`` (not the keyframe
before it) and the audio covers exactly the same span.

When the source is H.264 in an ISO/Matroska style container (``avcC`` parameter sets),
the cut is *smart*: every whole group of pictures (GOP) inside the range is copied packet
for packet; of the GOP holding ``start``, the frames from ``start`` on are re-encoded; of
the GOP holding ``end``, the whole mini-GOPs (a P-frame and the B-frames before it) shown
before ``end`` are copied and only the last few frames re-encoded. Decoding skips the
non-reference frames that are not re-encoded and stops after the last frame that is. The
re-encoded pieces use their own SPS/PPS ids, and all parameter sets are listed in the
output's ``avcC``, so the stream stays conformant without any in-band parameter set
change. Other sources (and open-GOP H.264) are decoded from the keyframe before ``start``
and re-encoded up to ``end`` only, never the whole file.

AAC-LC audio in an MP4/MOV source is copied packet for packet, never decoded: the cut
takes the packets from one whole AAC frame before the first video frame (the decoder's
pre-roll) to the last video frame's end, shifted so that the first frame's sample is at
0, the last one's duration cut to the video's end. The MP4 edit list drops the pre-roll
to the sample (FFmpeg, browsers and QuickTime honour it) and ends the track with the
video; FFmpeg still plays the last AAC frame out whole, at most 1023 samples (21 ms at
48 kHz) past the last frame. Other audio is decoded and re-encoded to AAC, trimmed to
the sample.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import av
import av.audio.stream
import av.container
import av.video.stream
import numpy as np
import numpy.typing as npt
from av.codec.context import Flags
from av.video.frame import PictureType

from klipmedia.audio import (
    AAC_FRAME,
    AacSplice,
    CannotCopyAudio,
    aac_copyable,
    aac_packet_length,
    audio_frame_size,
)
from klipmedia.colour import copy_tags
from klipmedia.errors import CutRangeError, NoVideoStreamError, UnreadableMediaError
from klipmedia.io import atomic_path
from klipmedia.probe import open_media, stream_fps, timeline_origin
from klipmedia.timing import seconds

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    _Packet: TypeAlias = av.Packet[Any]

AUDIO_LEAD_SECONDS = 1.0
"""Decoded audio older than this before ``start`` is dropped while the first frame is unknown."""

_SPS, _PPS = 7, 8
_X264_PROFILES = {66: "baseline", 77: "main", 100: "high"}

AudioMethod: TypeAlias = Literal["copy", "reencode", "none"]


class _NeedsReencode(Exception):
    """Internal: the smart cut found a stream it cannot copy (open GOP)."""


@dataclass(frozen=True)
class CutSettings:
    """Encoder settings for what has to be re-encoded.

    The smart cut re-encodes the frames from ``start`` to the next keyframe and the last
    incomplete mini-GOP before ``end`` with ``edge_preset``: x264's ``ultrafast`` (with
    the in-loop deblocking filter turned back on, so those frames look like the copied
    ones) at a low CRF keeps them close to the source at less than half of
    ``superfast``'s cost. ``smart=False`` (or a source that cannot be copied) re-encodes
    the whole range (never the whole file) with ``preset``. AAC audio is copied unless
    ``copy_audio=False``; other audio is re-encoded with FFmpeg's ``fast`` AAC coder.
    """

    preset: str = "superfast"
    edge_preset: str = "ultrafast"
    crf: int = 18
    audio_bit_rate: int = 160_000
    audio_coder: str = "fast"
    copy_audio: bool = True
    smart: bool = True


@dataclass(frozen=True)
class CutResult:
    """What :func:`cut_segment` wrote.

    ``start``/``end`` are times (seconds, on the source's media timeline, see
    :func:`~klipmedia.probe.timeline_origin`) of the first frame and of the end of the
    last frame; subtitles for the cut must be shifted by ``start``. ``audio`` says
    whether the audio packets were copied, re-encoded, or absent from the source.
    """

    path: Path
    start: float
    end: float
    frames: int
    reencoded_frames: int
    method: Literal["smart", "reencode"]
    audio: AudioMethod

    @property
    def duration(self) -> float:
        """Length of the cut in seconds."""
        return self.end - self.start


def cut_segment(
    source: str | Path,
    start: float,
    end: float,
    output: str | Path,
    *,
    settings: CutSettings = CutSettings(),
) -> CutResult:
    """Write ``[start, end)`` of ``source`` (seconds on its media timeline) to ``output`` as an MP4.

    Raises
    ------
    MediaNotFoundError, EmptyMediaError, UnreadableMediaError, NoVideoStreamError
        When ``source`` cannot be used.
    CutRangeError
        When the range is empty or outside the media.

    Examples
    --------
    >>> result = cut_segment("talk.mp4", 61.5, 118.2, "segment_1.mp4")  # doctest: +SKIP
    >>> result.method, result.audio, round(result.duration, 2)  # doctest: +SKIP
    ('smart', 'copy', 56.7)
    """
    source, output = Path(source), Path(output)
    container = open_media(source)
    try:
        plan = _plan(container, source, start, end)
        smart = settings.smart and plan.copyable
        copy_audio = settings.copy_audio and plan.audio == "copy"
        # each fallback turns one flag off for good, so this runs at most three times
        while True:
            try:
                return _run(container, output, plan, settings, smart=smart, copy_audio=copy_audio)
            except _NeedsReencode as exc:
                log.info("%s: %s; re-encoding the range instead", source, exc)
                smart = False
            except CannotCopyAudio as exc:
                log.info("%s: %s; re-encoding the audio instead", source, exc)
                copy_audio = False
            container.close()
            container = open_media(source)
    finally:
        container.close()


@dataclass(frozen=True)
class _Plan:
    """The validated range in video ticks, and what can be copied.

    Ticks are the file's own timestamps; ``origin_ts`` is the media timeline's zero
    (:func:`~klipmedia.probe.timeline_origin`), so ``start_ts`` is ``origin_ts`` plus
    the requested start. ``preroll_ts`` is how far before ``start`` demuxing begins, so
    that the audio packets before the first frame (decoder pre-roll) are read too.
    """

    origin_ts: int
    start_ts: int
    end_ts: int
    frame_ticks: int
    time_base: Fraction
    fps: Fraction
    copyable: bool
    audio: AudioMethod
    preroll_ts: int


def _plan(container: av.container.InputContainer, path: Path, start: float, end: float) -> _Plan:
    if not container.streams.video:
        raise NoVideoStreamError(f"{path}: the file has no video stream")
    video = container.streams.video[0]
    if video.time_base is None:
        raise UnreadableMediaError(f"{path}: the video stream has no time base")
    time_base = Fraction(video.time_base)
    fps = stream_fps(video)
    duration = _duration(container, video, time_base)
    frame = 1 / float(fps)
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise CutRangeError(f"{path}: cannot cut [{start}, {end}): the range is empty")
    if start >= duration or end > duration + frame:
        raise CutRangeError(
            f"{path}: cannot cut [{start:.3f}, {end:.3f}) s: the media lasts {duration:.3f} s"
        )
    end = min(end, duration)
    audio = container.streams.audio[0] if container.streams.audio else None
    preroll = 0.0
    if audio is not None and audio.codec_context.sample_rate:
        # two audio frames, so the frame before the one holding ``start`` is read too
        preroll = frame + 2 * audio_frame_size(audio) / audio.codec_context.sample_rate
    origin_ts = _ticks(timeline_origin(container), time_base)
    return _Plan(
        origin_ts=origin_ts,
        start_ts=origin_ts + _ticks(start, time_base),
        end_ts=origin_ts + _ticks(end, time_base),
        frame_ticks=max(1, round(1 / (fps * time_base))),
        time_base=time_base,
        fps=fps,
        copyable=_copyable(video),
        audio="none" if audio is None else "copy" if aac_copyable(audio) else "reencode",
        preroll_ts=math.ceil(Fraction(preroll) / time_base),
    )


def _duration(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, tb: Fraction
) -> float:
    if video.duration:
        return seconds(video.duration, tb)
    if container.duration:
        return container.duration / av.time_base
    raise UnreadableMediaError(f"{container.name}: the video stream has no duration")


SEEK_STEP_SECONDS = 1.0
"""How much further back each retry of an inexact seek starts (doubling each time)."""


def _ticks(time: float, time_base: Fraction) -> int:
    return round(Fraction(time) / time_base)


def _copyable(video: av.video.stream.VideoStream) -> bool:
    """H.264, 8-bit 4:2:0, with ``avcC`` extradata using 4-byte NAL lengths."""
    ctx = video.codec_context
    extradata = ctx.extradata or b""
    return (
        ctx.name == "h264"
        and ctx.pix_fmt == "yuv420p"
        and len(extradata) > 6
        and extradata[0] == 1
        and extradata[4] & 3 == 3
    )


# --- the cut -----------------------------------------------------------------------------


def _run(
    src: av.container.InputContainer,
    output: Path,
    plan: _Plan,
    settings: CutSettings,
    *,
    smart: bool,
    copy_audio: bool,
) -> CutResult:
    with atomic_path(output) as temp:
        with av.open(str(temp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
            video = src.streams.video[0]
            audio = src.streams.audio[0] if src.streams.audio else None
            writer: _VideoWriter = (
                _SmartWriter(video, dst, plan, settings)
                if smart
                else _ReencodeWriter(video, dst, plan, settings)
            )
            sound: _AudioWriter | None = None
            if audio is not None:
                sound = (
                    _AudioCopier(audio, dst, plan)
                    if copy_audio
                    else _AudioTrimmer(audio, dst, plan, settings)
                )
            _pump(src, video, audio, writer, sound, plan)
            writer.finish()
            if sound:
                sound.finish(writer.first_pts, writer.end_pts)
        result = CutResult(
            path=output,
            start=seconds(_require_pts(writer.first_pts) - plan.origin_ts, plan.time_base),
            end=seconds(writer.end_pts - plan.origin_ts, plan.time_base),
            frames=writer.frames,
            reencoded_frames=writer.reencoded,
            method="smart" if smart else "reencode",
            audio="none" if audio is None else "copy" if copy_audio else "reencode",
        )
    log.info(
        "cut %s [%.3f, %.3f) -> %s: %d frames, %d re-encoded (%s), audio %s",
        src.name,
        result.start,
        result.end,
        output,
        result.frames,
        result.reencoded_frames,
        result.method,
        result.audio,
    )
    return result


def _pump(
    src: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    audio: av.audio.stream.AudioStream | None,
    writer: _VideoWriter,
    sound: _AudioWriter | None,
    plan: _Plan,
) -> None:
    """Demux from the keyframe before ``start`` (less the pre-roll) until the cut is complete."""
    streams = [video, audio] if audio else [video]
    try:
        _seek_before(src, video, plan.start_ts - plan.preroll_ts, plan)
        for packet in src.demux(*streams):
            if packet.dts is None and packet.size == 0:
                continue  # end-of-stream marker; finish() flushes the decoders
            if packet.stream is video:
                if not writer.done:
                    writer.feed(packet)
            elif sound:
                sound.feed(packet)
            if sound and writer.first_pts is not None:
                sound.begin(writer.first_pts)
            if writer.done and (sound is None or sound.has_reached(plan.end_ts)):
                break
    except av.FFmpegError as exc:
        raise UnreadableMediaError(f"{src.name}: cannot read the media ({exc})") from exc


def _seek_before(
    src: av.container.InputContainer, video: av.video.stream.VideoStream, target: int, plan: _Plan
) -> None:
    """Position demuxing at a video keyframe at or before ``target`` (ticks).

    Containers without an index (MPEG-TS) seek by byte estimate and can land a GOP or
    more late; each miss seeks again further back (1 s, 2 s, 4 s...). A target at the
    origin needs no seek: the file is freshly opened, or is rewound to its first byte.
    """
    step = _ticks(SEEK_STEP_SECONDS, plan.time_base)
    where = target
    while where > plan.origin_ts:
        src.seek(where, stream=video, backward=True, any_frame=False)
        key = _first_keyframe(src, video)
        if key is not None and key <= target:
            src.seek(where, stream=video, backward=True, any_frame=False)
            return
        where, step = where - step, 2 * step
    if where != target:
        _rewind(src, video, plan.origin_ts)


def _rewind(
    src: av.container.InputContainer, video: av.video.stream.VideoStream, origin_ts: int
) -> None:
    """Back to the first packet: by byte where the format allows it, else by time."""
    try:
        src.seek(0, unsupported_byte_offset=True)
    except av.FFmpegError:
        src.seek(origin_ts, stream=video, backward=True, any_frame=False)


def _first_keyframe(
    src: av.container.InputContainer, video: av.video.stream.VideoStream
) -> int | None:
    """The pts of the first video keyframe demuxed from here, or None at the end."""
    for packet in src.demux(video):
        if packet.is_keyframe and packet.pts is not None:
            return int(packet.pts)
    return None


class _VideoWriter(ABC):
    """Common state of both video paths: output stream, counters, range bookkeeping."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self.frames = 0
        self.reencoded = 0
        self.done = False

    @property
    def end_pts(self) -> int:
        """End of the last written frame, in source ticks."""
        if self.last_pts is None:
            raise UnreadableMediaError("no video frame was found in the requested range")
        return self.last_pts + self.plan.frame_ticks

    @abstractmethod
    def feed(self, packet: _Packet) -> None:
        """Take the next video packet (decode order)."""

    @abstractmethod
    def finish(self) -> None:
        """Write what is still buffered once demuxing has stopped."""

    def wanted(self, pts: int) -> bool:
        """Whether the frame at ``pts`` is inside the cut (shown at or after ``start``)."""
        return pts + self.plan.frame_ticks > self.plan.start_ts and pts < self.plan.end_ts

    def note_frame(self, pts: int) -> None:
        if self.first_pts is None:
            self.first_pts = pts
        self.last_pts = pts if self.last_pts is None else max(self.last_pts, pts)
        self.frames += 1


class _ReencodeWriter(_VideoWriter):
    """Decode from the keyframe before ``start``, encode the frames in range."""

    def __init__(
        self,
        video: av.video.stream.VideoStream,
        dst: av.container.OutputContainer,
        plan: _Plan,
        settings: CutSettings,
    ) -> None:
        super().__init__(plan)
        self.decoder = _decoder(video)
        self.dst = dst
        self.out = dst.add_stream("libx264", rate=plan.fps)
        self.out.width = video.codec_context.width
        self.out.height = video.codec_context.height
        self.out.pix_fmt = "yuv420p"
        self.out.time_base = plan.time_base
        self.out.codec_context.time_base = plan.time_base
        self.out.options = {"preset": settings.preset, "crf": str(settings.crf)}
        copy_tags(video.codec_context, self.out.codec_context)

    def feed(self, packet: _Packet) -> None:
        self._encode(_decode(self.decoder, [packet], self.wanted, flush=False))

    def finish(self) -> None:
        if not self.done:
            self._encode(_decode(self.decoder, [], self.wanted))
        for out_packet in self.out.encode(None):
            self.dst.mux(out_packet)

    def _encode(self, frames: Iterable[av.VideoFrame]) -> None:
        for frame in frames:
            pts = _require_pts(frame.pts)
            if pts >= self.plan.end_ts:
                self.done = True
            if not self.wanted(pts):
                continue
            self.note_frame(pts)
            self.reencoded += 1
            frame = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
            frame.pts = pts - _require_pts(self.first_pts)
            frame.time_base = self.plan.time_base
            frame.pict_type = PictureType.NONE
            for out_packet in self.out.encode(frame):
                self.dst.mux(out_packet)


def _decode(
    decoder: av.video.codeccontext.VideoCodecContext,
    packets: Iterable[_Packet],
    wanted: Callable[[int], bool],
    *,
    flush: bool = True,
) -> Iterator[av.VideoFrame]:
    """Decode ``packets``; the decoder skips the non-reference frames that are not wanted.

    Frames that nothing refers to and that lie outside the cut are never needed; every
    other frame is decoded and returned (in display order), wanted or not.
    """
    for packet in packets:
        decoder.skip_frame = "DEFAULT" if wanted(_require_pts(packet.pts)) else "NONREF"
        yield from decoder.decode(packet)
    if flush:
        yield from decoder.decode(None)


@dataclass
class _Gop:
    """Packets of one closed group of pictures, in decode order."""

    packets: list[_Packet] = field(default_factory=list)

    @property
    def key(self) -> _Packet:
        return self.packets[0]


class _SmartWriter(_VideoWriter):
    """Re-encode the partial GOPs at both ends, copy the whole GOPs in between.

    Packets are gathered one GOP at a time; the next keyframe (or the end of the
    stream) closes the GOP, which is then dropped (before ``start``), copied (inside
    the range) or partly copied and partly decoded and re-encoded (holding ``start``
    or ``end``).
    """

    def __init__(
        self,
        video: av.video.stream.VideoStream,
        dst: av.container.OutputContainer,
        plan: _Plan,
        settings: CutSettings,
    ) -> None:
        super().__init__(plan)
        self.video = video
        self.dst = dst
        source_avcc = _Avcc.parse(video.codec_context.extradata or b"")
        free_ids = iter(sorted(set(range(32)) - source_avcc.used_ids()))
        self.head_encoder = _encoder(video, plan, settings, next(free_ids), source_avcc)
        self.tail_encoder = _encoder(video, plan, settings, next(free_ids), source_avcc)
        merged = source_avcc.merged(
            _annexb_nals(self.head_encoder.extradata or b""),
            _annexb_nals(self.tail_encoder.extradata or b""),
        )
        self.out = dst.add_stream_from_template(video)
        self.out.codec_context.extradata = merged.to_bytes()
        self.gop: _Gop | None = None

    def feed(self, packet: _Packet) -> None:
        pts = _require_pts(packet.pts)
        if packet.is_keyframe:
            if self.gop is None:
                self._check_first(pts)
            else:
                self._close(self.gop, packet)
            if not self.done:
                self.gop = _Gop([packet])
        elif self.gop is None:
            raise UnreadableMediaError(
                f"{self.video.container.name}: the first video packet read is not a keyframe"
            )
        elif pts < _require_pts(self.gop.key.pts):
            raise _NeedsReencode("the source uses open GOPs")
        else:
            self.gop.packets.append(packet)

    def finish(self) -> None:
        if not self.done and self.gop is not None:
            self._close(self.gop, None)
        self.done = True

    def _check_first(self, pts: int) -> None:
        if pts > self.plan.start_ts and pts > self.plan.origin_ts + self.plan.frame_ticks:
            raise UnreadableMediaError(
                f"{self.video.container.name}: seeking landed after the start (bad index?)"
            )

    def _close(self, gop: _Gop, next_key: _Packet | None) -> None:
        """Drop, copy or partly re-encode ``gop``; stop when ``next_key`` is past the end.

        A GOP holding ``start`` is re-encoded from there; a GOP holding ``end`` keeps its
        whole mini-GOPs before ``end`` (see :meth:`_copyable_head`) and re-encodes the rest.
        """
        self.gop = None
        times = [_require_pts(p.pts) for p in gop.packets]
        wanted = [self.wanted(pts) for pts in times]
        if all(wanted):
            self._copy(gop.packets)
        elif any(wanted):
            copied = self._copyable_head(gop) if wanted[0] else 0
            self._copy(gop.packets[:copied])
            rest = [pts for pts in times[copied:] if self.wanted(pts)]
            if rest:
                self._reencode(gop, min(rest), next_key)
        if next_key is None or _require_pts(next_key.pts) >= self.plan.end_ts:
            self.done = True

    def _copyable_head(self, gop: _Gop) -> int:
        """How many packets from the start of a GOP that ends after ``end`` can be copied.

        That is the longest run (two packets at least) of whole mini-GOPs: packets all
        shown before ``end`` and before every packet decoded after them, and after which
        an IDR re-encoded with the GOP's dts offset still has a later dts.
        """
        end = self.plan.end_ts
        pts = [_require_pts(p.pts) for p in gop.packets]
        dts = [_require_pts(p.dts) for p in gop.packets]
        shift = pts[0] - dts[0]
        shown = list(accumulate(pts, max))  # shown[i]: the latest of packets 0..i
        later = [*list(accumulate(reversed(pts), min))[-2::-1], end]  # earliest of i+1..
        for n in range(len(pts) - 1, 1, -1):
            if shown[n - 1] < min(later[n - 1], end) and later[n - 1] - shift > dts[n - 1]:
                return n
        return 0

    def _copy(self, packets: list[_Packet]) -> None:
        if not packets:
            return
        if self.first_pts is None:
            self.first_pts = _require_pts(packets[0].pts)
        origin = self.first_pts
        for packet in packets:
            pts = _require_pts(packet.pts)
            self.note_frame(pts)
            packet.pts = pts - origin
            packet.dts = _require_pts(packet.dts) - origin
            packet.stream = self.out
            self.dst.mux(packet)

    def _reencode(self, gop: _Gop, first: int, next_key: _Packet | None) -> None:
        """Decode ``gop`` as far as needed; encode its wanted frames shown from ``first``.

        The head piece (nothing written yet) goes to the head encoder and takes the dts
        offset of the keyframe after it, so its dts run on into the copied GOPs; the tail
        piece takes its own keyframe's.
        """

        def todo(pts: int) -> bool:
            return pts >= first and self.wanted(pts)

        head = self.first_pts is None
        encoder = self.head_encoder if head else self.tail_encoder
        shift_key = next_key if head and next_key is not None else gop.key
        dts_offset = _require_pts(shift_key.pts) - _require_pts(shift_key.dts)
        last = max(i for i, p in enumerate(gop.packets) if todo(_require_pts(p.pts)))
        for frame in _decode(_decoder(self.video), gop.packets[: last + 1], todo):
            pts = _require_pts(frame.pts)
            if not todo(pts):
                continue
            self.note_frame(pts)
            self.reencoded += 1
            frame.pict_type = PictureType.NONE
            self._mux_encoded(encoder.encode(frame), dts_offset)
        self._mux_encoded(encoder.encode(None), dts_offset)

    def _mux_encoded(self, packets: Iterable[_Packet], dts_offset: int) -> None:
        """Mux x264 output (no B-frames, so dts = pts) as length-prefixed NAL units."""
        origin = _require_pts(self.first_pts)
        for encoded in packets:
            pts = _require_pts(encoded.pts)
            out = av.Packet(_length_prefixed(_annexb_nals(bytes(encoded))))
            out.pts = pts - origin
            out.dts = pts - origin - dts_offset
            out.duration = self.plan.frame_ticks
            out.time_base = self.plan.time_base
            out.is_keyframe = encoded.is_keyframe
            out.stream = self.out
            self.dst.mux(out)


def _decoder(video: av.video.stream.VideoStream) -> av.video.codeccontext.VideoCodecContext:
    """A fresh decoder for ``video`` (its own state, so flushing it is harmless)."""
    decoder = av.CodecContext.create(video.codec_context.name, "r")
    assert isinstance(decoder, av.video.codeccontext.VideoCodecContext)
    decoder.extradata = video.codec_context.extradata
    decoder.width = video.codec_context.width
    decoder.height = video.codec_context.height
    decoder.thread_type = "AUTO"
    return decoder


def _encoder(
    video: av.video.stream.VideoStream,
    plan: _Plan,
    settings: CutSettings,
    sps_id: int,
    source: _Avcc,
) -> av.video.codeccontext.VideoCodecContext:
    """An x264 encoder without B-frames, with deblocking, whose SPS/PPS use ``sps_id``."""
    encoder = av.CodecContext.create("libx264", "w")
    assert isinstance(encoder, av.video.codeccontext.VideoCodecContext)
    encoder.width = video.codec_context.width
    encoder.height = video.codec_context.height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = plan.time_base
    encoder.framerate = plan.fps
    encoder.flags |= Flags.global_header
    copy_tags(video.codec_context, encoder)
    options = {
        "preset": settings.edge_preset,
        "crf": str(settings.crf),
        "x264-params": f"sps-id={sps_id}:bframes=0:deblock=0,0",
    }
    profile = _X264_PROFILES.get(source.profile)
    if profile:
        options["profile"] = profile
    encoder.options = options
    encoder.open()
    return encoder


def _require_pts(value: int | None) -> int:
    if value is None:
        raise UnreadableMediaError("a packet or frame has no timestamp")
    return value


# --- audio ---------------------------------------------------------------------------------


class _AudioWriter(ABC):
    """Writes the audio under the cut's frames, once the first frame's time is known."""

    def __init__(self, audio: av.audio.stream.AudioStream, plan: _Plan) -> None:
        self.plan = plan
        self.rate = audio.codec_context.sample_rate
        self.latest = 0

    @abstractmethod
    def feed(self, packet: _Packet) -> None:
        """Take the next audio packet."""

    @abstractmethod
    def begin(self, first_pts: int) -> None:
        """Start the audio at the first video frame's time (source ticks); idempotent."""

    @abstractmethod
    def finish(self, first_pts: int | None, end_pts: int) -> None:
        """Write the rest, ending the audio where the last frame ends."""

    def has_reached(self, pts: int) -> bool:
        """Whether the audio read so far reaches one video frame past ``pts``."""
        return self.latest >= self._sample(pts + self.plan.frame_ticks)

    def _sample(self, pts: int) -> int:
        """The audio sample shown at video time ``pts``."""
        return round(pts * self.plan.time_base * self.rate)


class _AudioCopier(_AudioWriter):
    """Copy the AAC packets from one frame of pre-roll before the cut to its end.

    An :class:`~klipmedia.audio.AacSplice` shifts them so the sample under the first
    video frame is at 0 and cuts the last one's duration to the video's end.
    """

    def __init__(
        self, audio: av.audio.stream.AudioStream, dst: av.container.OutputContainer, plan: _Plan
    ) -> None:
        super().__init__(audio, plan)
        self.dst = dst
        self.out = dst.add_stream_from_template(audio)
        self.splice = AacSplice()
        self.floor = self._sample(plan.start_ts - plan.frame_ticks) - 2 * AAC_FRAME
        self.hold = self._sample(plan.end_ts - 2 * plan.frame_ticks)

    def feed(self, packet: _Packet) -> None:
        end = _require_pts(packet.pts) + aac_packet_length(packet)
        self.latest = max(self.latest, end)
        if end > self.floor:
            self.splice.pending.append(packet)
        if self.splice.origin is not None:
            self._release(self.hold, final=False)

    def begin(self, first_pts: int) -> None:
        if self.splice.origin is None:
            self.splice.origin = self._sample(first_pts)
            self._release(self.hold, final=False)

    def finish(self, first_pts: int | None, end_pts: int) -> None:
        self.begin(_require_pts(first_pts))
        self._release(self._sample(end_pts), final=True)
        if self.splice.next is None:
            raise CannotCopyAudio("no audio packet lies under the cut")

    def _release(self, stop: int, *, final: bool) -> None:
        for packet in self.splice.release(stop, final=final):
            packet.stream = self.out
            self.dst.mux(packet)


class _AudioTrimmer(_AudioWriter):
    """Decode the source audio and encode exactly the samples under the cut's frames."""

    def __init__(
        self,
        audio: av.audio.stream.AudioStream,
        dst: av.container.OutputContainer,
        plan: _Plan,
        settings: CutSettings,
    ) -> None:
        super().__init__(audio, plan)
        self.dst = dst
        layout = audio.codec_context.layout.name
        self.out = dst.add_stream("aac", rate=self.rate, layout=layout)
        self.out.codec_context.bit_rate = settings.audio_bit_rate
        self.out.codec_context.options = {"aac_coder": settings.audio_coder}
        self.decoder = audio.codec_context
        self.pending: list[tuple[int, npt.NDArray[np.float32]]] = []
        self.start: int | None = None
        self.written = 0
        self.channels = audio.codec_context.channels

    def feed(self, packet: _Packet | None) -> None:
        for frame in self.decoder.decode(packet):
            if frame.pts is None or frame.time_base is None:
                continue
            first = round(frame.pts * frame.time_base * self.rate)
            samples = frame.to_ndarray().astype(np.float32, copy=False)
            if not frame.format.is_planar:
                samples = samples.reshape(-1, self.channels).T
            self.latest = max(self.latest, first + samples.shape[1])
            if first + samples.shape[1] >= self._sample(self.plan.start_ts) - (
                AUDIO_LEAD_SECONDS * self.rate
            ):
                self.pending.append((first, samples))
        if self.start is not None:
            self._drain(self._sample(self.plan.end_ts))

    def begin(self, first_pts: int) -> None:
        if self.start is None:
            self.start = self._sample(first_pts)
            self._drain(self._sample(self.plan.end_ts))

    def finish(self, first_pts: int | None, end_pts: int) -> None:
        self.feed(None)
        self.begin(_require_pts(first_pts))
        self._drain(self._sample(end_pts))
        for packet in self.out.encode(None):
            self.dst.mux(packet)

    def _drain(self, stop: int) -> None:
        """Encode pending samples before absolute sample ``stop``; keep the rest pending."""
        assert self.start is not None
        keep: list[tuple[int, npt.NDArray[np.float32]]] = []
        for first, samples in self.pending:
            cursor = self.start + self.written
            lo, hi = max(first, cursor), min(first + samples.shape[1], stop)
            if lo > cursor and lo < stop:
                self._encode(np.zeros((samples.shape[0], lo - cursor), np.float32))
            if hi > lo:
                self._encode(samples[:, lo - first : hi - first])
            if first + samples.shape[1] > max(hi, cursor):
                keep.append((first, samples))
        self.pending = keep

    def _encode(self, samples: npt.NDArray[np.float32]) -> None:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=self.out.codec_context.layout.name
        )
        frame.sample_rate = self.rate
        frame.pts = self.written
        frame.time_base = Fraction(1, self.rate)
        self.written += samples.shape[1]
        for packet in self.out.encode(frame):
            self.dst.mux(packet)


# --- H.264 parameter sets -------------------------------------------------------------------


@dataclass(frozen=True)
class _Avcc:
    """An AVCDecoderConfigurationRecord (ISO/IEC 14496-15), kept as NAL unit lists."""

    profile: int
    compatibility: int
    level: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    trailer: bytes

    @classmethod
    def parse(cls, data: bytes) -> _Avcc:
        try:
            pos = 6
            sps, pos = _nal_list(data, pos, data[5] & 0x1F)
            pps, pos = _nal_list(data, pos + 1, data[pos])
        except IndexError as exc:
            raise UnreadableMediaError("malformed H.264 avcC parameter sets") from exc
        return cls(data[1], data[2], data[3], sps, pps, data[pos:])

    def used_ids(self) -> set[int]:
        """SPS and PPS ids in use (x264 gives its PPS the SPS id, so avoid both)."""
        return {_first_ue(nal, 4) for nal in self.sps} | {_first_ue(nal, 1) for nal in self.pps}

    def merged(self, *extra: list[bytes]) -> _Avcc:
        """This record plus the SPS/PPS NAL units of other encodes."""
        nals = [nal for group in extra for nal in group]
        return _Avcc(
            self.profile,
            self.compatibility,
            self.level,
            self.sps + tuple(n for n in nals if n[0] & 0x1F == _SPS),
            self.pps + tuple(n for n in nals if n[0] & 0x1F == _PPS),
            self.trailer,
        )

    def to_bytes(self) -> bytes:
        head = bytes([1, self.profile, self.compatibility, self.level, 0xFF, 0xE0 | len(self.sps)])
        sps = b"".join(len(n).to_bytes(2, "big") + n for n in self.sps)
        pps = b"".join(len(n).to_bytes(2, "big") + n for n in self.pps)
        return head + sps + bytes([len(self.pps)]) + pps + self.trailer


def _nal_list(data: bytes, pos: int, count: int) -> tuple[tuple[bytes, ...], int]:
    nals = []
    for _ in range(count):
        size = int.from_bytes(data[pos : pos + 2], "big")
        nals.append(data[pos + 2 : pos + 2 + size])
        if len(nals[-1]) != size:
            raise IndexError("truncated NAL unit")
        pos += 2 + size
    return tuple(nals), pos


def _first_ue(nal: bytes, offset: int) -> int:
    """The Exp-Golomb ``ue(v)`` value starting at byte ``offset`` (ids sit there in SPS/PPS)."""
    bits = _bits(nal[offset:])
    zeros = 0
    while next(bits) == 0:
        zeros += 1
    value = 0
    for _ in range(zeros):
        value = value << 1 | next(bits)
    return (1 << zeros) - 1 + value


def _bits(data: bytes) -> Iterator[int]:
    for byte in data:
        for shift in range(7, -1, -1):
            yield byte >> shift & 1


def _annexb_nals(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream (start codes) into NAL units."""
    nals = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        nxt = data.find(b"\x00\x00\x01", start + 3)
        nal = data[start + 3 : len(data) if nxt < 0 else nxt].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = nxt
    return nals


def _length_prefixed(nals: list[bytes]) -> bytes:
    """NAL units as 4-byte-length-prefixed sample data, parameter sets left out."""
    return b"".join(len(n).to_bytes(4, "big") + n for n in nals if n[0] & 0x1F not in (_SPS, _PPS))
