"""Synthetic two-person conversations: real face photos whose mouths open with their voices.

The left person is :func:`skimage.data.astronaut`, the right one its mirror image. Each
voice is speech-like: syllables of 120-260 ms with gaps, every syllable a burst of a
voiced sound (harmonics of the speaker's own pitch) plus breath noise under a smooth
envelope. The speaker's mouth opens with that envelope. The listener chews, laughs, nods
or stays still. An off-screen voice speaks with no mouth on screen moving. The clip is
H.264 + AAC, so the test goes through the same decoders as real footage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from tests.klipmedia.facegen import Placement, write_clip

RATE = 48_000
SIZE = (960, 540)
FPS = 30
LEFT_X, RIGHT_X, FACE_Y = 0.28 * SIZE[0], 0.72 * SIZE[0], 0.5 * SIZE[1]

Voice = Literal["left", "right", "off"]
Listening = Literal["still", "chew", "laugh", "nod"]
PITCH: dict[Voice, float] = {"left": 210.0, "right": 125.0, "off": 160.0}


@dataclass(frozen=True)
class Turn:
    """``voice`` speaks from ``start`` to ``end`` seconds."""

    start: float
    end: float
    voice: Voice


@dataclass(frozen=True)
class Conversation:
    """The turns, what each listener does, and the clip's length."""

    turns: tuple[Turn, ...]
    duration: float
    listening: Callable[[Voice, float], Listening]
    seed: int = 1

    def speaker_at(self, t: float) -> Voice | None:
        """Who speaks at ``t`` (None in pauses)."""
        return next((turn.voice for turn in self.turns if turn.start <= t < turn.end), None)


def _syllables(turn: Turn, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """(start, length, loudness) of each syllable in a turn, with breath pauses."""
    out: list[tuple[float, float, float]] = []
    t = turn.start
    while True:
        length = float(rng.uniform(0.12, 0.26))
        if t + length > turn.end:
            return out
        out.append((t, length, float(rng.uniform(0.6, 1.0))))
        t += length + float(rng.uniform(0.03, 0.10))
        if rng.random() < 0.12:
            t += float(rng.uniform(0.15, 0.3))


def envelopes(talk: Conversation) -> dict[Voice, NDArray[np.float64]]:
    """Each voice's syllable envelope (0-1) at every audio sample."""
    rng = np.random.default_rng(talk.seed)
    count = round(talk.duration * RATE)
    out = {voice: np.zeros(count) for voice in PITCH}
    for turn in talk.turns:
        for start, length, loud in _syllables(turn, rng):
            begin, size = round(start * RATE), round(length * RATE)
            phase = np.linspace(0.0, math.pi, size)
            out[turn.voice][begin : begin + size] = loud * np.sin(phase) ** 0.8
    return out


def audio(talk: Conversation, shapes: dict[Voice, NDArray[np.float64]]) -> NDArray[np.float32]:
    """The mixed voices, mono at 48 kHz, with a little room noise."""
    rng = np.random.default_rng(talk.seed + 1)
    t = np.arange(len(shapes["left"])) / RATE
    mix = rng.normal(0.0, 0.002, len(t))
    for voice, shape in shapes.items():
        vibrato = 1 + 0.04 * np.sin(2 * math.pi * 0.7 * t + len(voice))
        phase = 2 * math.pi * np.cumsum(PITCH[voice] * vibrato) / RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 16))
        breath = rng.normal(0.0, 0.3, len(t))
        mix += 0.12 * shape * (voiced + breath)
    return np.clip(mix, -1, 1).astype(np.float32)


def _mouth(shape: NDArray[np.float64], t: float) -> float:
    """Mouth openness from a voice's envelope around ``t`` (20 ms average)."""
    at = round(t * RATE)
    part = shape[max(0, at - 480) : at + 480]
    return float(part.mean()) if len(part) else 0.0


def _listener(kind: Listening, x: float, t: float, mirror: bool) -> Placement:
    if kind == "chew":
        mouth = 0.5 * (1 - math.cos(2 * math.pi * 1.8 * t))
        return Placement(x, FACE_Y, 1.0, mouth, mirror)
    if kind == "laugh":
        bob = 6 * math.sin(2 * math.pi * 4.0 * t)
        return Placement(
            x, FACE_Y + bob, 1.0, 0.85 + 0.15 * math.sin(2 * math.pi * 4.0 * t), mirror
        )
    if kind == "nod":
        return Placement(x, FACE_Y + 14 * math.sin(2 * math.pi * 1.3 * t), 1.0, 0.0, mirror)
    return Placement(x, FACE_Y, 1.0, 0.0, mirror)


def placements(
    talk: Conversation, shapes: dict[Voice, NDArray[np.float64]], zoom: float = 1.0
) -> Callable[[float], Sequence[Placement]]:
    """The two faces at ``t``: the speaker's mouth follows its voice, the other listens.

    ``zoom``: positions and sizes for a canvas ``zoom`` times :data:`SIZE`.
    """

    def layout(t: float) -> Sequence[Placement]:
        faces = []
        for voice, x, mirror in (("left", LEFT_X, False), ("right", RIGHT_X, True)):
            if talk.speaker_at(t) == voice:
                face = Placement(x, FACE_Y, 1.0, 1.6 * _mouth(shapes[voice], t), mirror)
            else:
                face = _listener(talk.listening(voice, t), x, t, mirror)
            faces.append(Placement(face.cx * zoom, face.cy * zoom, zoom, face.mouth, face.mirror))
        return faces

    return layout


def write_conversation(
    path: Path, talk: Conversation, *, zoom: float = 1.0, preset: str = "ultrafast"
) -> Path:
    """Encode the conversation as an H.264 + AAC clip at 30 fps, ``zoom`` times 960x540."""
    shapes = envelopes(talk)
    return write_clip(
        path,
        layout=placements(talk, shapes, zoom),
        duration=talk.duration,
        size=(round(SIZE[0] * zoom), round(SIZE[1] * zoom)),
        fps=FPS,
        audio=audio(talk, shapes),
        preset=preset,
    )
