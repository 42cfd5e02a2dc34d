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

from klippers.contract import DEFAULT_SCORER, ENV_LLM_FALLBACK, SCORERS
from klippers.selection.llm import LLMConfig, LLMScorer
from klippers.selection.signals import EmbeddedScorer, Scorer
from klippers.selection.units import HighlightsError

log = logging.getLogger(__name__)

FALLBACKS = ("none", "embedded")


class ScorerConfigError(HighlightsError):
    """An unknown scorer name or fallback (bad input: exit code 2)."""


def _fallback(env: Mapping[str, str]) -> str:
    fallback = env.get(ENV_LLM_FALLBACK, "none").strip().lower() or "none"
    if fallback not in FALLBACKS:
        raise ScorerConfigError(
            f"{ENV_LLM_FALLBACK} must be one of {', '.join(FALLBACKS)}, got {fallback!r}"
        )
    return fallback


def _chosen(name: str | None) -> str:
    chosen = (name or DEFAULT_SCORER).strip().lower()
    if chosen not in SCORERS:
        raise ScorerConfigError(f"scorer must be one of {', '.join(SCORERS)}, got {name!r}")
    return chosen


def scorer_recipe(name: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What identifies the choice the scorer ``name`` makes: its name, and for ``llm`` the
    provider, model and fallback (never the endpoint's key). A change re-selects.

    Raises the same errors as :func:`scorer_from_config`.
    """
    env = os.environ if environ is None else environ
    chosen = _chosen(name)
    if chosen == "embedded":
        return {"name": chosen}
    config = LLMConfig.from_env(env)
    return {
        "name": chosen,
        "provider": config.provider,
        "model": config.model,
        "fallback": _fallback(env),
    }


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
    if _chosen(name) == "embedded":
        return EmbeddedScorer()
    fallback = _fallback(env)
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
