"""Check an installed wheel carries its data: render a captioned short with the bundled font."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

import klipmedia


def main(workdir: str) -> None:
    src = Path(workdir) / "smoke.mp4"
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for i in range(15):
            frame = av.VideoFrame.from_ndarray(np.full((180, 320, 3), 40, np.uint8), "rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert klipmedia.bundled_font().is_file(), "the caption font is missing from the wheel"
    result = klipmedia.render_short(
        src, Path(workdir) / "out.mp4", captions="1\n00:00:00,000 --> 00:00:00,500\nHi\n"
    )
    assert klipmedia.probe(result.path).height == 1920
    sys.stdout.write(f"wheel OK: {result.path}\n")


if __name__ == "__main__":
    main(sys.argv[1])
