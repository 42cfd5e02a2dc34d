"""Optional LLM scorer for highlights: :class:`LLMScorer` behind the :class:`Scorer` interface.

The embedded scorer picks a diverse shortlist; the LLM sees all of it in one listwise
prompt (compare the passages, then rate and rank them) and answers with JSON matching
:data:`RESPONSE_SCHEMA`, validated before use. Two backends: any OpenAI-compatible
``/chat/completions`` endpoint (OpenAI, Ollama, vLLM, ...; stdlib HTTP, ``https://``, or
``http://`` on the loopback only) and Amazon Bedrock's Converse API (``boto3``, imported
only when used). Every failure raises a typed :class:`LLMError`; falling back to another
scorer only happens when one is given explicitly (``fallback=``). The API key never
appears in a repr, a log line or an error message.

Configuration from the environment (:meth:`LLMConfig.from_env`):

``KLIPPERS_LLM_PROVIDER``  ``openai`` (default) or ``bedrock``
``KLIPPERS_LLM_MODEL``     model name / Bedrock model id (required)
``KLIPPERS_LLM_BASE_URL``  e.g. ``https://api.openai.com/v1`` (required for ``openai``)
``KLIPPERS_LLM_API_KEY``   bearer token (or ``OPENAI_API_KEY``); optional for local servers
``KLIPPERS_LLM_REGION``    Bedrock region (or ``AWS_REGION``)
``KLIPPERS_LLM_TIMEOUT``   seconds per request (default 120)

Examples
--------
>>> scorer = LLMScorer(LLMConfig.from_env().backend())  # doctest: +SKIP
>>> select_highlights(transcript, count=3, scorer=scorer)  # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from klippers.contract import (
    ENV_LLM_API_KEY,
    ENV_LLM_BASE_URL,
    ENV_LLM_MODEL,
    ENV_LLM_PROVIDER,
    ENV_LLM_REGION,
    ENV_LLM_TIMEOUT,
)
from klippers.selection.signals import Assessment, Scorer, ScoringContext
from klippers.selection.units import Candidate, HighlightsError

log = logging.getLogger(__name__)

MAX_TITLE = 120
MAX_REASON = 300
MAX_REASONS = 8

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["segments"],
    "properties": {
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "score", "title", "reasons"],
                "properties": {
                    "id": {"type": "integer"},
                    "score": {"type": "number", "minimum": 0, "maximum": 100},
                    "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
                    "reasons": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_REASONS,
                        "items": {"type": "string", "minLength": 1, "maxLength": MAX_REASON},
                    },
                },
            },
        }
    },
}
"""JSON schema of the model's answer (sent to servers that support structured output)."""

SYSTEM_PROMPT = """You pick passages of a long video's transcript to publish as vertical shorts.
You get several numbered passages of the same video. First compare them with each other:
which would make a viewer laugh, gasp or share it? A strong hook in the first seconds
(question, bold claim, number, surprise), a story or exchange with a payoff, understandable
without the rest of the video, ending on a finished thought. Then rank them all, best first,
and give each a score from 0 to 100 that follows your ranking (better passage, higher score).
Answer with JSON only, exactly: {"segments": [{"id": <passage id>, "score": <0-100>,
"title": "<headline under 60 characters, in the transcript's language>",
"reasons": ["<short reason>", ...]}]} with one entry per passage id, best first."""


class LLMError(RuntimeError):
    """The LLM scorer failed; catch this for every LLM failure."""


class LLMConfigError(LLMError, HighlightsError):
    """The LLM configuration is missing or invalid (bad input: exit code 2)."""


class LLMRequestError(LLMError):
    """The request could not be made or the service answered with an error."""


class LLMResponseError(LLMError, ValueError):
    """The service answered, but not with JSON matching :data:`RESPONSE_SCHEMA`."""


class ChatBackend(Protocol):
    """Sends one system + user message pair, returns the assistant's text."""

    def complete(self, system: str, user: str) -> str: ...


@dataclass(frozen=True)
class OpenAIChat:
    """An OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 120.0
    structured: bool = True
    """Ask for ``response_format: json_schema``; turn off for servers that reject it."""

    def __post_init__(self) -> None:
        check_endpoint(self.base_url)

    def complete(self, system: str, user: str) -> str:
        """The first choice's message content; raises :class:`LLMRequestError`."""
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        }
        if self.structured:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "segments", "strict": True, "schema": RESPONSE_SCHEMA},
            }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        endpoint = self.base_url.rstrip("/") + "/chat/completions"
        url = display_url(endpoint)
        request = urllib.request.Request(
            endpoint, json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = self._redact(exc.read()[:500].decode("utf-8", "replace"))
            message = f"{url}: HTTP {exc.code} {exc.reason}: {detail}"
            if exc.code in RETRYABLE_STATUS or exc.code >= 500:
                raise LLMRequestError(message) from exc  # transient: a retry may succeed
            raise LLMRequestError(message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise LLMRequestError(f"{url}: request failed ({self._redact(str(exc))})") from exc
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMResponseError(f"{url}: not a chat completion response ({exc})") from exc
        if not isinstance(content, str):
            raise LLMResponseError(f"{url}: the completion has no text content")
        return content

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, "[API key]") if self.api_key else text


RETRYABLE_STATUS = frozenset({408, 429})
"""HTTP statuses below 500 worth a retry (timeout, rate limit)."""
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def check_endpoint(base_url: str) -> None:
    """Refuse a URL that is not ``https://``, except plain ``http://`` on the loopback.

    Raises
    ------
    LLMConfigError
        Naming the problem (the URL's user info, which may hold a secret, is left out).
    """
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or ""
    shown = display_url(base_url)
    if parts.scheme == "https" and host:
        return
    if parts.scheme != "http" or not host:
        raise LLMConfigError(f"the LLM endpoint must be an https:// URL, got {shown!r}")
    if not _loopback(host):
        raise LLMConfigError(
            f"refusing plain http:// to {host!r}: the API key and transcript would travel "
            "unencrypted; use https://, or http:// on the loopback (127.0.0.1, ::1, localhost)"
        )


def display_url(url: str) -> str:
    """``url`` without user info or query (either may hold a secret), for messages."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class BedrockChat:
    """Amazon Bedrock's Converse API (``boto3`` is imported on first use)."""

    model_id: str
    region: str | None = None
    client: Any = None
    """A ``bedrock-runtime`` client; one is created from ``region`` when None."""
    max_tokens: int = 4096

    def complete(self, system: str, user: str) -> str:
        """The assistant's text; raises :class:`LLMRequestError` on service errors."""
        import botocore.exceptions  # type: ignore[import-untyped]

        client = self.client or self._client()
        try:
            response = client.converse(
                modelId=self.model_id,
                system=[{"text": system}],
                messages=[{"role": "user", "content": [{"text": user}]}],
                inferenceConfig={"temperature": 0, "maxTokens": self.max_tokens},
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise LLMRequestError(f"bedrock {self.model_id}: {exc}") from exc
        try:
            blocks = response["output"]["message"]["content"]
            return "".join(block["text"] for block in blocks if "text" in block)
        except (KeyError, TypeError) as exc:
            raise LLMResponseError(f"bedrock {self.model_id}: unexpected response") from exc

    def _client(self) -> Any:
        try:
            import boto3  # type: ignore[import-untyped]
        except ImportError as exc:
            raise LLMConfigError(
                "the Bedrock scorer needs boto3: pip install 'klippers[aws]'"
            ) from exc
        return boto3.client("bedrock-runtime", region_name=self.region)


@dataclass(frozen=True)
class LLMConfig:
    """Which LLM to ask; see the module docstring for the environment variables."""

    provider: Literal["openai", "bedrock"]
    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    region: str | None = None
    timeout: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMConfig:
        """Read the configuration; raises :class:`LLMConfigError` naming what is missing."""
        env = os.environ if env is None else env
        provider = env.get(ENV_LLM_PROVIDER, "openai").strip().lower()
        if provider not in ("openai", "bedrock"):
            raise LLMConfigError(
                f"{ENV_LLM_PROVIDER} must be 'openai' or 'bedrock', got {provider!r}"
            )
        model = env.get(ENV_LLM_MODEL, "").strip()
        if not model:
            raise LLMConfigError(f"{ENV_LLM_MODEL} is not set (the model name or Bedrock model id)")
        base_url = env.get(ENV_LLM_BASE_URL, "").strip() or None
        if provider == "openai":
            if not base_url:
                raise LLMConfigError(
                    f"{ENV_LLM_BASE_URL} is not set (e.g. https://api.openai.com/v1, "
                    "or http://127.0.0.1:11434/v1 for a local Ollama)"
                )
            check_endpoint(base_url)
        try:
            timeout = float(env.get(ENV_LLM_TIMEOUT, "120"))
        except ValueError:
            timeout = math.nan
        if not timeout > 0:
            raise LLMConfigError(f"{ENV_LLM_TIMEOUT} must be positive seconds, got {timeout}")
        return cls(
            provider="bedrock" if provider == "bedrock" else "openai",
            model=model,
            base_url=base_url,
            api_key=env.get(ENV_LLM_API_KEY) or env.get("OPENAI_API_KEY") or None,
            region=env.get(ENV_LLM_REGION) or env.get("AWS_REGION") or None,
            timeout=timeout,
        )

    def backend(self) -> ChatBackend:
        """The chat backend this configuration describes."""
        if self.provider == "bedrock":
            return BedrockChat(self.model, self.region)
        assert self.base_url is not None
        return OpenAIChat(self.base_url, self.model, self.api_key, self.timeout)


class LLMScorer:
    """Rates the whole shortlist in one listwise request to an LLM.

    Each passage's text is cut to its share of ``max_prompt_chars``, so the prompt fits
    small local models too. Raises :class:`LLMError` on any failure, unless ``fallback``
    is given: then the failure is logged and ``fallback`` scores the candidates instead.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        max_prompt_chars: int = 24_000,
        fallback: Scorer | None = None,
    ) -> None:
        if max_prompt_chars < 1000:
            raise LLMConfigError(f"max_prompt_chars must be >= 1000, got {max_prompt_chars}")
        self.backend = backend
        self.max_prompt_chars = max_prompt_chars
        self.fallback = fallback

    def score(self, candidates: Sequence[Candidate], context: ScoringContext) -> list[Assessment]:
        """One assessment per candidate, in order."""
        if not candidates:
            return []
        try:
            return self._ask(candidates, context)
        except LLMError as exc:
            if self.fallback is None:
                raise
            log.warning("LLM scorer failed (%s); using the fallback scorer", exc)
            return self.fallback.score(candidates, context)

    def _ask(self, candidates: Sequence[Candidate], context: ScoringContext) -> list[Assessment]:
        ids = list(range(1, len(candidates) + 1))
        prompt = self.prompt(candidates, context)
        log.info("asking the LLM to rank %d passages (%d characters)", len(ids), len(prompt))
        answer = parse_response(self.backend.complete(SYSTEM_PROMPT, prompt), ids)
        return [answer[i] for i in ids]

    def prompt(self, candidates: Sequence[Candidate], context: ScoringContext) -> str:
        """The user message: the passages numbered from 1, each cut to its share."""
        share = max(200, self.max_prompt_chars // len(candidates))
        lines = [
            f"Transcript language: {context.language}. "
            f"Target short duration: {context.target_duration:.0f} s. "
            f"{len(candidates)} passages; compare them, then rank them all.",
            "",
        ]
        for passage_id, candidate in enumerate(candidates, start=1):
            text = context.text(candidate)
            if len(text) > share:
                text = text[:share].rsplit(" ", 1)[0] + " [...]"
            lines += [f"Passage id: {passage_id} ({candidate.duration:.0f} s)", text, ""]
        return "\n".join(lines)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_response(text: str, ids: Sequence[int]) -> dict[int, Assessment]:
    """Validate the model's answer against :data:`RESPONSE_SCHEMA` and the expected ids.

    Raises
    ------
    LLMResponseError
        Naming the first problem found.
    """
    fenced = _FENCE.match(text)
    try:
        document = json.loads(fenced.group(1) if fenced else text)
    except ValueError as exc:
        raise LLMResponseError(f"the answer is not JSON ({exc}): {text[:200]!r}") from exc
    items = _field(document, "segments", list, "answer")
    if set(document) != {"segments"}:
        raise LLMResponseError(f"answer: unexpected keys {sorted(set(document) - {'segments'})}")
    found: dict[int, Assessment] = {}
    for n, item in enumerate(items):
        where = f"segments[{n}]"
        if not isinstance(item, dict) or set(item) != {"id", "score", "title", "reasons"}:
            raise LLMResponseError(f"{where}: must have exactly id, score, title, reasons")
        passage = _field(item, "id", int, where)
        score = _field(item, "score", (int, float), where)
        title = _field(item, "title", str, where).strip()
        reasons = _field(item, "reasons", list, where)
        if passage not in ids or passage in found:
            raise LLMResponseError(f"{where}: unknown or repeated id {passage}")
        if not (math.isfinite(score) and 0 <= score <= 100):
            raise LLMResponseError(f"{where}: score {score} is not within 0-100")
        if not 0 < len(title) <= MAX_TITLE:
            raise LLMResponseError(f"{where}: title must be 1-{MAX_TITLE} characters")
        if not 0 < len(reasons) <= MAX_REASONS or not all(
            isinstance(r, str) and 0 < len(r.strip()) <= MAX_REASON for r in reasons
        ):
            raise LLMResponseError(
                f"{where}: reasons must be 1-{MAX_REASONS} strings of 1-{MAX_REASON} characters"
            )
        found[passage] = Assessment(float(score), title, tuple(r.strip() for r in reasons))
    missing = sorted(set(ids) - set(found))
    if missing:
        raise LLMResponseError(f"answer: no entry for passage ids {missing}")
    return found


def _field(item: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``item[key]`` if ``item`` is an object and the value has type ``kind`` (not bool)."""
    if not isinstance(item, dict) or key not in item:
        raise LLMResponseError(f"{where}: missing {key!r}")
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise LLMResponseError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value
