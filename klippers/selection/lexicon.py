"""Words and word lists shared by the signals and the titles (English lists; tokens for all)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def tokens(text: str) -> list[str]:
    """Lower-case words of ``text`` (letters and digits, inner apostrophes kept)."""
    return [t.lower() for t in _TOKEN.findall(text)]


def lexicon(words: str) -> frozenset[str]:
    """A word set from whitespace-separated ``words``."""
    return frozenset(words.split())


def is_english(language: str) -> bool:
    """Whether the English word lists apply to a transcript in ``language`` ("" = unknown)."""
    return language.lower().split("-")[0] in ("en", "")


STOPWORDS = lexicon(
    """a an the and or but so of to in on at by for with from as is are was were be been
    being am do does did have has had i you he she it we they me him her us them my your
    his its our their this that these those there here what which who whom whose when
    where why how not no yes all any some just very really about into over than then too
    can could would should will shall may might must let lets get got go going gonna like
    know think mean okay ok yeah um uh oh well right thing things stuff kind sort lot one
    also if because up down out off again more most much many such only own same other
    each few now hello hi"""
)
DANGLING = lexicon(
    """and but so or because also then this that these those it they he she which anyway
    plus however therefore though although yeah um uh"""
)
"""Openers that lean on what came before."""
POINTING = lexicon("it this that these those they he she there which")
"""Openers that point back to something said before."""
