"""Caption look and rasterisation: Pillow glyphs -> premultiplied YUV sprites -> numpy blend."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageColor, ImageDraw, ImageFont

from klipmedia.captions import CaptionEvent, Captions
from klipmedia.errors import CaptionError
from klipmedia.frames import Planes

log = logging.getLogger(__name__)

SAFE_TOP = 0.10
SAFE_BOTTOM = 0.15
_LINE_SPACING = 1.08
_SIZE_STEP = 4

U16 = npt.NDArray[np.uint16]


def bundled_font() -> Path:
    """Path of the caption font shipped with klipmedia (Inter ExtraBold, OFL-1.1)."""
    return Path(str(resources.files("klipmedia") / "fonts" / "Inter-ExtraBold.otf"))


@dataclass(frozen=True)
class CaptionStyle:
    """How captions look. Sizes are pixels on the output frame.

    ``position`` is the vertical centre of the caption block as a fraction of the
    frame height (None: at the seam of a stacked layout, else at 70 %); the
    block always stays inside the safe area, clear of the top 10 % and the
    bottom 15 % where platforms draw their buttons.
    """

    font: Path | None = None
    font_size: int = 84
    min_font_size: int = 52
    text_color: str = "#FFFFFF"
    highlight_color: str = "#FFD400"
    outline_color: str = "#000000"
    outline_width: int = 8
    shadow: bool = True
    position: float | None = None
    max_lines: int = 2
    max_width: float = 0.86
    uppercase: bool = False

    def __post_init__(self) -> None:
        for name in ("text_color", "highlight_color", "outline_color"):
            try:
                ImageColor.getrgb(getattr(self, name))
            except ValueError as exc:
                raise CaptionError(f"caption style {name}: {exc}") from exc
        if not 8 <= self.min_font_size <= self.font_size:
            raise CaptionError("caption style needs 8 <= min_font_size <= font_size")
        if self.max_lines < 1 or not 0.2 <= self.max_width <= 1.0:
            raise CaptionError("caption style needs max_lines >= 1 and max_width in [0.2, 1]")
        if self.position is not None and not 0.0 <= self.position <= 1.0:
            raise CaptionError("caption style position must be a fraction of the height")

    @property
    def font_path(self) -> Path:
        """The font file in use (the bundled one unless ``font`` is given)."""
        return self.font if self.font is not None else bundled_font()


@dataclass(frozen=True)
class Sprite:
    """A caption image as premultiplied 4:2:0 planes placed at (``x``, ``y``), both even.

    Blend: ``out = (dst * inv + pre) >> 8`` per plane.
    """

    x: int
    y: int
    y_pre: U16
    y_inv: U16
    u_pre: U16
    v_pre: U16
    c_inv: U16

    @property
    def width(self) -> int:
        """Width in luma pixels."""
        return int(self.y_pre.shape[1])

    @property
    def height(self) -> int:
        """Height in luma pixels."""
        return int(self.y_pre.shape[0])


def _load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as exc:
        raise CaptionError(f"cannot load caption font {path}: {exc}") from exc


class CaptionPainter:
    """Lays out, rasterises and blends captions for one output size.

    Each distinct caption image is rendered once and cached.
    """

    def __init__(self, style: CaptionStyle, width: int, height: int, default_position: float):
        self.style = style
        self.width = width
        self.height = height
        self.position = style.position if style.position is not None else default_position
        self._sprites: dict[tuple[tuple[str, ...], int | None], Sprite] = {}
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}  # per painter: FreeType faces
        # are not safe to share between threads rendering at the same time
        self._widths: dict[tuple[int, str], float] = {}
        self._layouts: dict[tuple[str, ...], tuple[int, list[list[int]]]] = {}

    def _font(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._fonts:
            self._fonts[size] = _load_font(self.style.font_path, size)
        return self._fonts[size]

    def _width(self, text: str, size: int) -> float:
        """Advance width of ``text`` at ``size`` (each word is measured once per size)."""
        key = (size, text)
        if key not in self._widths:
            self._widths[key] = self._font(size).getlength(text)
        return self._widths[key]

    def paginate(self, captions: Captions) -> Captions:
        """Split events too long for ``max_lines`` at the smallest size into timed pages."""
        events: list[CaptionEvent] = []
        for event in captions.events:
            pages = self._pages(self._display_words(event.words))
            if len(pages) == 1:
                events.append(event)
                continue
            log.info(
                "caption %r is too long for %d lines; showing it in %d parts",
                event.text[:40],
                self.style.max_lines,
                len(pages),
            )
            events.extend(_split_event(event, pages))
        return Captions(tuple(events))

    def sprite(self, event: CaptionEvent) -> Sprite:
        """The (cached) sprite for ``event``."""
        key = (event.words, event.highlight)
        if key not in self._sprites:
            self._sprites[key] = self._render(event)
        return self._sprites[key]

    def _display_words(self, words: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(w.upper() for w in words) if self.style.uppercase else words

    def _max_width(self) -> float:
        return self.width * self.style.max_width - 2 * self.style.outline_width

    def _wrap(self, words: tuple[str, ...], size: int) -> list[list[int]] | None:
        """Greedy wrap into at most ``max_lines`` lines of word indices, or None."""
        space = self._width(" ", size)
        limit = self._max_width()
        lines: list[list[int]] = [[]]
        width = 0.0
        for index, word in enumerate(words):
            w = self._width(word, size)
            if w > limit:
                return None
            if lines[-1] and width + space + w > limit:
                lines.append([])
                width = 0.0
            width += (space if lines[-1] else 0.0) + w
            lines[-1].append(index)
        return lines if len(lines) <= self.style.max_lines else None

    def _fit(self, words: tuple[str, ...]) -> tuple[int, list[list[int]]] | None:
        """The largest font size (and its lines) that fits the words, if any."""
        for size in range(self.style.font_size, self.style.min_font_size - 1, -_SIZE_STEP):
            lines = self._wrap(words, size)
            if lines is not None:
                return size, lines
        return None

    def _pages(self, words: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Split ``words`` into as few pages as fit, of similar length (no orphan words)."""
        if not words or self._fit(words) is not None:
            return [words]
        greedy: list[tuple[str, ...]] = []
        current: list[str] = []
        for word in words:
            if current and self._fit((*current, word)) is None:
                greedy.append(tuple(current))
                current = []
            current.append(word)
        greedy.append(tuple(current))
        balanced = _balanced(words, len(greedy))
        if all(self._fit(page) is not None for page in balanced):
            return balanced
        return greedy

    def _layout(self, words: tuple[str, ...]) -> tuple[int, list[list[int]]]:
        """Font size and lines of ``words`` (the same for every highlighted word)."""
        if words not in self._layouts:
            self._layouts[words] = self._fit(words) or self._shrunk(words)
        return self._layouts[words]

    def _shrunk(self, words: tuple[str, ...]) -> tuple[int, list[list[int]]]:
        """One word wider than the frame even at the minimum size: shrink until it fits."""
        widest = max(self._width(w, self.style.min_font_size) for w in words)
        size = max(8, int(self.style.min_font_size * self._max_width() / widest))
        return size, [[i] for i in range(len(words))]

    def _render(self, event: CaptionEvent) -> Sprite:
        words = self._display_words(event.words)
        size, lines = self._layout(words)
        image = self._draw(words, event.highlight, size, lines)
        return self._place(image)

    def _draw(
        self,
        words: tuple[str, ...],
        highlight: int | None,
        size: int,
        lines: list[list[int]],
    ) -> Image.Image:
        style = self.style
        font = self._font(size)
        ascent, descent = font.getmetrics()
        line_height = round((ascent + descent) * _LINE_SPACING)
        space = self._width(" ", size)
        pad = style.outline_width * 2 + 4
        widths = [
            sum(self._width(words[i], size) for i in line) + space * (len(line) - 1)
            for line in lines
        ]
        canvas = Image.new("RGBA", (int(max(widths)) + 2 * pad, line_height * len(lines) + 2 * pad))
        draw = ImageDraw.Draw(canvas)
        for row, (line, line_width) in enumerate(zip(lines, widths, strict=True)):
            x = pad + (max(widths) - line_width) / 2
            y = pad + row * line_height
            for i in line:
                color = style.highlight_color if i == highlight else style.text_color
                if style.shadow:
                    offset = max(2, style.outline_width // 2)
                    draw.text(
                        (x + offset, y + offset),
                        words[i],
                        font=font,
                        fill="#00000080",
                        stroke_width=style.outline_width,
                        stroke_fill="#00000080",
                    )
                draw.text(
                    (x, y),
                    words[i],
                    font=font,
                    fill=color,
                    stroke_width=style.outline_width,
                    stroke_fill=style.outline_color,
                )
                x += self._width(words[i], size) + space
        return canvas

    def _place(self, image: Image.Image) -> Sprite:
        """Crop to the drawn pixels and position inside the safe area."""
        rgba = np.asarray(image)
        rows = np.flatnonzero(rgba[:, :, 3].any(axis=1))
        cols = np.flatnonzero(rgba[:, :, 3].any(axis=0))
        top, left = rows[0] // 2 * 2, cols[0] // 2 * 2
        bottom, right = _ceil_even(rows[-1] + 1), _ceil_even(cols[-1] + 1)
        rgba = _pad_to(rgba, bottom, right)[top:bottom, left:right]
        h, w = rgba.shape[:2]
        safe_top = _ceil_even(self.height * SAFE_TOP)
        safe_bottom = int(self.height * (1 - SAFE_BOTTOM)) // 2 * 2
        if h > safe_bottom - safe_top or w > self.width:
            raise CaptionError("caption is larger than the safe area; reduce the font size")
        y = int(self.position * self.height - h / 2)
        y = min(max(y, safe_top), safe_bottom - h) // 2 * 2
        x = (self.width - w) // 4 * 2
        return _sprite_from_rgba(rgba, x, y)


def _ceil_even(value: float) -> int:
    """The smallest even integer not below ``value``."""
    return int(-(-int(np.ceil(value)) // 2) * 2)


def _pad_to(rgba: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    pad_h, pad_w = max(0, height - rgba.shape[0]), max(0, width - rgba.shape[1])
    if pad_h or pad_w:
        rgba = np.pad(rgba, ((0, pad_h), (0, pad_w), (0, 0)))
    return rgba


def _balanced(words: tuple[str, ...], count: int) -> list[tuple[str, ...]]:
    """``words`` in ``count`` consecutive runs of about equal character length."""
    ends = np.cumsum([len(w) + 1 for w in words])
    cuts = [int(np.searchsorted(ends, ends[-1] * i / count)) + 1 for i in range(1, count)]
    bounds = [0, *cuts, len(words)]
    return [words[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _split_event(event: CaptionEvent, pages: list[tuple[str, ...]]) -> list[CaptionEvent]:
    """Share the event's time between pages in proportion to their length."""
    total = sum(len(" ".join(p)) for p in pages)
    events = []
    start = event.start
    for index, page in enumerate(pages):
        share = len(" ".join(page)) / total
        end = event.end if index == len(pages) - 1 else start + (event.end - event.start) * share
        events.append(replace(event, start=start, end=end, words=page, highlight=None))
        start = end
    return events


def _sprite_from_rgba(rgba: npt.NDArray[np.uint8], x: int, y: int) -> Sprite:
    """Convert straight-alpha RGBA to premultiplied BT.709 limited-range 4:2:0 planes."""
    rgb = rgba[:, :, :3].astype(np.float32) / 255.0
    alpha = rgba[:, :, 3].astype(np.float32) / 255.0
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    cb = (rgb[:, :, 2] - luma) / 1.8556
    cr = (rgb[:, :, 0] - luma) / 1.5748
    y_plane = 16 + 219 * luma
    a256 = np.rint(alpha * 256)
    a_c = _halve(alpha)
    a_c256 = np.rint(a_c * 256)
    # chroma of the premultiplied colour, averaged over each 2x2 block
    u_plane = np.where(a_c > 0, _halve((128 + 224 * cb) * alpha) / np.maximum(a_c, 1e-6), 128)
    v_plane = np.where(a_c > 0, _halve((128 + 224 * cr) * alpha) / np.maximum(a_c, 1e-6), 128)
    return Sprite(
        x=x,
        y=y,
        y_pre=np.rint(y_plane * a256).astype(np.uint16),
        y_inv=(256 - a256).astype(np.uint16),
        u_pre=np.rint(u_plane * a_c256).astype(np.uint16),
        v_pre=np.rint(v_plane * a_c256).astype(np.uint16),
        c_inv=(256 - a_c256).astype(np.uint16),
    )


def _halve(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The mean of each 2x2 block (even sizes)."""
    total = plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2]
    return np.asarray(total * 0.25, dtype=np.float32)


def blend(target: Planes, sprite: Sprite) -> None:
    """Draw ``sprite`` onto ``target`` in place."""
    _blend_plane(target.y, sprite.x, sprite.y, sprite.y_pre, sprite.y_inv)
    cx, cy = sprite.x // 2, sprite.y // 2
    _blend_plane(target.u, cx, cy, sprite.u_pre, sprite.c_inv)
    _blend_plane(target.v, cx, cy, sprite.v_pre, sprite.c_inv)


def _blend_plane(plane: npt.NDArray[np.uint8], x: int, y: int, pre: U16, inv: U16) -> None:
    h, w = pre.shape
    region = plane[y : y + h, x : x + w]
    mixed = region.astype(np.uint16)
    mixed *= inv
    mixed += pre
    mixed >>= 8
    region[...] = mixed
