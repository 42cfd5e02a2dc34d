"""klipmedia: turn landscape clips into vertical shorts with PyAV and numpy.

Render a short in one call::

    import klipmedia
    klipmedia.render_short("seg.mp4", "out.mp4", background="bg.mp4", captions="seg.srt")

Frame whoever speaks (or both people, ``layout="split"``; ``"auto"`` chooses)::

    plan = klipmedia.plan_reframe("seg.mp4", mode="speaker", layout="auto")
    klipmedia.render_short("seg.mp4", "out.mp4", layout=plan.layout,
                           crop_path=plan.crop_path, content=plan.content)
"""

from klipmedia.captions import CaptionEvent, Captions, TimedWord
from klipmedia.crop import CropPath, Window, place_window, window_size
from klipmedia.cut import CutResult, CutSettings, cut_segment
from klipmedia.encode import EncodeSettings
from klipmedia.errors import (
    CaptionError,
    CutRangeError,
    EmptyMediaError,
    KlipmediaError,
    MediaError,
    MediaNotFoundError,
    NoVideoStreamError,
    RenderError,
    UnreadableMediaError,
)
from klipmedia.layout import Layout
from klipmedia.letterbox import detect_content
from klipmedia.probe import MediaInfo, probe
from klipmedia.render import RenderResult, render_short
from klipmedia.shots import ReframePlan, Shot, Turn, plan_reframe
from klipmedia.text import CaptionStyle, bundled_font
from klipmedia.thumbnail import thumbnail

__version__ = "0.1.0"

__all__ = [
    "CaptionError",
    "CaptionEvent",
    "CaptionStyle",
    "Captions",
    "CropPath",
    "CutRangeError",
    "CutResult",
    "CutSettings",
    "EmptyMediaError",
    "EncodeSettings",
    "KlipmediaError",
    "Layout",
    "MediaError",
    "MediaInfo",
    "MediaNotFoundError",
    "NoVideoStreamError",
    "ReframePlan",
    "RenderError",
    "RenderResult",
    "Shot",
    "TimedWord",
    "Turn",
    "UnreadableMediaError",
    "Window",
    "bundled_font",
    "cut_segment",
    "detect_content",
    "place_window",
    "plan_reframe",
    "probe",
    "render_short",
    "thumbnail",
    "window_size",
]
