"""Caption look and rasterisation: Pillow glyphs -> premultiplied YUV sprites -> numpy blend.

Characters the caption font lacks are drawn in fallback fonts that come with klipmedia,
never the host's: Noto Sans Arabic, Devanagari and Thai (in ``klipmedia/fonts``) and
Noto Sans CJK (the ``noto-cjk-sans-jp-bold`` package). The font is chosen per run of
characters, by the fonts' character maps. Pillow shapes the runs with libraqm where it
has it (joined Arabic, Devanagari conjuncts); without it Arabic is reshaped in Python
and Devanagari is drawn unshaped. Words are ordered right to left in Arabic captions.
"""

from __future__ import annotations

import functools
import itertools
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Literal

import arabic_reshaper  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from bidi.algorithm import get_display  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont, TTLibError  # type: ignore[import-untyped]
from PIL import Image, ImageColor, ImageDraw, ImageFont, features

from klipmedia.captions import CaptionEvent, Captions, is_cjk
from klipmedia.errors import CaptionError
from klipmedia.frames import Planes

log = logging.getLogger(__name__)

SAFE_TOP = 0.10
SAFE_BOTTOM = 0.15
_LINE_SPACING = 1.08
_SIZE_STEP = 4
_SHRINK = 0.9
"""Each size tried below ``min_font_size``, as a fraction of the one before."""
_CJK_FONT = ("noto_cjk_sans_jp_bold", "NotoSansCJKjp-Bold.otf")
_FONT_FILES = (
    "NotoSansArabic-ExtraBold.ttf",
    "NotoSansDevanagari-ExtraBold.ttf",
    "NotoSansThai-ExtraBold.ttf",
)
_NO_LINE_START = frozenset(
    "、。，．・：；？！ー）］｝〕〉》」』】〙〗〟’”»…‥,.!?:;)]}"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ々〻゛゜ゝゞヽヾ"
)
"""Closing punctuation and small kana, kept on the line of the character before."""
_NO_LINE_END = frozenset("（［｛〔〈《「『【〘〖〝‘“«([{")
"""Opening brackets, kept on the line of the character after."""
_JOINERS = frozenset("\u200c\u200d\ufe0e\ufe0f")
_INDIC = (0x0900, 0x0DFF)
"""Devanagari to Sinhala: scripts that are unreadable without shaping."""

U16 = npt.NDArray[np.uint16]
Kind = Literal["L", "R", "N"]
"""The bidi class of a run: left-to-right, right-to-left, or neutral (spaces, punctuation)."""


def bundled_font() -> Path:
    """Path of the caption font shipped with klipmedia (Inter ExtraBold, OFL-1.1)."""
    return Path(str(resources.files("klipmedia") / "fonts" / "Inter-ExtraBold.otf"))


def fallback_fonts() -> tuple[Path, ...]:
    """The fonts tried, in order, for characters the caption font lacks (all OFL-1.1).

    Examples
    --------
    >>> [path.name for path in fallback_fonts()]  # doctest: +NORMALIZE_WHITESPACE
    ['NotoSansArabic-ExtraBold.ttf', 'NotoSansDevanagari-ExtraBold.ttf',
     'NotoSansThai-ExtraBold.ttf', 'NotoSansCJKjp-Bold.otf']
    """
    folder = resources.files("klipmedia") / "fonts"
    package, name = _CJK_FONT
    cjk = resources.files(package) / name
    return (*(Path(str(folder / file)) for file in _FONT_FILES), Path(str(cjk)))


@functools.cache
def font_coverage(path: Path) -> frozenset[int]:
    """The code points the font at ``path`` has glyphs for (its best character map)."""
    try:
        with TTFont(path, lazy=True) as font:
            return frozenset(font.getBestCmap())
    except (OSError, TTLibError) as exc:
        raise CaptionError(f"cannot read caption font {path}: {exc}") from exc


def font_runs(text: str, fonts: Sequence[Path]) -> list[tuple[str, Path]]:
    """Split ``text`` into runs, each in the first of ``fonts`` that has all its characters.

    A base character and the marks on it stay in one font. Characters no font has
    stay in the first font (where they show as boxes).

    Examples
    --------
    >>> runs = font_runs("Hi 你好", (bundled_font(), *fallback_fonts()))
    >>> [(text, path.name) for text, path in runs]
    [('Hi ', 'Inter-ExtraBold.otf'), ('你好', 'NotoSansCJKjp-Bold.otf')]
    """
    runs: list[tuple[str, Path]] = []
    for cluster in clusters(text):
        font = _font_for(cluster, fonts)
        if runs and runs[-1][1] == font:
            runs[-1] = (runs[-1][0] + cluster, font)
        else:
            runs.append((cluster, font))
    return runs


def _font_for(cluster: str, fonts: Sequence[Path]) -> Path:
    """The first font with every character of ``cluster``, else with its first one."""
    needed = {ord(char) for char in cluster if char not in _JOINERS}
    for font in fonts:
        if needed <= font_coverage(font):
            return font
    return next((font for font in fonts if ord(cluster[0]) in font_coverage(font)), fonts[0])


def clusters(text: str) -> list[str]:
    """``text`` cut into user-perceived characters: a base with its marks and joiners,
    and a consonant after a virama (Devanagari conjuncts).

    Examples
    --------
    >>> clusters("née"), clusters("क्षि")
    (['n', 'é', 'e'], ['क्षि'])
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        joins = out and (
            unicodedata.category(char) in ("Mn", "Mc", "Me")
            or char in _JOINERS
            or out[-1][-1] in _JOINERS
            or unicodedata.combining(out[-1][-1]) == 9  # after a virama
        )
        if joins:
            out[-1] += char
        else:
            out.append(char)
    return out


def _kind(text: str) -> Kind:
    """The bidi class of a run: R if it has right-to-left letters, else L if it has
    letters or digits, else N."""
    classes = {unicodedata.bidirectional(char) for char in text}
    if classes & {"R", "AL"}:
        return "R"
    return "L" if classes & {"L", "EN", "AN"} else "N"


def _starts_rtl(text: str) -> bool:
    """Whether the first letter of ``text`` with a direction reads right to left (rule P2)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("L", "R", "AL"):
            return kind != "L"
    return False


def visual_order(kinds: Sequence[Kind], rtl: bool) -> list[tuple[int, bool]]:
    """Display order of the runs of one line, each with whether it reads right to left.

    The Unicode bidi algorithm on whole runs: a neutral run takes the direction of the
    strong runs around it when they agree, else the line's (rules N1, N2); then
    runs are reversed from the highest level down (rule L2), so right-to-left runs
    read from the right and a left-to-right run inside them keeps its order.

    Examples
    --------
    >>> visual_order(["R", "N", "R", "N", "L"], rtl=True)
    [(4, False), (3, True), (2, True), (1, True), (0, True)]
    """
    base: Kind = "R" if rtl else "L"
    resolved = list(kinds)
    for index, kind in enumerate(kinds):
        if kind == "N":
            before = next((k for k in reversed(kinds[:index]) if k != "N"), base)
            after = next((k for k in kinds[index + 1 :] if k != "N"), base)
            resolved[index] = before if before == after else base
    levels = [1 if kind == "R" else 2 if rtl else 0 for kind in resolved]
    order = list(range(len(kinds)))
    for level in range(max(levels, default=0), 0, -1):
        start = 0
        while start < len(order):
            end = start
            while end < len(order) and levels[order[end]] >= level:
                end += 1
            order[start:end] = reversed(order[start:end])
            start = end + 1
    return [(index, levels[index] % 2 == 1) for index in order]


@dataclass(frozen=True)
class CaptionStyle:
    """How captions look. Sizes are pixels on the output frame.

    ``position`` is the vertical centre of the caption block as a fraction of the
    frame height (None: at the seam of a stacked layout, else at 70 %); the
    block always stays inside the safe area, clear of the top 10 % and the
    bottom 15 % where platforms draw their buttons. A caption too big for the
    safe area at ``font_size`` is drawn smaller, down to ``min_font_size``, and
    beyond that shown in parts (see :meth:`CaptionPainter.paginate`).
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

    @property
    def shadow_offset(self) -> int:
        """How far (pixels, right and down) the shadow is drawn from the text; 0 without one."""
        return max(2, self.outline_width // 2) if self.shadow else 0


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


@dataclass(frozen=True)
class _Piece:
    """Caption text no line break goes inside: a word, or part of a long or CJK one."""

    word: int
    text: str
    spaced: bool
    """Whether a space comes before it (unless it starts a line)."""


@dataclass(frozen=True)
class _Run:
    """Text drawn in one font."""

    text: str
    font: Path
    kind: Kind


@dataclass(frozen=True)
class _Layout:
    size: int
    lines: tuple[tuple[int, ...], ...]
    """Indices of the pieces on each line."""


@dataclass(frozen=True)
class _Placed:
    """A run (or a space: None) of a line in display order."""

    run: _Run | None
    word: int
    rtl: bool = False


def _load_font(path: Path, size: int, engine: ImageFont.Layout) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(path), size, layout_engine=engine)
    except OSError as exc:
        raise CaptionError(f"cannot load caption font {path}: {exc}") from exc


def _has_raqm() -> bool:
    """Whether Pillow can shape text with libraqm (it needs the host's libfribidi)."""
    return features.check_feature("raqm") is True


class CaptionPainter:
    """Lays out, rasterises and blends captions for one output size.

    Each distinct caption image is rendered once and cached. ``fonts`` are tried in
    order for each run of characters: the style's font, the bundled one, then
    :func:`fallback_fonts`.
    """

    def __init__(self, style: CaptionStyle, width: int, height: int, default_position: float):
        self.style = style
        self.width = width
        self.height = height
        self.position = style.position if style.position is not None else default_position
        self.fonts = tuple(dict.fromkeys((style.font_path, bundled_font(), *fallback_fonts())))
        self._space_run = _Run(" ", self.fonts[0], "N")
        self._raqm = _has_raqm()
        self._sprites: dict[tuple[tuple[str, ...], tuple[bool, ...], int | None], Sprite] = {}
        self._fonts: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}  # per painter:
        # FreeType faces are not safe to share between threads rendering at the same time
        self._runs: dict[str, tuple[_Run, ...]] = {}
        self._widths: dict[tuple[int, str], float] = {}
        self._extents: dict[tuple[int, str], tuple[int, int]] = {}
        self._pieces: dict[tuple[tuple[str, ...], tuple[bool, ...]], tuple[_Piece, ...]] = {}
        self._layouts: dict[tuple[_Piece, ...], _Layout] = {}
        self._warned_unshaped = False

    def paginate(self, captions: Captions) -> Captions:
        """Split events too big for the safe area at ``min_font_size`` into pages.

        A page of a highlighted word group is shown while the words on it are
        spoken; other events share their time between pages by length.
        """
        events: list[CaptionEvent] = []
        for event in captions.events:
            pieces = self._pieces_of(event)
            pages = self._pages(pieces)
            if len(pages) == 1:
                events.append(event)
                continue
            if event.highlight in (None, 0):  # once per word group
                log.info(
                    "caption %r is too big for the safe area; showing it in %d parts",
                    event.text[:40],
                    len(pages),
                )
            events.extend(_paged(event, [pieces[a:b] for a, b in pages]))
        return Captions(tuple(events))

    def sprite(self, event: CaptionEvent) -> Sprite:
        """The (cached) sprite for ``event``."""
        key = (event.words, event.joined, event.highlight)
        if key not in self._sprites:
            self._sprites[key] = self._render(event)
        return self._sprites[key]

    def _font(self, path: Path, size: int) -> ImageFont.FreeTypeFont:
        key = (path, size)
        if key not in self._fonts:
            engine = ImageFont.Layout.RAQM if self._raqm else ImageFont.Layout.BASIC
            self._fonts[key] = _load_font(path, size, engine)
        return self._fonts[key]

    def _runs_of(self, text: str) -> tuple[_Run, ...]:
        """``text`` in runs of one font each (computed once per text)."""
        if text not in self._runs:
            runs = tuple(_Run(t, font, _kind(t)) for t, font in font_runs(text, self.fonts))
            self._warn_unshaped(text)
            self._runs[text] = runs
        return self._runs[text]

    def _warn_unshaped(self, text: str) -> None:
        """Say once that Indic text is drawn unshaped, where it is."""
        if self._raqm or self._warned_unshaped:
            return
        if any(_INDIC[0] <= ord(char) <= _INDIC[1] for char in text):
            log.warning(
                "drawing Indic captions unshaped: Pillow has no libraqm here "
                "(install the system's libfribidi to shape them)"
            )
            self._warned_unshaped = True

    def _shaped(self, run: _Run, rtl: bool) -> tuple[str, str | None]:
        """The text to draw for ``run`` and the direction to lay it out in (None: as given).

        Without libraqm, right-to-left text is reshaped to Arabic presentation forms
        and put in display order here.
        """
        if self._raqm:
            return run.text, "rtl" if rtl else "ltr"
        if rtl:
            return get_display(arabic_reshaper.reshape(run.text), base_dir="R"), None
        return run.text, None

    def _run_width(self, run: _Run, size: int) -> float:
        key = (size, run.text)
        if key not in self._widths:
            text, direction = self._shaped(run, run.kind == "R")
            self._widths[key] = self._font(run.font, size).getlength(text, direction=direction)
        return self._widths[key]

    def _run_extent(self, run: _Run, size: int) -> tuple[int, int]:
        """How far the ink of ``run`` reaches above and below the baseline."""
        key = (size, run.text)
        if key not in self._extents:
            text, direction = self._shaped(run, run.kind == "R")
            font = self._font(run.font, size)
            _, top, _, bottom = font.getbbox(text, anchor="ls", direction=direction)
            self._extents[key] = (-int(top), int(bottom))
        return self._extents[key]

    def _width(self, text: str, size: int) -> float:
        """Advance width of ``text`` at ``size`` (each run is measured once per size)."""
        return sum(self._run_width(run, size) for run in self._runs_of(text))

    def _space(self, size: int) -> float:
        return self._run_width(self._space_run, size)

    def _display_words(self, words: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(w.upper() for w in words) if self.style.uppercase else words

    def _max_width(self) -> float:
        style = self.style
        return self.width * style.max_width - 2 * style.outline_width - style.shadow_offset

    def _safe_rows(self) -> tuple[int, int]:
        """The first and the last-plus-one row of the safe area (both even)."""
        return _ceil_even(self.height * SAFE_TOP), int(self.height * (1 - SAFE_BOTTOM)) // 2 * 2

    def _max_height(self) -> int:
        top, bottom = self._safe_rows()
        return bottom - top - 2 * self.style.outline_width - self.style.shadow_offset

    def _pieces_of(self, event: CaptionEvent) -> tuple[_Piece, ...]:
        """The event's words as the pieces that lines may break between."""
        words = self._display_words(event.words)
        key = (words, event.joined)
        if key not in self._pieces:
            self._pieces[key] = tuple(
                _Piece(index, part, k == 0 and index > 0 and not event.joined[index])
                for index, word in enumerate(words)
                for k, part in enumerate(self._parts(word))
            )
        return self._pieces[key]

    def _parts(self, word: str) -> list[str]:
        """``word`` cut between CJK characters, and where it is too wide for a line even
        at ``min_font_size``."""
        return [chunk for part in _cjk_parts(word) for chunk in self._chunks(part)]

    def _chunks(self, text: str) -> list[str]:
        """``text`` in as few consecutive parts as fit a line at ``min_font_size``."""
        size, limit = self.style.min_font_size, self._max_width()
        if self._width(text, size) <= limit:
            return [text]
        chunks = [""]
        for cluster in clusters(text):
            if chunks[-1] and self._width(chunks[-1] + cluster, size) > limit:
                chunks.append("")
            chunks[-1] += cluster
        return chunks

    def _lines(self, pieces: Sequence[_Piece], size: int) -> list[list[int]] | None:
        """Greedy wrap into at most ``max_lines`` lines (indices of pieces) that fit the
        safe area at ``size``, or None."""
        space = self._space(size)
        limit = self._max_width()
        lines: list[list[int]] = [[]]
        width = 0.0
        for index, piece in enumerate(pieces):
            w = self._width(piece.text, size)
            if w > limit:
                return None
            gap = space if lines[-1] and piece.spaced else 0.0
            if lines[-1] and width + gap + w > limit:
                lines.append([])
                width, gap = 0.0, 0.0
            width += gap + w
            lines[-1].append(index)
        if len(lines) > self.style.max_lines:
            return None
        return lines if self._block_height(pieces, lines, size) <= self._max_height() else None

    def _line_extent(
        self, pieces: Sequence[_Piece], line: Sequence[int], size: int
    ) -> tuple[int, int]:
        """Ascent and descent of a line: the caption font's, or more where ink reaches further."""
        ascent, descent = self._font(self.fonts[0], size).getmetrics()
        for index in line:
            for run in self._runs_of(pieces[index].text):
                up, down = self._run_extent(run, size)
                ascent, descent = max(ascent, up), max(descent, down)
        return ascent, descent

    def _leading(self, size: int) -> int:
        """The space between two lines."""
        ascent, descent = self._font(self.fonts[0], size).getmetrics()
        return round((ascent + descent) * (_LINE_SPACING - 1))

    def _block_height(
        self, pieces: Sequence[_Piece], lines: Sequence[Sequence[int]], size: int
    ) -> int:
        extents = [self._line_extent(pieces, line, size) for line in lines]
        return sum(a + d for a, d in extents) + self._leading(size) * (len(lines) - 1)

    def _fit(self, pieces: Sequence[_Piece]) -> _Layout | None:
        """The largest size down to ``min_font_size`` (and its lines) that fits, if any."""
        style = self.style
        sizes = range(style.font_size, style.min_font_size, -_SIZE_STEP)
        for size in [*sizes, style.min_font_size]:
            lines = self._lines(pieces, size)
            if lines is not None:
                return _Layout(size, tuple(tuple(line) for line in lines))
        return None

    def _pages(self, pieces: tuple[_Piece, ...]) -> list[tuple[int, int]]:
        """Split ``pieces`` into as few pages (index ranges) as fit, of similar length."""
        if not pieces or self._fit(pieces) is not None:
            return [(0, len(pieces))]
        floor = self.style.min_font_size
        starts = [0]
        for end in range(2, len(pieces) + 1):
            if end - starts[-1] > 1 and self._lines(pieces[starts[-1] : end], floor) is None:
                starts.append(end - 1)
        greedy = list(itertools.pairwise([*starts, len(pieces)]))
        balanced = _balanced([len(piece.text) + 1 for piece in pieces], len(greedy))
        if all(self._fit(pieces[a:b]) is not None for a, b in balanced):
            return balanced
        return greedy

    def _layout(self, pieces: tuple[_Piece, ...]) -> _Layout:
        """Font size and lines of ``pieces`` (the same for every highlighted word)."""
        if pieces not in self._layouts:
            self._layouts[pieces] = self._fit(pieces) or self._shrunk(pieces)
        return self._layouts[pieces]

    def _shrunk(self, pieces: Sequence[_Piece]) -> _Layout:
        """Pieces too big for the safe area at ``min_font_size`` (an event that was not
        paginated, or a tiny frame): the largest smaller size that fits."""
        size = self.style.min_font_size
        while size > 1:
            size = max(1, int(size * _SHRINK))
            lines = self._lines(pieces, size)
            if lines is not None:
                return _Layout(size, tuple(tuple(line) for line in lines))
        return _Layout(1, tuple((index,) for index in range(len(pieces))))

    def _render(self, event: CaptionEvent) -> Sprite:
        pieces = self._pieces_of(event)
        if not pieces:
            raise CaptionError("a caption event needs at least one word")
        return self._place(self._draw(pieces, event.highlight, self._layout(pieces)))

    def _row(self, pieces: Sequence[_Piece], line: Sequence[int], rtl: bool) -> list[_Placed]:
        """The runs and spaces of a line in display order, left to right."""
        items: list[_Placed] = []
        for position, index in enumerate(line):
            piece = pieces[index]
            if position and piece.spaced:
                items.append(_Placed(None, piece.word))
            items.extend(_Placed(run, piece.word) for run in self._runs_of(piece.text))
        kinds: list[Kind] = ["N" if item.run is None else item.run.kind for item in items]
        return [replace(items[i], rtl=r) for i, r in visual_order(kinds, rtl)]

    def _advance(self, item: _Placed, size: int) -> float:
        return self._space(size) if item.run is None else self._run_width(item.run, size)

    def _draw(
        self, pieces: Sequence[_Piece], highlight: int | None, layout: _Layout
    ) -> Image.Image:
        style, size = self.style, layout.size
        rtl = _starts_rtl("".join(piece.text for piece in pieces))
        rows = [self._row(pieces, line, rtl) for line in layout.lines]
        widths = [sum(self._advance(item, size) for item in row) for row in rows]
        extents = [self._line_extent(pieces, line, size) for line in layout.lines]
        pad = style.outline_width * 2 + 4
        height = self._block_height(pieces, layout.lines, size) + 2 * pad
        canvas = Image.new("RGBA", (int(max(widths)) + 2 * pad, height))
        draw = ImageDraw.Draw(canvas)
        layers = [style.shadow_offset] if style.shadow else []
        for shadow in [*layers, 0]:  # every shadow under all of the text
            baseline = pad
            for row, width, (ascent, descent) in zip(rows, widths, extents, strict=True):
                baseline += ascent
                x = pad + (max(widths) - width) / 2
                self._draw_row(draw, row, (x, baseline), size, highlight, shadow)
                baseline += descent + self._leading(size)
        return canvas

    def _draw_row(
        self,
        draw: ImageDraw.ImageDraw,
        row: Sequence[_Placed],
        origin: tuple[float, int],
        size: int,
        highlight: int | None,
        shadow: int,
    ) -> None:
        """Draw one line from its left end on the baseline: its text, or with ``shadow``
        (the offset) its shadow."""
        style = self.style
        x, baseline = origin
        for item in row:
            if item.run is not None:
                color = style.highlight_color if item.word == highlight else style.text_color
                text, direction = self._shaped(item.run, item.rtl)
                draw.text(
                    (x + shadow, baseline + shadow),
                    text,
                    font=self._font(item.run.font, size),
                    anchor="ls",
                    direction=direction,
                    fill="#00000080" if shadow else color,
                    stroke_width=style.outline_width,
                    stroke_fill="#00000080" if shadow else style.outline_color,
                )
            x += self._advance(item, size)

    def _place(self, image: Image.Image) -> Sprite:
        """Crop to the drawn pixels and position inside the safe area (shrunk to fit if need be)."""
        rgba = np.asarray(image)
        rows = np.flatnonzero(rgba[:, :, 3].any(axis=1))
        cols = np.flatnonzero(rgba[:, :, 3].any(axis=0))
        safe_top, safe_bottom = self._safe_rows()
        if rows.size == 0:  # nothing visible: zero-width characters only
            return _sprite_from_rgba(np.zeros((2, 2, 4), np.uint8), 0, safe_top)
        top, left = rows[0] // 2 * 2, cols[0] // 2 * 2
        bottom, right = _ceil_even(rows[-1] + 1), _ceil_even(cols[-1] + 1)
        rgba = _pad_to(rgba, bottom, right)[top:bottom, left:right]
        scale = min(1.0, (safe_bottom - safe_top) / rgba.shape[0], self.width / rgba.shape[1])
        if scale < 1.0:
            log.warning("caption does not fit the safe area even at 1 px; scaling it down")
            size = (
                max(2, int(rgba.shape[1] * scale) // 2 * 2),
                max(2, int(rgba.shape[0] * scale) // 2 * 2),
            )
            rgba = np.asarray(Image.fromarray(rgba).resize(size, Image.Resampling.LANCZOS))
        h, w = rgba.shape[:2]
        y = int(self.position * self.height - h / 2)
        y = min(max(y, safe_top), safe_bottom - h) // 2 * 2
        x = (self.width - w) // 4 * 2
        return _sprite_from_rgba(rgba, x, y)


def _cjk_parts(word: str) -> list[str]:
    """``word`` cut where a line may break inside it: between CJK characters, keeping
    closing punctuation with the character before and opening brackets with the one after.

    Examples
    --------
    >>> _cjk_parts("「你好」，OK。")
    ['「你', '好」，', 'OK。']
    """
    parts: list[str] = []
    for cluster in clusters(word):
        breaks = (
            parts
            and (is_cjk(cluster[0]) or is_cjk(parts[-1][-1]))
            and cluster[0] not in _NO_LINE_START
            and parts[-1][-1] not in _NO_LINE_END
        )
        if breaks or not parts:
            parts.append(cluster)
        else:
            parts[-1] += cluster
    return parts


def _balanced(lengths: Sequence[int], count: int) -> list[tuple[int, int]]:
    """Index ranges cutting items of ``lengths`` into ``count`` runs of about equal length."""
    ends = np.cumsum(lengths)
    cuts = [int(np.searchsorted(ends, ends[-1] * i / count)) + 1 for i in range(1, count)]
    return [(a, b) for a, b in itertools.pairwise([0, *cuts, len(lengths)]) if b > a]


def _paged(event: CaptionEvent, pages: Sequence[Sequence[_Piece]]) -> list[CaptionEvent]:
    """``event`` shown in ``pages``: a highlighted word's event on the page(s) with that
    word, so a word group's pages follow the words' own times; others share the event's
    time between pages by length."""
    if event.highlight is not None:
        pages = [page for page in pages if any(p.word == event.highlight for p in page)]
    weights = [
        sum(len(p.text) for p in page if event.highlight in (None, p.word)) for page in pages
    ]
    shares = [done / sum(weights) for done in itertools.accumulate(weights[:-1])]
    starts = [event.start, *(event.start + (event.end - event.start) * s for s in shares)]
    stops = [*starts[1:], event.end]
    return [
        replace(_page_event(event, page), start=start, end=stop)
        for page, start, stop in zip(pages, starts, stops, strict=True)
    ]


def _page_event(event: CaptionEvent, page: Sequence[_Piece]) -> CaptionEvent:
    """``event`` with only the words (or parts of words) on ``page``."""
    words: list[str] = []
    joined: list[bool] = []
    highlight = None
    previous = None
    for piece in page:
        if piece.word == previous:
            words[-1] += piece.text
            continue
        if piece.word == event.highlight:
            highlight = len(words)
        joined.append(bool(words) and not piece.spaced)
        words.append(piece.text)
        previous = piece.word
    return replace(event, words=tuple(words), joined=tuple(joined), highlight=highlight)


def _ceil_even(value: float) -> int:
    """The smallest even integer not below ``value``."""
    return int(-(-int(np.ceil(value)) // 2) * 2)


def _pad_to(rgba: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    pad_h, pad_w = max(0, height - rgba.shape[0]), max(0, width - rgba.shape[1])
    if pad_h or pad_w:
        rgba = np.pad(rgba, ((0, pad_h), (0, pad_w), (0, 0)))
    return rgba


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
