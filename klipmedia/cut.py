"""Cut a time range out of a video into an MP4 (H.264 + AAC), frame-accurately: :func:`cut_segment`.

The first frame of the cut is the source frame shown at ``start`` (not the keyframe
before it) and the audio is trimmed to the same sample-exact range.

When the source is H.264 in an ISO/Matroska style container (``avcC`` parameter sets),
the cut is *smart*: only the partial group of pictures (GOP) at each end is decoded and
re-encoded, every whole GOP in between is copied packet for packet. The re-encoded
pieces use their own SPS/PPS ids, and all parameter sets are listed in the output's
``avcC``, so the stream stays conformant without any in-band parameter set change.
Other sources (and open-GOP H.264) are decoded from the keyframe before ``start`` and
re-encoded up to ``end`` only, never the whole file.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
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

from klipmedia.errors import CutRangeError, NoVideoStreamError, UnreadableMediaError
from klipmedia.io import atomic_path
from klipmedia.probe import open_media, stream_fps
from klipmedia.timing import seconds

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    _Packet: TypeAlias = av.Packet[Any]

AUDIO_LEAD_SECONDS = 1.0
"""Decoded audio older than this before ``start`` is dropped while the first frame is unknown."""

_SPS, _PPS = 7, 8
_X264_PROFILES = {66: "baseline", 77: "main", 100: "high"}


class _NeedsReencode(Exception):
    """Internal: the smart cut found a stream it cannot copy (open GOP)."""


@dataclass(frozen=True)
class CutSettings:
    """Encoder settings for what has to be re-encoded.

    The smart cut re-encodes at most one GOP at each end, so a fast x264 preset with a
    low CRF keeps those frames close to the copied ones at little cost. The audio is
    always re-encoded (sample-exact trim); FFmpeg's ``fast`` AAC coder is about twice as
    fast as its default ``twoloop``. ``smart=False`` forces re-encoding of the whole range
    (never of the whole file).
    """

    preset: str = "superfast"
    crf: int = 18
    audio_bit_rate: int = 160_000
    audio_coder: str = "fast"
    smart: bool = True


@dataclass(frozen=True)
class CutResult:
    """What :func:`cut_segment` wrote.

    ``start``/``end`` are source times (seconds) of the first frame and of the end of
    the last frame; subtitles for the cut must be shifted by ``start``.
    """

    path: Path
    start: float
    end: float
    frames: int
    reencoded_frames: int
    method: Literal["smart", "reencode"]

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
    """Write ``[start, end)`` of ``source`` (seconds) to ``output`` as an MP4.

    Raises
    ------
    MediaNotFoundError, EmptyMediaError, UnreadableMediaError, NoVideoStreamError
        When ``source`` cannot be used.
    CutRangeError
        When the range is empty or outside the media.

    Examples
    --------
    >>> result = cut_segment("talk.mp4", 61.5, 118.2, "segment_1.mp4")  # doctest: +SKIP
    >>> result.method, round(result.duration, 2)  # doctest: +SKIP
    ('smart', 56.7)
    """
    source, output = Path(source), Path(output)
    with open_media(source) as container:
        plan = _plan(container, source, start, end)
    if settings.smart and plan.copyable:
        try:
            return _run(source, output, plan, settings, smart=True)
        except _NeedsReencode as exc:
            log.info("%s: %s; re-encoding the range instead", source, exc)
    return _run(source, output, plan, settings, smart=False)


@dataclass(frozen=True)
class _Plan:
    """The validated range in video ticks, and whether packets can be copied."""

    start_ts: int
    end_ts: int
    frame_ticks: int
    time_base: Fraction
    fps: Fraction
    copyable: bool


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
    return _Plan(
        start_ts=_ticks(start, time_base),
        end_ts=_ticks(end, time_base),
        frame_ticks=max(1, round(1 / (fps * time_base))),
        time_base=time_base,
        fps=fps,
        copyable=_copyable(video),
    )


def _duration(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, tb: Fraction
) -> float:
    if video.duration:
        return seconds(video.duration, tb)
    if container.duration:
        return container.duration / av.time_base
    raise UnreadableMediaError(f"{container.name}: the video stream has no duration")


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
    source: Path, output: Path, plan: _Plan, settings: CutSettings, *, smart: bool
) -> CutResult:
    with atomic_path(output) as temp:
        with (
            open_media(source) as src,
            av.open(str(temp), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
        ):
            video = src.streams.video[0]
            audio = src.streams.audio[0] if src.streams.audio else None
            writer: _VideoWriter = (
                _SmartWriter(video, dst, plan, settings)
                if smart
                else _ReencodeWriter(video, dst, plan, settings)
            )
            trimmer = _AudioTrimmer(audio, dst, plan, settings) if audio else None
            _pump(src, video, audio, writer, trimmer, plan)
            writer.finish()
            if trimmer:
                trimmer.finish(writer.first_pts, writer.end_pts)
        result = CutResult(
            path=output,
            start=seconds(_require_pts(writer.first_pts), plan.time_base),
            end=seconds(writer.end_pts, plan.time_base),
            frames=writer.frames,
            reencoded_frames=writer.reencoded,
            method="smart" if smart else "reencode",
        )
    log.info(
        "cut %s [%.3f, %.3f) -> %s: %d frames, %d re-encoded (%s)",
        source,
        result.start,
        result.end,
        output,
        result.frames,
        result.reencoded_frames,
        result.method,
    )
    return result


def _pump(
    src: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    audio: av.audio.stream.AudioStream | None,
    writer: _VideoWriter,
    trimmer: _AudioTrimmer | None,
    plan: _Plan,
) -> None:
    """Demux from the keyframe before ``start`` until video and audio are complete."""
    src.seek(plan.start_ts, stream=video, backward=True, any_frame=False)
    streams = [video, audio] if audio else [video]
    try:
        for packet in src.demux(*streams):
            if packet.dts is None and packet.size == 0:
                continue  # end-of-stream marker; finish() flushes the decoders
            if packet.stream is video:
                if not writer.done:
                    writer.feed(packet)
            elif trimmer:
                trimmer.feed(packet)
                if writer.first_pts is not None:
                    trimmer.begin(writer.first_pts)
            if writer.done and (trimmer is None or trimmer.has_reached(plan.end_ts)):
                break
    except av.FFmpegError as exc:
        raise UnreadableMediaError(f"{src.name}: cannot read the media ({exc})") from exc


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

    def feed(self, packet: _Packet) -> None:
        self._encode(self.decoder.decode(packet))

    def finish(self) -> None:
        if not self.done:
            self._encode(self.decoder.decode(None))
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


@dataclass
class _Gop:
    """Packets of one closed group of pictures, in decode order."""

    packets: list[_Packet] = field(default_factory=list)

    @property
    def key(self) -> _Packet:
        return self.packets[0]

    @property
    def max_pts(self) -> int:
        return max(_require_pts(p.pts) for p in self.packets)


class _SmartWriter(_VideoWriter):
    """Re-encode the partial GOPs at both ends, copy the whole GOPs in between."""

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
        self.head: list[av.VideoFrame] | None = None
        self.head_decoder: av.video.codeccontext.VideoCodecContext | None = None

    def feed(self, packet: _Packet) -> None:
        pts = _require_pts(packet.pts)
        if self.gop is None and self.head_decoder is None:
            self._first(packet, pts)
        elif packet.is_keyframe:
            self._keyframe(packet, pts)
        elif self.gop is not None:
            if pts < _require_pts(self.gop.key.pts):
                raise _NeedsReencode("the source uses open GOPs")
            self.gop.packets.append(packet)
        else:
            self._decode_head([packet])

    def finish(self) -> None:
        if self.done:
            return
        if self.head_decoder is not None:
            self._end_head(None)
        if self.gop is not None:
            self._close_gop()
        self.done = True

    def _first(self, packet: _Packet, pts: int) -> None:
        if not packet.is_keyframe:
            raise UnreadableMediaError(
                f"{self.video.container.name}: seeking did not land on a keyframe"
            )
        if pts > self.plan.start_ts and pts > self.plan.frame_ticks:
            raise UnreadableMediaError(
                f"{self.video.container.name}: seeking landed after the start (bad index?)"
            )
        if self.wanted(pts):
            self.gop = _Gop([packet])
            self.first_pts = pts
        else:
            self.head_decoder = _decoder(self.video)
            self.head = []
            self._decode_head([packet])

    def _keyframe(self, packet: _Packet, pts: int) -> None:
        if self.head_decoder is not None:
            self._end_head(packet)
        elif self.gop is not None:
            self._close_gop()
        if self.done:
            return
        if pts >= self.plan.end_ts:
            self.done = True
            return
        self.gop = _Gop([packet])

    def _decode_head(self, packets: Iterable[_Packet | None]) -> None:
        assert self.head_decoder is not None
        assert self.head is not None
        for packet in packets:
            for frame in self.head_decoder.decode(packet):
                pts = _require_pts(frame.pts)
                if self.wanted(pts):
                    self.note_frame(pts)
                    self.head.append(frame)

    def _end_head(self, next_key: _Packet | None) -> None:
        """Encode the head up to ``next_key`` (whose pts/dts offset the head's dts follow)."""
        self._decode_head([None])
        assert self.head is not None
        offset = 0 if next_key is None else _require_pts(next_key.pts) - _require_pts(next_key.dts)
        self._reencode(self.head_encoder, self.head, offset)
        self.head_decoder, self.head = None, None
        if next_key is None or _require_pts(next_key.pts) >= self.plan.end_ts:
            self.done = True

    def _close_gop(self) -> None:
        """Copy the buffered GOP whole if it ends before ``end``, else re-encode its head part."""
        assert self.gop is not None
        gop, self.gop = self.gop, None
        if gop.max_pts < self.plan.end_ts:
            self._copy(gop)
            return
        decoder = _decoder(self.video)
        frames = [
            frame
            for packet in [*gop.packets, None]
            for frame in decoder.decode(packet)
            if self.wanted(_require_pts(frame.pts))
        ]
        for frame in frames:
            self.note_frame(_require_pts(frame.pts))
        key = gop.key
        self._reencode(self.tail_encoder, frames, _require_pts(key.pts) - _require_pts(key.dts))
        self.done = True

    def _copy(self, gop: _Gop) -> None:
        origin = _require_pts(self.first_pts)
        for packet in gop.packets:
            pts = _require_pts(packet.pts)
            self.note_frame(pts)
            packet.pts = pts - origin
            packet.dts = _require_pts(packet.dts) - origin
            packet.stream = self.out
            self.dst.mux(packet)

    def _reencode(
        self,
        encoder: av.video.codeccontext.VideoCodecContext,
        frames: list[av.VideoFrame],
        dts_offset: int,
    ) -> None:
        """Encode ``frames`` (no B-frames, so dts = pts) and mux them with ``dts_offset``."""
        origin = _require_pts(self.first_pts) if frames else 0
        packets: list[_Packet] = []
        for frame in frames:
            frame.pict_type = PictureType.NONE
            packets.extend(encoder.encode(frame))
        packets.extend(encoder.encode(None))
        self.reencoded += len(frames)
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
    """An x264 encoder without B-frames whose SPS/PPS use ``sps_id``."""
    encoder = av.CodecContext.create("libx264", "w")
    assert isinstance(encoder, av.video.codeccontext.VideoCodecContext)
    encoder.width = video.codec_context.width
    encoder.height = video.codec_context.height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = plan.time_base
    encoder.framerate = plan.fps
    encoder.flags |= Flags.global_header
    options = {
        "preset": settings.preset,
        "crf": str(settings.crf),
        "x264-params": f"sps-id={sps_id}:bframes=0",
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


class _AudioTrimmer:
    """Decode the source audio and encode exactly the samples under the cut's frames."""

    def __init__(
        self,
        audio: av.audio.stream.AudioStream,
        dst: av.container.OutputContainer,
        plan: _Plan,
        settings: CutSettings,
    ) -> None:
        self.audio = audio
        self.dst = dst
        self.plan = plan
        self.rate = audio.codec_context.sample_rate
        layout = audio.codec_context.layout.name
        self.out = dst.add_stream("aac", rate=self.rate, layout=layout)
        self.out.codec_context.bit_rate = settings.audio_bit_rate
        self.out.codec_context.options = {"aac_coder": settings.audio_coder}
        self.decoder = audio.codec_context
        self.pending: list[tuple[int, npt.NDArray[np.float32]]] = []
        self.start: int | None = None
        self.written = 0
        self.latest = 0
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
        """Start the audio at the first video frame's time."""
        if self.start is None:
            self.start = self._sample(first_pts)
            self._drain(self._sample(self.plan.end_ts))

    def has_reached(self, pts: int) -> bool:
        """Whether the decoded audio reaches one video frame past ``pts``."""
        return self.latest >= self._sample(pts + self.plan.frame_ticks)

    def finish(self, first_pts: int | None, end_pts: int) -> None:
        """Flush the decoder and encoder, ending the audio where the last frame ends."""
        self.feed(None)
        self.begin(_require_pts(first_pts))
        self._drain(self._sample(end_pts))
        for packet in self.out.encode(None):
            self.dst.mux(packet)

    def _sample(self, pts: int) -> int:
        return round(pts * self.plan.time_base * self.rate)

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
