"""Caption layout: big styles, word-timed pages, and scripts the caption font lacks."""

from __future__ import annotations

import itertools
import logging
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont, features

import klipmedia
import klipmedia.text
from klipmedia import CaptionEvent, Captions, CaptionStyle, TimedWord
from klipmedia.frames import Planes
from klipmedia.text import (
    SAFE_BOTTOM,
    SAFE_TOP,
    CaptionPainter,
    Kind,
    blend,
    clusters,
    fallback_fonts,
    font_runs,
    visual_order,
)

WIDTH, HEIGHT = 1080, 1920
FPS = 30
SENTENCE = (
    "Captions must never fail a render or be cut off, however big the style asks "
    "the letters to be and however long the words are"
)
HAS_RAQM = features.check_feature("raqm") is True
SCRIPTS = {
    "zh": "我们今天去公园散步，天气非常好，大家都很开心。",
    "ja": "「こんにちは」と彼女は言った。東京タワーは高い。",
    "ar": "مرحبا بالعالم، كيف حالك اليوم؟ ١٢٣",
    "hi": "नमस्ते दुनिया, क्षत्रिय किताब पढ़ते हैं।",
    "th": "สวัสดีชาวโลก วันนี้อากาศดีมาก",
    "ko": "안녕하세요 세계",
}


def _cue(text: str) -> Captions:
    """``text`` as one SRT cue shown for 6 s."""
    return Captions.from_srt(f"1\n00:00:00,000 --> 00:00:06,000\n{text}\n")


def _frame(painter: CaptionPainter, event: CaptionEvent) -> Planes:
    """A mid-grey output frame with ``event`` blended on it."""
    planes = Planes(
        np.full((HEIGHT, WIDTH), 128, np.uint8),
        np.full((HEIGHT // 2, WIDTH // 2), 128, np.uint8),
        np.full((HEIGHT // 2, WIDTH // 2), 128, np.uint8),
    )
    blend(planes, painter.sprite(event))
    return planes


def _ink_box(planes: Planes) -> tuple[int, int, int, int]:
    """Left, top, right, bottom (exclusive) of the pixels the caption changed."""
    rows = np.flatnonzero((planes.y != 128).any(axis=1))
    cols = np.flatnonzero((planes.y != 128).any(axis=0))
    assert rows.size, "the caption drew nothing"
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _assert_inside_safe_area(painter: CaptionPainter, event: CaptionEvent) -> int:
    """Check that the caption's ink is inside the safe area; return its height."""
    left, top, right, bottom = _ink_box(_frame(painter, event))
    assert left >= 0
    assert right <= WIDTH
    assert top >= SAFE_TOP * HEIGHT, (event.text, top)
    assert bottom <= (1 - SAFE_BOTTOM) * HEIGHT, (event.text, bottom)
    return bottom - top


def _letters(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(
    ("style", "text"),
    [
        (CaptionStyle(font_size=200), SENTENCE),
        (CaptionStyle(font_size=200, min_font_size=200), SENTENCE),
        (CaptionStyle(font_size=400, min_font_size=400, max_lines=3), SENTENCE),
        (CaptionStyle(font_size=400, min_font_size=400, max_lines=3), "Éy Éy Éy Éy Éy Éy Éy"),
        (CaptionStyle(), "W" * 80),
        (CaptionStyle(font_size=200, min_font_size=120), "Pneumonoultramicroscopicsilicovolcano"),
        (CaptionStyle(font_size=300, min_font_size=300), "ok " + "x" * 40 + " bye"),
    ],
    ids=[
        "size-200",
        "floor-200",
        "floor-400-3-lines",
        "3-lines-too-tall",
        "long-word",
        "long-word-200",
        "floor-300",
    ],
)
def test_too_big_captions_shrink_then_page_and_stay_in_the_safe_area(
    style: CaptionStyle, text: str
) -> None:
    painter = CaptionPainter(style, WIDTH, HEIGHT, default_position=0.7)
    pages = painter.paginate(_cue(text)).events
    assert _letters("".join(e.text for e in pages)) == _letters(text)  # nothing dropped
    assert pages[0].start == 0.0
    assert pages[-1].end == 6.0
    assert all(a.end == b.start for a, b in itertools.pairwise(pages))
    for event in pages:
        height = _assert_inside_safe_area(painter, event)
        assert height >= 0.5 * style.min_font_size  # paged at the floor size, not shrunk below


def test_a_style_that_fits_is_shrunk_before_it_is_paged() -> None:
    painter = CaptionPainter(CaptionStyle(font_size=200), WIDTH, HEIGHT, default_position=0.7)
    caps = painter.paginate(_cue("A caption that fits when smaller"))
    assert len(caps.events) == 1
    _assert_inside_safe_area(painter, caps.events[0])


def test_unpaginated_events_and_tiny_frames_still_fit() -> None:
    event = _cue(SENTENCE * 3).events[0]
    painter = CaptionPainter(CaptionStyle(font_size=300, min_font_size=300), WIDTH, HEIGHT, 0.7)
    _assert_inside_safe_area(painter, event)  # never paginated: shrunk below the floor
    tiny = CaptionPainter(CaptionStyle(), 64, 96, default_position=0.7)
    sprite = tiny.sprite(_cue("Hello").events[0])
    assert sprite.x >= 0
    assert sprite.x + sprite.width <= 64
    assert sprite.y >= SAFE_TOP * 96
    assert sprite.y + sprite.height <= (1 - SAFE_BOTTOM) * 96


def _spoken_words() -> list[TimedWord]:
    words = "Everyone here has been waiting patiently for extraordinarily long announcements"
    return [TimedWord(0.4 * i, 0.4 * i + 0.35, w) for i, w in enumerate(words.split())]


def test_word_groups_page_by_the_words_own_times() -> None:
    words = _spoken_words()
    caps = Captions.from_words(words, max_words=len(words))
    style = CaptionStyle(font_size=110, min_font_size=110, max_lines=1)
    painter = CaptionPainter(style, WIDTH, HEIGHT, default_position=0.7)
    pages = painter.paginate(caps).events
    assert len({e.words for e in pages}) > 1, "the group should need several pages"
    # each word's event keeps its time and shows the page with that word highlighted
    assert [(e.start, e.end) for e in pages] == [(e.start, e.end) for e in caps.events]
    for original, page in zip(caps.events, pages, strict=True):
        assert original.highlight is not None
        assert page.highlight is not None
        assert page.words[page.highlight] == original.words[original.highlight]
        _assert_inside_safe_area(painter, page)
    # no page comes back once the next one was shown, and every frame shows a page
    shown = [words for words, _ in itertools.groupby(e.words for e in pages)]
    assert len(shown) == len(set(shown))
    frames = np.arange(round(caps.events[0].start * FPS), round(caps.events[-1].end * FPS))
    assert all(painter.paginate(caps).at(i / FPS) is not None for i in frames)


def test_a_word_split_across_pages_shares_its_time_and_stays_highlighted() -> None:
    words = [TimedWord(0.0, 0.5, "go"), TimedWord(0.5, 2.5, "W" * 40)]
    caps = Captions.from_words(words)
    painter = CaptionPainter(CaptionStyle(max_lines=1), WIDTH, HEIGHT, default_position=0.7)
    pages = painter.paginate(caps).events
    long_word = [e for e in pages if e.start >= 0.5]
    assert len(long_word) > 1
    assert long_word[0].start == 0.5
    assert long_word[-1].end == caps.events[-1].end
    assert all(a.end == b.start for a, b in itertools.pairwise(pages))
    assert all(e.highlight is not None and set(e.words[e.highlight]) == {"W"} for e in long_word)


def test_no_space_word_groups_stay_unspaced_on_their_pages() -> None:
    chars = "我们今天去公园散步天气非常好大家都很开心"
    words = [TimedWord(0.3 * i, 0.3 * i + 0.3, c) for i, c in enumerate(chars)]
    caps = Captions.from_words(words, max_words=len(words), language="zh")
    style = CaptionStyle(font_size=150, min_font_size=150, max_lines=1)
    painter = CaptionPainter(style, WIDTH, HEIGHT, default_position=0.7)
    pages = painter.paginate(caps).events
    assert len({e.words for e in pages}) > 1
    assert "".join(dict.fromkeys(e.text for e in pages)) == chars


def _is_package_font(path: Path) -> bool:
    """Whether ``path`` comes with klipmedia or a Python package (not the host's fonts)."""
    roots = [Path(klipmedia.__file__).parent, Path(sysconfig.get_paths()["purelib"])]
    return any(path.resolve().is_relative_to(root.resolve()) for root in roots)


def _cmap(path: Path) -> set[int]:
    with TTFont(path, lazy=True) as font:
        return set(font.getBestCmap())


def _bitmap(font: ImageFont.FreeTypeFont, text: str) -> bytes:
    image = Image.new("L", (160, 160))
    ImageDraw.Draw(image).text((40, 40), text, font=font, fill=255)
    return image.tobytes()


@pytest.mark.parametrize("language", sorted(SCRIPTS))
def test_every_character_has_a_glyph_in_a_packaged_font(language: str) -> None:
    painter = CaptionPainter(CaptionStyle(), WIDTH, HEIGHT, default_position=0.7)
    text = SCRIPTS[language]
    runs = font_runs(text, painter.fonts)
    assert "".join(t for t, _ in runs) == text
    for run, path in runs:
        assert _is_package_font(path), path
        cmap = _cmap(path)
        missing = {c for c in run if ord(c) not in cmap and c not in "\u200c\u200d"}
        assert not missing, (path.name, missing)
        font = ImageFont.truetype(str(path), 64)
        notdef = _bitmap(font, "\U0010fffd")  # what Pillow draws for a missing glyph
        tofu = {c for c in run if not c.isspace() and _bitmap(font, c) == notdef}
        assert not tofu, (path.name, tofu)


@pytest.mark.parametrize("language", sorted(SCRIPTS))
def test_scripts_render_inside_the_safe_area(language: str) -> None:
    painter = CaptionPainter(CaptionStyle(), WIDTH, HEIGHT, default_position=0.7)
    for event in painter.paginate(_cue(SCRIPTS[language] * 3)).events:
        _assert_inside_safe_area(painter, event)


def test_fallback_fonts_ship_with_the_package() -> None:
    for path in fallback_fonts():
        assert path.is_file()
        assert _is_package_font(path)


def _ink(painter: CaptionPainter, *words: str, highlight: int | None = None) -> np.ndarray:
    sprite = painter.sprite(CaptionEvent(0.0, 1.0, words, highlight))
    return np.asarray(sprite.y_inv < 128)


def _shapes(mask: np.ndarray) -> int:
    """How many separate (8-connected) shapes the pixels of ``mask`` make."""
    unseen = {(int(y), int(x)) for y, x in zip(*np.nonzero(mask), strict=True)}
    count = 0
    while unseen:
        count += 1
        stack = [unseen.pop()]
        while stack:
            y, x = stack.pop()
            for near in itertools.product((y - 1, y, y + 1), (x - 1, x, x + 1)):
                if near in unseen:
                    unseen.remove(near)
                    stack.append(near)
    return count


def _plain() -> CaptionPainter:
    style = CaptionStyle(font_size=120, min_font_size=120, outline_width=0, shadow=False)
    return CaptionPainter(style, WIDTH, HEIGHT, default_position=0.5)


@pytest.fixture(params=["raqm", "python"])
def shaping(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Shape with libraqm, and (forced) without it as on hosts without libfribidi."""
    if request.param == "raqm" and not HAS_RAQM:
        pytest.skip("Pillow has no libraqm here")
    if request.param == "python":
        monkeypatch.setattr(klipmedia.text, "_has_raqm", lambda: False)
    return str(request.param)


def test_arabic_letters_join(shaping: str) -> None:
    painter = _plain()
    assert _shapes(_ink(painter, "س ل م")) == 3  # apart: three shapes
    assert _shapes(_ink(painter, "سلم")) == 1  # one word: joined into one


def test_arabic_words_read_right_to_left(shaping: str) -> None:
    painter = CaptionPainter(CaptionStyle(shadow=False), WIDTH, HEIGHT, default_position=0.5)
    sprite = painter.sprite(CaptionEvent(0.0, 1.0, ("واحد", "اثنان", "ثلاثة"), highlight=0))
    alpha = 256 - sprite.c_inv.astype(np.int32)
    u = sprite.u_pre / np.maximum(alpha, 1)
    yellow = np.flatnonzero(((alpha > 200) & (u < 80)).any(axis=0))
    assert yellow.size
    assert yellow.min() > sprite.u_pre.shape[1] * 0.6  # the first word is on the right


@pytest.mark.skipif(not HAS_RAQM, reason="Devanagari needs libraqm to be shaped")
def test_devanagari_conjuncts_are_shaped() -> None:
    painter = _plain()
    conjunct = _ink(painter, "क्ष").shape[1]
    apart = _ink(painter, "क").shape[1] + _ink(painter, "ष").shape[1]
    assert conjunct < 0.75 * apart  # one ligature, not क + virama + ष


def test_devanagari_without_raqm_warns_that_it_is_unshaped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(klipmedia.text, "_has_raqm", lambda: False)
    with caplog.at_level(logging.WARNING, logger="klipmedia.text"):
        assert _ink(_plain(), "नमस्ते").any()
    assert "unshaped" in caplog.text


@pytest.mark.parametrize(
    ("kinds", "rtl", "order"),
    [
        (["L", "N", "L"], False, [0, 1, 2]),
        (["R", "N", "R"], False, [2, 1, 0]),
        (["L", "N", "R", "N", "R"], False, [0, 1, 4, 3, 2]),
        (["R", "N", "L", "N", "L", "N", "R"], True, [6, 5, 2, 3, 4, 1, 0]),
        (["N", "R"], True, [1, 0]),
    ],
)
def test_runs_are_put_in_bidi_display_order(kinds: list[Kind], rtl: bool, order: list[int]) -> None:
    assert [i for i, _ in visual_order(kinds, rtl)] == order


def test_marks_and_conjuncts_stay_with_their_base() -> None:
    assert clusters("ก่า") == ["ก่", "า"]
    assert clusters("नमस्ते") == ["न", "म", "स्ते"]
    assert clusters("e\u0301") == ["é"]
