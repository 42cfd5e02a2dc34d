from __future__ import annotations

import threading

import av
import numpy as np

from klipmedia.frames import Planes, frame_planes, planes_to_frame, reformat


def _ramp(width: int, height: int) -> av.VideoFrame:
    """A frame whose luma rises left to right, so scaling errors show."""
    y = np.tile(np.linspace(16, 235, width).astype(np.uint8), (height, 1))
    chroma = np.full((height // 2, width // 2), 128, np.uint8)
    return planes_to_frame(Planes(y, chroma, chroma.copy()))


def test_reformat_scales_every_geometry_it_is_asked_for() -> None:
    frame = _ramp(320, 180)
    for width, height in [(160, 90), (640, 360), (160, 90), (100, 100)] * 3:
        out = reformat(frame, width, height)
        assert (out.width, out.height, out.format.name) == (width, height, "yuv420p")
        luma = frame_planes(out).y.astype(int)
        assert luma[:, 0].mean() < 40
        assert luma[:, -1].mean() > 210
        assert np.all(np.diff(luma[height // 2]) >= -2)  # still a left-to-right ramp
    grey = reformat(frame, 80, 45, format="gray")
    assert grey.format.name == "gray"
    assert grey.to_ndarray().shape == (45, 80)


def test_reformat_is_safe_from_several_threads() -> None:
    sizes = [(160 + 16 * i, 90 + 8 * i) for i in range(12)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            frame = _ramp(320, 180)
            for i in range(60):
                width, height = sizes[(i + offset) % len(sizes)]
                out = reformat(frame, width, height)
                assert (out.width, out.height) == (width, height)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
