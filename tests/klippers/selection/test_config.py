"""Choosing the scorer by name (``shorts_config.json`` ``scorer``, ``klip run --scorer``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from klippers.cli import cli
from klippers.contract import EXIT_BAD_INPUT
from klippers.jobs.runner import exit_code
from klippers.selection.config import ScorerConfigError, scorer_from_config
from klippers.selection.highlights import select_highlights
from klippers.selection.llm import LLMConfigError, LLMResponseError, LLMScorer
from klippers.selection.signals import EmbeddedScorer
from tests.klippers.selection.test_llm import FakeChatServer, _completion, _context, _prefer
from tests.support.talk import talk_video


@pytest.mark.parametrize("name", [None, "embedded", " Embedded "])
def test_embedded_is_the_default(name: str | None) -> None:
    assert isinstance(scorer_from_config(name, {}), EmbeddedScorer)


def test_unknown_names_are_bad_input() -> None:
    with pytest.raises(ScorerConfigError, match="embedded, llm") as caught:
        scorer_from_config("gpt", {})
    assert exit_code(caught.value) == EXIT_BAD_INPUT
    env = {"KLIPPERS_LLM_MODEL": "m", "KLIPPERS_LLM_BASE_URL": "https://h/v1"}
    with pytest.raises(ScorerConfigError, match="KLIPPERS_LLM_FALLBACK"):
        scorer_from_config("llm", {**env, "KLIPPERS_LLM_FALLBACK": "random"})


def test_llm_without_configuration_names_the_variable() -> None:
    with pytest.raises(LLMConfigError, match="KLIPPERS_LLM_MODEL is not set") as caught:
        scorer_from_config("llm", {})
    assert exit_code(caught.value) == EXIT_BAD_INPUT


def test_llm_from_the_environment_reaches_the_server() -> None:
    transcript, _ = _context()
    with FakeChatServer() as server:
        server.reply = _prefer("runway")
        env = {"KLIPPERS_LLM_MODEL": "local", "KLIPPERS_LLM_BASE_URL": server.url}
        scorer = scorer_from_config("llm", env)
        assert isinstance(scorer, LLMScorer)
        result = select_highlights(transcript, count=1, target_duration=45, scorer=scorer)
    assert "runway" in result.highlights[0].text
    assert server.requests[0][1]["model"] == "local"


def test_fallback_to_embedded_only_when_asked() -> None:
    transcript, _ = _context()
    with FakeChatServer() as server:
        server.reply = lambda body: (200, _completion("no JSON here"))
        env = {"KLIPPERS_LLM_MODEL": "m", "KLIPPERS_LLM_BASE_URL": server.url}
        with pytest.raises(LLMResponseError, match="not JSON"):
            select_highlights(transcript, count=1, scorer=scorer_from_config("llm", env))
        scorer = scorer_from_config("llm", {**env, "KLIPPERS_LLM_FALLBACK": "embedded"})
        result = select_highlights(transcript, count=1, target_duration=45, scorer=scorer)
    assert result.highlights[0].text.startswith("Why do most startups fail")


def test_klip_highlights_scorer_llm_asks_the_configured_server(tmp_path: Path) -> None:
    transcript, _ = _context()
    words = tmp_path / "original.words.json"
    words.write_text(transcript.to_json(), encoding="utf-8")
    args = ["highlights", str(words), "--count", "1", "--duration", "45", "--json"]
    runner = CliRunner()
    with FakeChatServer() as server:
        server.reply = _prefer("runway")
        env = {"KLIPPERS_LLM_MODEL": "local", "KLIPPERS_LLM_BASE_URL": server.url}
        result = runner.invoke(cli, [*args, "--scorer", "llm"], env=env)
    assert result.exit_code == 0, result.output
    assert "runway" in json.loads(result.output)["segments"][0]["text"]
    assert len(server.requests) == 1


def test_klip_run_scorer_llm_without_settings_is_bad_input_before_any_copy(
    tmp_path: Path,
) -> None:
    video = talk_video()
    env = {"KLIPPERS_LLM_MODEL": "", "KLIPPERS_LLM_BASE_URL": ""}
    result = CliRunner().invoke(
        cli, ["run", str(video), "--out", str(tmp_path / "out"), "--scorer", "llm"], env=env
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "KLIPPERS_LLM_MODEL is not set" in result.output
    assert not (tmp_path / "out").exists()
