"""OpenAI-compatible ``/chat/completions`` adapter with image parts and
structured (JSON-schema) output.

Works against any gateway that speaks the OpenAI shape: OpenAI, Gemini's
OpenAI-compatible endpoint, LiteLLM proxy, vLLM, and the local emulator.
Transport retries (429 / 5xx / timeouts, Retry-After) are
``providers.http.send_with_retry``'s; this module adds the answer-level
checks: a body that is not a completion, and JSON that does not validate.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from vidpipe.errors import ProviderError
from vidpipe.providers.http import RetryPolicy, send_with_retry

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    content: str
    usage: Usage
    request_id: str | None
    latency_ms: int


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def image_part(jpeg: bytes, detail: str = "auto", mime: str = "image/jpeg") -> dict:
    url = f"data:{mime};base64,{base64.b64encode(jpeg).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


def json_schema_format(name: str, model: type[BaseModel]) -> dict:
    """``response_format`` asking for ``model``'s JSON schema in strict mode."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": strict_schema(model), "strict": True}}


def strict_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema made acceptable to strict structured output:
    ``$ref``s inlined (not every gateway resolves ``$defs``), every property
    required and no additional properties."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]))
            node = {k: resolve(v) for k, v in node.items() if k != "title"}
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


class ChatClient:
    def __init__(self, base_url: str, api_key: str, http_client: httpx.Client | None = None,
                 policy: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] = time.sleep,
                 timeout_s: float = 60.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.http = http_client or httpx.Client(timeout=timeout_s)
        self.policy = policy
        self.sleep = sleep

    def complete(self, model: str, messages: list[dict], response_format: dict | None = None, *,
                 max_tokens: int | None = None, temperature: float = 0.0,
                 on_attempt: Callable[[int], None] | None = None) -> ChatResult:
        """One completion. ``on_attempt`` runs before every HTTP attempt (rate limiting).

        Raises ProviderError (with ``details["malformed"]`` when the body is
        not a completion) or ProviderRetryable once transport retries run out.
        """
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
        if response_format is not None:
            body["response_format"] = response_format
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        started = time.monotonic()
        response = send_with_retry(self.http, "POST", self.url, policy=self.policy, sleep=self.sleep,
                                   on_attempt=on_attempt, json=body, headers=headers)
        latency_ms = int((time.monotonic() - started) * 1000)
        return _parse_completion(response, latency_ms)

    def complete_structured(self, model: str, messages: list[dict], answer: type[M], *, name: str,
                            max_attempts: int = 3, max_tokens: int | None = None,
                            on_result: Callable[[ChatResult, bool], None] | None = None,
                            on_attempt: Callable[[int], None] | None = None,
                            check: Callable[[M], None] | None = None) -> tuple[M, ChatResult]:
        """A completion whose content must validate as ``answer``.

        A malformed body or invalid JSON is asked again, at most
        ``max_attempts`` times in all, then ProviderError. ``on_result(result,
        accepted)`` sees every answer that came back, so the tokens of rejected
        ones are accounted too. ``check`` may raise ValueError for semantic
        problems (e.g. missing frame indices), which count as invalid.
        """
        response_format = json_schema_format(name, answer)
        problem = "no attempt made"
        for _ in range(max_attempts):
            try:
                result = self.complete(model, messages, response_format, max_tokens=max_tokens,
                                       on_attempt=on_attempt)
            except ProviderError as exc:
                if not exc.details.get("malformed"):
                    raise
                problem = exc.reason
                continue
            try:
                parsed = answer.model_validate_json(result.content)
                if check:
                    check(parsed)
            except (ValidationError, ValueError) as exc:
                problem = f"answer does not match the {name} schema: {_first_problem(exc)}"
                if on_result:
                    on_result(result, False)
                continue
            if on_result:
                on_result(result, True)
            return parsed, result
        raise ProviderError(f"{model}: {problem} (after {max_attempts} attempts)")


def _parse_completion(response: httpx.Response, latency_ms: int) -> ChatResult:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("message content is not a string")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as exc:
        raise ProviderError(f"malformed completion body from {response.request.url.host} "
                            f"({type(exc).__name__})", malformed=True) from exc
    usage = data.get("usage") or {}
    return ChatResult(
        content=content,
        usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
        request_id=data.get("id") or response.headers.get("x-request-id"),
        latency_ms=latency_ms,
    )


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "answer"
        return f"{where}: {error['msg']}"[:200]
    return str(exc)[:200] or type(exc).__name__
