"""The shorts of a two-person clip cut to whoever talks: a rendered short, frame by frame.

The synthetic conversation (two real face photos, the right one the left one's mirror
image, taking turns; the listener nods, then chews) is planned in speaker mode and
rendered in the default stacked layout. Inside every turn (more than 0.5 s from its
edges), the short's top panel is compared with the same source frame cropped around the
left person and around the right person, scaled the same way: it must match the
speaker's crop, whose background and place in the picture differ from the listener's.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

pytest.importorskip("ai_edge_litert", reason="needs the reframe extra (ai-edge-litert)")
pytest.importorskip("skimage", reason="needs scikit-image for the face photos")

from klipmedia import EncodeSettings, render_short
from klipmedia.crop import CropPath, window_size
from klipmedia.shots import plan_reframe
from tests.klipmedia.conversation import (
    FPS,
    LEFT_X,
    RIGHT_X,
    SIZE,
    Conversation,
    Listening,
    Turn,
    Voice,
    write_conversation,
)

pytestmark = pytest.mark.slow

TURNS = (
    Turn(0.3, 2.6, "left"),
    Turn(2.9, 5.4, "right"),
    Turn(5.7, 7.6, "left"),
    Turn(7.9, 10.2, "right"),
    Turn(10.5, 11.8, "left"),
)
FACE_X = {"left": LEFT_X, "right": RIGHT_X}
COMPARED = (96, 108)
"""Rows and columns that the panel and the source crops are scaled to for comparison."""


def listener(voice: Voice, t: float) -> Listening:
    """The listener nods in the first half and chews in the second."""
    return "nod" if t < 6.0 else "chew"


TALK = Conversation(TURNS, 12.0, listener, seed=4)


def inside_turns(frames: int) -> dict[int, Turn]:
    """Output frame indices (every third) more than 0.5 s inside a turn, with the turn."""
    out: dict[int, Turn] = {}
    for index in range(0, frames, 3):
        t = index / FPS
        for turn in TURNS:
            if turn.start + 0.5 < t < turn.end - 0.5:
                out[index] = turn
    return out


def small(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """A picture scaled to :data:`COMPARED` (area average), as floats."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(image.resize(COMPARED[::-1], Image.Resampling.BOX), np.float32)


def around(source: NDArray[np.uint8], face_x: float, width: int) -> NDArray[np.float32]:
    """The full-height window of ``width`` centred on ``face_x`` (kept inside the frame)."""
    x = min(max(round(face_x - width / 2), 0), source.shape[1] - width)
    return small(source[:, x : x + width])


def rgb_frames(path: Path, wanted: set[int]) -> dict[int, NDArray[np.uint8]]:
    """The frames of ``path`` at the ``wanted`` indices, as RGB arrays."""
    with av.open(str(path)) as container:
        return {
            index: np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
            for index, frame in enumerate(container.decode(video=0))
            if index in wanted
        }


def test_the_short_of_a_conversation_frames_whoever_talks(tmp_path: Path) -> None:
    clip = write_conversation(tmp_path / "talk.mp4", TALK)
    plan = plan_reframe(clip)
    assert plan.mode == "speaker"
    assert plan.layout.kind == "stacked"
    assert isinstance(plan.crop_path, CropPath)
    cuts = [
        a for a, b in zip(plan.crop_path.times, plan.crop_path.times[1:], strict=False) if a == b
    ]
    assert len(cuts) <= len(TURNS), cuts
    short = render_short(
        clip,
        tmp_path / "short.mp4",
        layout=plan.layout,
        crop_path=plan.crop_path,
        content=plan.content,
        encode=EncodeSettings(preset="ultrafast"),
    )
    assert short.frames == round(TALK.duration * FPS)
    sampled = inside_turns(short.frames)
    outputs = rgb_frames(short.path, set(sampled))
    sources = rgb_frames(clip, set(sampled))
    width = window_size(*SIZE, plan.layout.crop_aspect)[0]
    top = plan.layout.top_height
    wrong = []
    for index, turn in sampled.items():
        voice = turn.voice
        panel = small(outputs[index][:top])
        error = {
            who: float(np.abs(panel - around(sources[index], x, width)).mean())
            for who, x in FACE_X.items()
        }
        framed = min(error, key=lambda who: error[who])
        if framed != voice or error[voice] > 5.0:
            wrong.append((round(index / FPS, 2), voice, error))
    assert set(sampled.values()) == set(TURNS)
    assert wrong == []
