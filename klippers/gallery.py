"""A small static ``index.html`` next to the shorts: thumbnails, scores, titles, players."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import klipmedia
from klipmedia.io import atomic_path
from klippers.contract import SHORTS_DIR, short_video_name

log = logging.getLogger(__name__)

GALLERY = "index.html"
THUMBS_DIR = "gallery"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; background: #111; color: #eee; }}
h1 {{ font-size: 1.4rem; }} .note {{ color: #aaa; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 1.5rem; }}
.short {{ width: 270px; background: #1c1c1c; border-radius: 10px; padding: 10px; }}
.short video {{ width: 270px; height: 480px; background: #000; border-radius: 6px; }}
.score {{ font-weight: 700; color: #ffd400; }} .title {{ font-weight: 600; margin: .4rem 0; }}
.meta, .reasons {{ color: #aaa; font-size: .85rem; }}
</style></head><body>
<h1>{title}</h1>
<p class="note">{note}</p>
<div class="grid">
{cards}
</div></body></html>
"""

_CARD = """<div class="short" data-rank="{rank}">
<video controls preload="metadata" poster="{poster}" src="{src}"></video>
<div><span class="score">{score}</span> · #{rank} · {duration}</div>
<div class="title">{title}</div>
<div class="reasons">{reasons}</div>
</div>"""


def write_gallery(video_folder: Path, manifest: Mapping[str, Any], title: str) -> Path:
    """Write ``index.html`` (and a poster per short) into ``video_folder``; return its path."""
    cards = [_card(video_folder, entry) for entry in _rendered(video_folder, manifest["segments"])]
    note = manifest.get("message") or f"{len(cards)} shorts, best first."
    page = _PAGE.format(title=html.escape(title), note=html.escape(note), cards="\n".join(cards))
    target = video_folder / GALLERY
    with atomic_path(target) as temp:
        temp.write_text(page, encoding="utf-8")
    return target


def _rendered(folder: Path, entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    present = [e for e in entries if (folder / SHORTS_DIR / short_video_name(e["index"])).exists()]
    missing = len(entries) - len(present)
    if missing:
        log.warning("%d short(s) missing from the gallery (not rendered)", missing)
    return present


def _card(folder: Path, entry: Mapping[str, Any]) -> str:
    index = int(entry["index"])
    video = f"{SHORTS_DIR}/{short_video_name(index)}"
    poster = f"{THUMBS_DIR}/segment_{index}.png"
    klipmedia.thumbnail(
        folder / video, folder / poster, at=min(1.0, entry["duration"] / 2), width=270
    )
    return _CARD.format(
        rank=index,
        poster=html.escape(poster),
        src=html.escape(video),
        score=f"{float(entry['score']):.0f}",
        duration=f"{float(entry['duration']):.0f} s",
        title=html.escape(str(entry.get("title", ""))),
        reasons=html.escape("; ".join(map(str, entry.get("reasons", [])))),
    )
