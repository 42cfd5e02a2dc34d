from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import klipmedia
from klippers.cli import cli
from klippers.contract import EXIT_BAD_INPUT


def test_klip_render_writes_a_short(ramp_clip: Path, tmp_path: Path) -> None:
    srt = tmp_path / "c.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello\n")
    out = tmp_path / "short.mp4"
    result = CliRunner().invoke(
        cli,
        [
            "render",
            str(ramp_clip),
            "-o",
            str(out),
            "--srt",
            str(srt),
            "--layout",
            "full",
            "--preset",
            "ultrafast",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    info = klipmedia.probe(out)
    assert (info.width, info.height) == (1080, 1920)


def test_klip_render_reports_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    out = tmp_path / "short.mp4"
    result = CliRunner().invoke(cli, ["render", str(bad), "-o", str(out), "--reframe", "center"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "empty" in result.output
    assert not out.exists()


def test_klip_render_refuses_two_caption_sources(ramp_clip: Path, tmp_path: Path) -> None:
    srt = tmp_path / "c.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello\n")
    result = CliRunner().invoke(
        cli,
        [
            "render",
            str(ramp_clip),
            "-o",
            str(tmp_path / "o.mp4"),
            "--srt",
            str(srt),
            "--words",
            str(srt),
        ],
    )
    assert result.exit_code != 0
    assert "not both" in result.output
