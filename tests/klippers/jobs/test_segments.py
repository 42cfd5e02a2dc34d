"""Segment files: cuts, SRT and words retimed to the segment, manifest entries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import pytest

from klippers.asr.transcript import Sentence, Transcript, Word
from klippers.jobs.segments import retime_transcript, write_manifest, write_segments
from klippers.selection.highlights import select_highlights
from tests.klipmedia.test_cut import FPS, GOP, _make_source, _read_index

SENTENCES = [
    "Why does this matter?",
    "Because frames must line up.",
    "Filler words go here now.",
    "Cuts start on a sentence.",
    "Numbers like 42 help.",
    "The end is near.",
]


def _transcript() -> Transcript:
    """Six short sentences, one every 2 s from 0.2 s, words 0.3 s long every 0.35 s."""
    sentences = []
    for n, text in enumerate(SENTENCES):
        base = 0.2 + 2 * n
        words = tuple(
            Word(round(base + 0.35 * k, 3), round(base + 0.35 * k + 0.3, 3), token)
            for k, token in enumerate(text.split())
        )
        sentences.append(Sentence(words[0].start, words[-1].end, text, words))
    return Transcript("en", 12.0, tuple(sentences))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("segments")
    return _make_source(
        folder / "source.mp4", f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=3"
    )


def _srt_times(text: str) -> list[tuple[float, float]]:
    def seconds(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    pairs = re.findall(r"(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)", text)
    return [(seconds(a), seconds(b)) for a, b in pairs]


def test_segments_are_written_with_retimed_captions(source: Path, tmp_path: Path) -> None:
    transcript = _transcript()
    result = select_highlights(transcript, count=2, target_duration=3, min_duration=1.5)
    assert len(result.highlights) == 2
    entries = write_segments(source, transcript, result.highlights, tmp_path)
    folder = tmp_path / "important-segment-videos"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"segment_{n}{ext}" for n in (1, 2) for ext in (".mp4", ".srt", ".words.json")
    )
    for number, (entry, highlight) in enumerate(zip(entries, result.highlights, strict=True), 1):
        assert entry["index"] == number
        assert entry["files"] == {
            "video": f"important-segment-videos/segment_{number}.mp4",
            "srt": f"important-segment-videos/segment_{number}.srt",
            "words": f"important-segment-videos/segment_{number}.words.json",
        }
        assert abs(entry["start"] - highlight.start) <= 1 / FPS
        assert entry["duration"] == pytest.approx(entry["end"] - entry["start"], abs=1e-3)
        assert entry["title"] == highlight.title
        assert entry["reasons"] == list(highlight.reasons)
        assert entry["text"] == highlight.text
        assert entry["score"] == highlight.score

        with av.open(str(tmp_path / entry["files"]["video"])) as container:
            first = next(container.decode(video=0))
        assert _read_index(first) == round(entry["start"] * FPS)

        words = Transcript.load(tmp_path / entry["files"]["words"]).words
        original = [w for w in transcript.words if entry["start"] <= w.start < entry["end"]]
        assert [w.text for w in words] == [w.text for w in original]
        for got, want in zip(words, original, strict=True):
            assert got.start == pytest.approx(want.start - entry["start"], abs=1e-3)

        cues = _srt_times((tmp_path / entry["files"]["srt"]).read_text(encoding="utf-8"))
        assert cues
        assert cues[0][0] == pytest.approx(words[0].start, abs=2e-3)
        assert all(0 <= a < b <= entry["duration"] + 1e-3 for a, b in cues)


def test_retimed_transcript_clips_sentences_at_the_edges() -> None:
    segment = retime_transcript(_transcript(), 2.5, 6.75)
    texts = [s.text for s in segment.sentences]
    assert texts == ["frames must line up.", SENTENCES[2], "Cuts start"]
    assert segment.duration == pytest.approx(4.25)
    assert segment.words[0].start == pytest.approx(2.2 + 0.35 - 2.5)
    assert segment.words[-1].end <= segment.duration


def test_manifest_lists_the_segments(tmp_path: Path) -> None:
    entries = [{"index": 1, "title": "A"}, {"index": 2, "title": "B"}]
    path = write_manifest(tmp_path / "important_segments_videos.json", entries, "only 2 of 3")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["segment_count"] == 2
    assert document["segments"] == entries
    assert document["message"] == "only 2 of 3"
    assert [p.name for p in tmp_path.iterdir()] == ["important_segments_videos.json"]
