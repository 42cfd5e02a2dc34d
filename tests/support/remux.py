"""Copies of real encoded files whose timestamps start elsewhere than 0, as real files do.

MPEG-TS carries a broadcast clock, stream recordings and ``-c copy`` trims keep their
offset, and audio can start before or after the picture: :func:`shifted` remuxes a file
(packets copied, nothing re-encoded) with every timestamp moved.
"""

from __future__ import annotations

from pathlib import Path

import av


def shifted(
    source: Path, target: Path, offset: float, *, audio_offset: float = 0.0, fmt: str | None = None
) -> Path:
    """Remux ``source`` to ``target`` with timestamps moved by ``offset`` seconds.

    Audio moves by ``offset + audio_offset``; ``fmt`` picks the container (e.g. "mpegts").
    """
    with av.open(str(source)) as src, av.open(str(target), "w", format=fmt) as dst:
        outputs = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None or packet.pts is None:
                continue
            extra = audio_offset if packet.stream.type == "audio" else 0.0
            delta = round((offset + extra) / packet.stream.time_base)
            packet.pts += delta
            packet.dts += delta
            packet.stream = outputs[packet.stream.index]
            dst.mux(packet)
    return target
