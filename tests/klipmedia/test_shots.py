"""The shot plan on hand-made analyses: merging, scene cuts, lost faces, split, modes."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from klipmedia.crop import CropPath, Window
from klipmedia.faces import Face, ReframeError
from klipmedia.layout import Layout, panel_window
from klipmedia.reframe import Analysis, Sample
from klipmedia.shots import (
    SPLIT_FACE,
    SPLIT_MIN_SCALE,
    ReframePlan,
    Shot,
    plan_reframe,
    plan_shots,
    split_paths,
    wants_split,
)
from klipmedia.speaker import HOP, Loudness

PORTRAIT = Fraction(9, 16)
WIDTH, HEIGHT = 1920, 1080
RATE = 15
LEFT, RIGHT = 0.28, 0.72


def syllables(t: np.ndarray, seed: int) -> np.ndarray:
    """A speech-like envelope (0-1): bumps of random length at about 4 per second."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(t)
    start = 0.0
    while start < t[-1]:
        length = rng.uniform(0.12, 0.26)
        inside = (t >= start) & (t < start + length)
        out[inside] = np.sin(np.pi * (t[inside] - start) / length)
        start += length + rng.uniform(0.03, 0.1)
    return out


def conversation(
    duration: float,
    speaker_at: Callable[[float], int | None],
    *,
    seen: Callable[[int, float], bool] = lambda track, t: True,
    where: Callable[[int, float], float] = lambda track, t: (LEFT, RIGHT)[track],
    cuts: tuple[float, ...] = (),
) -> Analysis:
    """Two face tracks whose mouths open with the voice while ``speaker_at`` says they speak."""
    fine = np.arange(0, duration, HOP)
    voices = [syllables(fine, seed) for seed in (1, 2)]
    spoken = np.array([speaker_at(float(t)) for t in fine], dtype=object)
    envelope = sum(np.where(spoken == k, voices[k], 0.0) for k in (0, 1))
    level = Loudness(tuple(float(v) for v in 20 * np.log10(0.3 * envelope + 1e-3)))
    samples = []
    for t in np.arange(0, duration, 1 / RATE):
        faces = []
        for track in (0, 1):
            if not seen(track, t):
                continue
            index = min(int(t / HOP), len(fine) - 1)
            mouth = 0.15 + 0.3 * voices[track][index] * (speaker_at(t) == track)
            x = where(track, t) * WIDTH
            faces.append(Face(x - 75, 400, 150, 150, 0.9, track=track, mouth=float(mouth)))
        samples.append(Sample(float(t), tuple(faces)))
    return Analysis(WIDTH, HEIGHT, tuple(samples), cuts, level)


def centre_at(path: CropPath, t: float) -> float:
    return path.center_at(t)


def test_turns_become_shots_with_cuts_where_the_voice_changes() -> None:
    analysis = conversation(8.0, lambda t: 0 if 0.2 <= t < 3.8 else 1 if t >= 4.1 else None)
    path, shots, turns = plan_shots(analysis, aspect=PORTRAIT)
    assert [shot.track for shot in shots] == [0, 1]
    assert shots[1].start == pytest.approx(4.1, abs=0.1)
    assert [turn.track for turn in turns] == [0, 1]
    assert centre_at(path, 2.0) == pytest.approx(LEFT, abs=0.01)
    assert centre_at(path, 6.0) == pytest.approx(RIGHT, abs=0.01)


def test_a_turn_shorter_than_a_shot_is_merged() -> None:
    analysis = conversation(8.0, lambda t: 1 if 3.0 <= t < 3.5 else 0)
    _, shots, _ = plan_shots(analysis, aspect=PORTRAIT)
    assert [shot.track for shot in shots] == [0]


def test_silence_holds_the_last_speaker() -> None:
    analysis = conversation(9.0, lambda t: 0 if t < 2.5 else 1 if 4.0 <= t < 6.0 else None)
    _, shots, _ = plan_shots(analysis, aspect=PORTRAIT)
    assert [(shot.track, shot.end > 8.9) for shot in shots] == [(0, False), (1, True)]


def test_scene_cut_always_cuts() -> None:
    analysis = conversation(
        8.0,
        lambda t: 0,
        where=lambda track, t: (LEFT, RIGHT)[track] if t < 4.0 else (0.45, 0.8)[track],
        cuts=(4.0,),
    )
    path, shots, _ = plan_shots(analysis, aspect=PORTRAIT)
    assert [shot.start for shot in shots] == pytest.approx([0.0, 4.0])
    assert [a for a, b in zip(path.times, path.times[1:], strict=False) if a == b] == [4.0]
    assert centre_at(path, 6.0) == pytest.approx(0.45, abs=0.01)


def test_a_lost_speaker_is_held_then_the_other_face_is_framed() -> None:
    analysis = conversation(8.0, lambda t: 0, seen=lambda track, t: track == 1 or t < 3.0)
    path, _, _ = plan_shots(analysis, aspect=PORTRAIT)
    assert centre_at(path, 3.0 + 0.5) == pytest.approx(LEFT, abs=0.01)  # held
    assert centre_at(path, 7.9) == pytest.approx(RIGHT, abs=0.02)  # then the face on screen


def test_without_speech_the_most_prominent_face_is_framed() -> None:
    analysis = conversation(4.0, lambda t: None)
    _, shots, turns = plan_shots(analysis, aspect=PORTRAIT)
    assert turns == ()
    assert shots == (Shot(0.0, shots[0].end, shots[0].track, False, shots[0].center),)
    assert shots[0].center is not None


def test_face_mode_ignores_the_voices() -> None:
    analysis = conversation(8.0, lambda t: 1)
    _, shots, turns = plan_shots(analysis, aspect=PORTRAIT, speakers=False)
    assert turns == ()
    assert all(not shot.speaker for shot in shots)


def test_split_frames_the_left_and_right_person() -> None:
    analysis = conversation(6.0, lambda t: 0 if t < 3 else 1)
    paths = split_paths(analysis, aspect=Layout("split").crop_aspect)
    full = (1214, 1080)  # the largest 9:8 window of a 1080-row picture
    for path, x in zip(paths, (LEFT, RIGHT), strict=True):
        window = panel_window(path, 1.0, WIDTH, HEIGHT, full, Window(0, 0, WIDTH, HEIGHT))
        assert window.x + window.width / 2 == pytest.approx(x * WIDTH, abs=2)
        # the faces (150 px at row 400) are small: zoomed in as far as allowed
        assert window.height == pytest.approx(SPLIT_MIN_SCALE * 1080, abs=2)
        eyes = 400 + 0.4 * 150
        assert (eyes - window.y) / window.height == pytest.approx(1 / 3, abs=0.01)
    _, _, turns = plan_shots(analysis, aspect=PORTRAIT)
    assert wants_split(analysis, turns)


def test_split_zooms_until_the_face_fills_its_share_of_the_panel() -> None:
    big = Face(300, 100, 360, 360, 0.9, track=0)
    other = Face(1300, 500, 150, 150, 0.9, track=1)
    analysis = Analysis(WIDTH, HEIGHT, (Sample(0.0, (big, other)),), ())
    top, _ = split_paths(analysis, aspect=Layout("split").crop_aspect)
    window = panel_window(top, 0.0, WIDTH, HEIGHT, (1214, 1080), Window(0, 0, WIDTH, HEIGHT))
    assert big.height / window.height == pytest.approx(SPLIT_FACE, abs=0.01)
    assert window.y == 0  # the eyes would be a third down: clamped at the picture's top


def test_no_split_when_one_person_does_all_the_talking() -> None:
    analysis = conversation(8.0, lambda t: 0)
    _, _, turns = plan_shots(analysis, aspect=PORTRAIT)
    assert not wants_split(analysis, turns)


def test_no_split_when_the_two_are_rarely_seen_together() -> None:
    analysis = conversation(
        8.0, lambda t: 0 if t < 4 else 1, seen=lambda track, t: (t < 4) == (track == 0)
    )
    _, _, turns = plan_shots(analysis, aspect=PORTRAIT)
    assert not wants_split(analysis, turns)


def test_centre_mode_and_blurred_layout_need_no_analysis(ramp_clip: Path) -> None:
    plan = plan_reframe(ramp_clip, mode="center", layout="split")
    assert plan == ReframePlan(
        "center", Layout("split"), (CropPath.fixed(0.25), CropPath.fixed(0.75)), plan.content
    )
    blurred = plan_reframe(ramp_clip, layout="blurred")
    assert blurred.layout.kind == "blurred"
    assert blurred.analysis is None


def test_auto_without_two_speakers_falls_back(ramp_clip: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="needs the reframe extra (ai-edge-litert)")
    plan = plan_reframe(ramp_clip, layout="auto", fallback="full")
    assert plan.layout == Layout("full")
    assert plan.mode == "speaker"
    assert isinstance(plan.crop_path, CropPath)


def test_bad_mode_and_fallback_are_refused(ramp_clip: Path) -> None:
    with pytest.raises(ReframeError, match="mode"):
        plan_reframe(ramp_clip, mode="loudest")  # type: ignore[arg-type]
    with pytest.raises(ReframeError, match="fallback"):
        plan_reframe(ramp_clip, layout="auto", fallback="split")


def test_plan_answers_who_speaks_and_which_shot() -> None:
    analysis = conversation(8.0, lambda t: 0 if t < 3.8 else 1)
    path, shots, turns = plan_shots(analysis, aspect=PORTRAIT)
    plan = ReframePlan("speaker", Layout("full"), path, None, shots, turns, analysis)  # type: ignore[arg-type]
    assert plan.speaker_at(1.0) == 0
    assert plan.speaker_at(6.0) == 1
    shot = plan.shot_at(6.0)
    assert shot is not None
    assert shot.track == 1
    assert math.isclose(shot.center or 0.0, RIGHT, abs_tol=0.01)
