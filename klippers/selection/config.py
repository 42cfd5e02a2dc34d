"""Choosing the scorer by name, as ``shorts_config.json``'s ``scorer`` and ``klip run --scorer`` do.

- ``embedded`` (the default): :class:`~klippers.selection.signals.EmbeddedScorer`, offline.
- ``llm``: :class:`~klippers.selection.llm.LLMScorer`, configured from the environment
  (:meth:`~klippers.selection.llm.LLMConfig.from_env`); it fails with a clear error unless
  ``KLIPPERS_LLM_FALLBACK=embedded`` asks for the embedded scorer when the LLM fails.

Examples
--------
>>> scorer_from_config("embedded", {})  # doctest: +ELLIPSIS
<klippers.selection.signals.EmbeddedScorer object at ...>
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from klippers.selection.llm import ENV, LLMConfig, LLMScorer
from klippers.selection.signals import EmbeddedScorer, Scorer
from klippers.selection.units import HighlightsError

log = logging.getLogger(__name__)

SCORERS = ("embedded", "llm")
"""The names :func:`scorer_from_config` accepts."""
DEFAULT_SCORER = "embedded"
FALLBACKS = ("none", "embedded")


class ScorerConfigError(HighlightsError):
    """An unknown scorer name or fallback (bad input: exit code 2)."""


def scorer_from_config(name: str | None, environ: Mapping[str, str] | None = None) -> Scorer:
    """The scorer called ``name`` (None: :data:`DEFAULT_SCORER`), set up from ``environ``.

    Raises
    ------
    ScorerConfigError
        For a name not in :data:`SCORERS` or a bad ``KLIPPERS_LLM_FALLBACK``.
    klippers.selection.llm.LLMConfigError
        When ``llm`` is asked for and its configuration is missing or invalid.
    """
    env = os.environ if environ is None else environ
    chosen = (name or DEFAULT_SCORER).strip().lower()
    if chosen == "embedded":
        return EmbeddedScorer()
    if chosen != "llm":
        raise ScorerConfigError(f"scorer must be one of {', '.join(SCORERS)}, got {name!r}")
    fallback = env.get(f"{ENV}FALLBACK", "none").strip().lower() or "none"
    if fallback not in FALLBACKS:
        raise ScorerConfigError(
            f"{ENV}FALLBACK must be one of {', '.join(FALLBACKS)}, got {fallback!r}"
        )
    config = LLMConfig.from_env(env)
    log.info(
        "scoring with the LLM %s (%s)%s",
        config.model,
        config.provider,
        ", falling back to the embedded scorer on failure" if fallback == "embedded" else "",
    )
    return LLMScorer(
        config.backend(), fallback=EmbeddedScorer() if fallback == "embedded" else None
    )
