"""LLM scorer: real HTTP round trips to a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from klippers.contract import EXIT_BAD_INPUT, EXIT_TRANSIENT
from klippers.jobs.runner import exit_code
from klippers.selection.highlights import select_highlights
from klippers.selection.llm import (
    BedrockChat,
    LLMConfig,
    LLMConfigError,
    LLMRequestError,
    LLMResponseError,
    LLMScorer,
    OpenAIChat,
    parse_response,
)
from klippers.selection.signals import EmbeddedScorer, ScoringContext
from klippers.selection.units import Candidate, sentence_units
from tests.klippers.selection.test_highlights import PLANTED, _filler, _transcript

Reply = Callable[[dict[str, Any]], tuple[int, dict[str, Any] | str]]


class FakeChatServer:
    """Answers ``POST /v1/chat/completions`` with ``reply(request_json)``; records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.reply: Reply = lambda body: (500, "not configured")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((dict(self.headers), body))
                status, payload = server.reply(body)
                data = payload if isinstance(payload, str) else json.dumps(payload)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    with FakeChatServer() as fake:
        yield fake


def _completion(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def _ids(body: dict[str, Any]) -> list[int]:
    return [int(i) for i in re.findall(r"Passage id: (\d+)", body["messages"][1]["content"])]


def _prefer(word: str) -> Reply:
    """A model that loves passages mentioning ``word``."""

    def reply(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        passages = re.split(r"Passage id: \d+", body["messages"][1]["content"])[1:]
        segments = [
            {
                "id": i,
                "score": 95 if word in text else 10,
                "title": f"Passage {i}",
                "reasons": ["mentions " + word if word in text else "filler"],
            }
            for i, text in zip(_ids(body), passages, strict=True)
        ]
        return 200, _completion(json.dumps({"segments": segments}))

    return reply


def _context() -> tuple[Any, ScoringContext]:
    transcript, _ = _transcript(_filler(40, 5), PLANTED, _filler(40, 6))
    units = sentence_units(transcript, 45)
    return transcript, ScoringContext(units, "en", 45)


def test_llm_ranks_the_whole_shortlist_in_one_listwise_request(server: FakeChatServer) -> None:
    server.reply = _prefer("runway")
    transcript, _ = _context()
    scorer = LLMScorer(OpenAIChat(server.url, "test-model", api_key="sk-test"))
    result = select_highlights(transcript, count=2, target_duration=45, scorer=scorer, shortlist=10)
    assert "runway" in result.highlights[0].text
    assert result.highlights[0].score == 95
    assert result.highlights[0].reasons == ("mentions runway",)
    assert len(server.requests) == 1
    headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "test-model"
    assert body["temperature"] == 0
    assert body["response_format"]["json_schema"]["strict"] is True
    assert _ids(body) == list(range(1, 11))
    assert "compare them, then rank them all" in body["messages"][1]["content"]
    assert "best first" in body["messages"][0]["content"]


def test_each_passage_gets_its_share_of_the_prompt() -> None:
    _, context = _context()
    candidates = [Candidate(i, i + 30, 0.0, 60.0) for i in range(0, 60, 3)]
    prompt = LLMScorer(OpenAIChat("https://llm.example/v1", "m"), max_prompt_chars=4000).prompt(
        candidates, context
    )
    assert _ids({"messages": [{}, {"content": prompt}]}) == list(range(1, 21))
    assert len(prompt) < 4000 + 20 * 60
    assert prompt.count("[...]") == 20


@pytest.mark.parametrize(
    "url",
    ["http://llm.example.com/v1", "http://10.0.0.5:8000/v1", "ftp://127.0.0.1/v1", "127.0.0.1"],
)
def test_plain_http_is_refused_except_on_the_loopback(url: str) -> None:
    with pytest.raises(LLMConfigError, match=r"https://"):
        OpenAIChat(url, "m")
    with pytest.raises(LLMConfigError, match=r"https://"):
        LLMConfig.from_env({"KLIPPERS_LLM_MODEL": "m", "KLIPPERS_LLM_BASE_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "http://127.0.0.1:11434/v1",
        "http://[::1]:8000/v1",
        "http://localhost/v1",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert OpenAIChat(url, "m").base_url == url


def test_urls_in_messages_lose_their_user_info_and_query() -> None:
    with pytest.raises(LLMConfigError) as caught:
        OpenAIChat("http://user:hunter2@llm.example.com/v1?key=abc", "m")
    assert "hunter2" not in str(caught.value)
    assert "abc" not in str(caught.value)
    assert "llm.example.com" in str(caught.value)


def test_the_api_key_never_shows(server: FakeChatServer, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-123"
    server.reply = lambda body: (401, {"error": {"message": f"bad key Bearer {secret}"}})
    _, context = _context()
    config = LLMConfig.from_env(
        {
            "KLIPPERS_LLM_MODEL": "m",
            "KLIPPERS_LLM_BASE_URL": server.url,
            "KLIPPERS_LLM_API_KEY": secret,
        }
    )
    backend = config.backend()
    assert secret not in repr(config)
    assert secret not in repr(backend)
    with caplog.at_level("DEBUG"), pytest.raises(LLMRequestError) as caught:
        LLMScorer(backend).score([Candidate(0, 1, 0.0, 5.0)], context)
    assert "HTTP 401" in str(caught.value)
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None  # an auth failure is not worth a retry
    assert secret not in caplog.text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("I think passage 1 is great", "not JSON"),
        ('{"segments": [{"id": 1, "score": 150, "title": "t", "reasons": ["r"]}]}', "0-100"),
        ('{"segments": [{"id": 1, "score": 50, "title": "", "reasons": ["r"]}]}', "title"),
        ('{"segments": [{"id": 1, "score": 50, "title": "t", "reasons": []}]}', "reasons"),
        ('{"segments": [{"id": 9, "score": 50, "title": "t", "reasons": ["r"]}]}', "unknown"),
        ('{"segments": [{"id": "1", "score": 50, "title": "t", "reasons": ["r"]}]}', "type"),
        ('{"segments": [{"id": 1, "score": true, "title": "t", "reasons": ["r"]}]}', "type"),
        (
            '{"segments": [{"id": 1, "score": 5, "title": "t", "reasons": ["r"], "x": 1}]}',
            "exactly",
        ),
        ('{"segments": []}', "no entry for passage ids [1]"),
        ('{"results": []}', "missing 'segments'"),
    ],
)
def test_invalid_answers_raise_a_clear_error(
    server: FakeChatServer, content: str, problem: str
) -> None:
    server.reply = lambda body: (200, _completion(content))
    transcript, context = _context()
    candidate = select_highlights(transcript, count=1, target_duration=45).highlights[0]

    scorer = LLMScorer(OpenAIChat(server.url, "m"))
    with pytest.raises(LLMResponseError, match=re.escape(problem)):
        scorer.score([Candidate(0, 3, candidate.start, candidate.end)], context)


def test_fenced_json_is_accepted() -> None:
    text = '```json\n{"segments": [{"id": 1, "score": 61.5, "title": "T", "reasons": ["r"]}]}\n```'
    assert parse_response(text, [1])[1].score == 61.5


def test_http_error_is_a_request_error(server: FakeChatServer) -> None:
    server.reply = lambda body: (503, {"error": {"message": "overloaded"}})
    _, context = _context()

    with pytest.raises(LLMRequestError, match=r"HTTP 503.*overloaded") as caught:
        LLMScorer(OpenAIChat(server.url, "m")).score([Candidate(0, 1, 0.0, 5.0)], context)
    assert exit_code(caught.value) == EXIT_TRANSIENT


def test_unreachable_server_is_a_request_error(server: FakeChatServer) -> None:
    url = server.url
    server.httpd.server_close()
    _, context = _context()

    with pytest.raises(LLMRequestError, match="request failed"):
        LLMScorer(OpenAIChat(url, "m", timeout=2)).score([Candidate(0, 1, 0.0, 5.0)], context)


def test_fallback_only_when_configured(server: FakeChatServer) -> None:
    server.reply = lambda body: (200, _completion("not json"))
    transcript, _ = _context()
    with pytest.raises(LLMResponseError):
        select_highlights(
            transcript, count=1, target_duration=45, scorer=LLMScorer(OpenAIChat(server.url, "m"))
        )
    scorer = LLMScorer(OpenAIChat(server.url, "m"), fallback=EmbeddedScorer())
    result = select_highlights(transcript, count=1, target_duration=45, scorer=scorer)
    assert result.highlights[0].text.startswith("Why do most startups fail")


def test_config_from_env_names_what_is_missing() -> None:
    with pytest.raises(LLMConfigError, match="KLIPPERS_LLM_MODEL") as caught:
        LLMConfig.from_env({"KLIPPERS_LLM_BASE_URL": "https://x"})
    assert exit_code(caught.value) == EXIT_BAD_INPUT
    with pytest.raises(LLMConfigError, match="KLIPPERS_LLM_BASE_URL"):
        LLMConfig.from_env({"KLIPPERS_LLM_MODEL": "m"})
    with pytest.raises(LLMConfigError, match="PROVIDER"):
        LLMConfig.from_env({"KLIPPERS_LLM_PROVIDER": "cohere", "KLIPPERS_LLM_MODEL": "m"})
    with pytest.raises(LLMConfigError, match="TIMEOUT"):
        LLMConfig.from_env(
            {
                "KLIPPERS_LLM_MODEL": "m",
                "KLIPPERS_LLM_BASE_URL": "https://h",
                "KLIPPERS_LLM_TIMEOUT": "x",
            }
        )
    config = LLMConfig.from_env(
        {"KLIPPERS_LLM_MODEL": "m", "KLIPPERS_LLM_BASE_URL": "https://h/v1", "OPENAI_API_KEY": "k"}
    )
    assert config.backend() == OpenAIChat("https://h/v1", "m", "k", 120.0)
    bedrock = LLMConfig.from_env(
        {
            "KLIPPERS_LLM_PROVIDER": "bedrock",
            "KLIPPERS_LLM_MODEL": "anthropic.x",
            "AWS_REGION": "eu-west-1",
        }
    )
    assert bedrock.backend() == BedrockChat("anthropic.x", "eu-west-1")


def test_bedrock_converse_round_trip_with_stubbed_client() -> None:
    boto3 = pytest.importorskip("boto3")
    stub_module = pytest.importorskip("botocore.stub")
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    answer = '{"segments": [{"id": 1, "score": 77, "title": "Cash", "reasons": ["hook"]}]}'
    stubber = stub_module.Stubber(client)
    stubber.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 10, "outputTokens": 10, "totalTokens": 20},
            "metrics": {"latencyMs": 5},
        },
        {
            "modelId": "anthropic.test",
            "system": [{"text": stub_module.ANY}],
            "messages": [{"role": "user", "content": [{"text": stub_module.ANY}]}],
            "inferenceConfig": {"temperature": 0, "maxTokens": 4096},
        },
    )
    stubber.add_client_error("converse", "ThrottlingException", "slow down")
    _, context = _context()

    scorer = LLMScorer(BedrockChat("anthropic.test", client=client))
    with stubber:
        [assessment] = scorer.score([Candidate(0, 2, 0.0, 10.0)], context)
        assert (assessment.score, assessment.title) == (77, "Cash")
        with pytest.raises(LLMRequestError, match="ThrottlingException"):
            scorer.score([Candidate(0, 2, 0.0, 10.0)], context)
