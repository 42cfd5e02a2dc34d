"""Cut the chosen highlights into segment files and describe them: :func:`write_segments`.

For highlight N (rank order) the folder ``important-segment-videos/`` receives
``segment_N.mp4`` (frame-accurate cut, see :func:`klipmedia.cut.cut_segment`),
``segment_N.srt`` and ``segment_N.words.json``, both retimed so 0 is the cut's first
frame. The returned entries form ``important_segments_videos.json``.

Examples
--------
>>> result = select_highlights(transcript, count=3)  # doctest: +SKIP
>>> chosen = result.highlights  # doctest: +SKIP
>>> entries = write_segments("original.mp4", transcript, chosen, "out/")  # doctest: +SKIP
>>> write_manifest("out/important_segments_videos.json", entries)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from klipmedia.cut import CutSettings, cut_segment
from klippers.asr.subtitles import format_srt, make_cues, write_atomic, write_words_json
from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.contract import (
    SEGMENTS_DIR,
    segment_srt_name,
    segment_video_name,
    segment_words_name,
)
from klippers.selection.highlights import Highlight

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


def write_segments(
    source: str | Path,
    transcript: Transcript,
    highlights: Sequence[Highlight],
    output_dir: str | Path,
    *,
    settings: CutSettings = CutSettings(),  # noqa: B008 - frozen dataclass
) -> list[dict[str, Any]]:
    """Write the video, SRT and words JSON of each highlight; return the manifest entries.

    Entries follow ``highlights`` order, numbered from 1; their ``start``/``end`` are the
    source times of the cut's first frame and of the end of its last frame. File names
    are relative to ``output_dir``.
    """
    folder = Path(output_dir) / SEGMENTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for number, highlight in enumerate(highlights, start=1):
        names = {
            "video": segment_video_name(number),
            "srt": segment_srt_name(number),
            "words": segment_words_name(number),
        }
        cut = cut_segment(
            source, highlight.start, highlight.end, folder / names["video"], settings=settings
        )
        segment = retime_transcript(transcript, cut.start, cut.end)
        write_segment_srt(segment, folder / names["srt"])
        write_words_json(segment, folder / names["words"])
        entries.append(
            {
                **highlight.to_dict(),
                "index": number,
                "start": round(cut.start, 3),
                "end": round(cut.end, 3),
                "duration": round(cut.duration, 3),
                "files": {kind: f"{SEGMENTS_DIR}/{name}" for kind, name in names.items()},
            }
        )
        log.info("segment %d: %.2f-%.2f s, score %.1f", number, cut.start, cut.end, highlight.score)
    return entries


def write_manifest(
    path: str | Path,
    entries: Sequence[dict[str, Any]],
    message: str | None = None,
    **extra: Any,
) -> Path:
    """Write ``important_segments_videos.json`` atomically (the parent's last write).

    ``extra`` fields (e.g. what the segments were made from) are stored beside them.
    """
    document = {
        "version": MANIFEST_VERSION,
        "segment_count": len(entries),
        "message": message,
        **extra,
        "segments": list(entries),
    }
    return write_atomic(path, json.dumps(document, ensure_ascii=False, indent=1) + "\n")


def write_segment_srt(segment: Transcript, path: str | Path) -> Path:
    """Write the SRT of a retimed segment (cues end by the segment's duration)."""
    return write_atomic(path, format_srt(make_cues(segment)))


def retime_transcript(transcript: Transcript, start: float, end: float) -> Transcript:
    """The words spoken in ``[start, end)``, shifted so ``start`` is 0 and clipped to the range.

    A word belongs to the range when its middle does. A sentence cut by the range keeps
    only its words inside it (its text rebuilt from them).
    """
    length = end - start
    sentences = []
    for sentence in transcript.sentences:
        if sentence.end <= start or sentence.start >= end:
            continue
        words = tuple(
            Word(
                _clip(w.start - start, length), _clip(w.end - start, length), w.text, w.probability
            )
            for w in sentence.words
            if start <= (w.start + w.end) / 2 < end
        )
        if sentence.words and not words:
            continue
        whole = len(words) == len(sentence.words)
        sentences.append(
            Sentence(
                start=words[0].start if words else _clip(sentence.start - start, length),
                end=words[-1].end if words else _clip(sentence.end - start, length),
                text=sentence.text if whole else " ".join(w.text.strip() for w in words),
                words=words,
            )
        )
    return Transcript(transcript.language, round(length, 6), tuple(sentences))


def _clip(time: float, length: float) -> float:
    return round(min(max(time, 0.0), length), 3)
