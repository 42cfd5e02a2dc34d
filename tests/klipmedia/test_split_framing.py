"""The split layout frames each person: a rendered short of the synthetic two-person clip.

Each half of the output is searched for faces with BlazeFace: one face per half, large
(head and shoulders), horizontally centred, with its eyes about a third of the way down.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

pytest.importorskip("ai_edge_litert", reason="needs the reframe extra (ai-edge-litert)")
pytest.importorskip("skimage", reason="needs scikit-image for the face photos")

from klipmedia import EncodeSettings, render_short
from klipmedia.blazeface import BlazeFaceDetector
from klipmedia.frames import frame_planes, planes_to_frame
from klipmedia.shots import plan_reframe
from tests.klipmedia.conversation import Conversation, Turn, write_conversation

pytestmark = pytest.mark.slow

TALK = Conversation((Turn(0.3, 2.6, "left"), Turn(2.9, 5.4, "right")), 6.0, lambda voice, t: "nod")


def test_each_half_frames_its_person_head_and_shoulders(tmp_path: Path) -> None:
    clip = write_conversation(tmp_path / "talk.mp4", TALK)
    plan = plan_reframe(clip, layout="split")
    srt = "1\n00:00:00,000 --> 00:00:06,000\nTwo people, one short\n"
    out = render_short(
        clip,
        tmp_path / "split.mp4",
        layout=plan.layout,
        crop_path=plan.crop_path,
        content=plan.content,
        captions=srt,
        encode=EncodeSettings(preset="ultrafast"),
    ).path
    detector = BlazeFaceDetector()
    with av.open(str(out)) as container:
        frames = [f for i, f in enumerate(container.decode(video=0)) if i in (30, 90, 150)]
    for frame in frames:
        planes = frame_planes(frame.reformat(format="yuv420p"))
        for top in (0, 960):
            half = planes_to_frame(planes.crop(0, top, 1080, 960))
            faces = detector.detect(half)
            assert len(faces) == 1, (frame.pts, top, faces)
            face = faces[0]
            eyes = (face.keypoints[0][1] + face.keypoints[1][1]) / 2
            assert face.height >= 0.3 * 960  # fills the panel, not a small head
            assert 0.25 <= eyes / 960 <= 0.42  # eyes about a third of the way down
            assert abs(face.center_x - 540) <= 0.1 * 1080
