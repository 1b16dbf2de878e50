"""OpenAI-compatible ``/chat/completions`` adapter with image parts and
structured (JSON-schema) output.

Works against any gateway that speaks the OpenAI shape: OpenAI, Gemini's
OpenAI-compatible endpoint, LiteLLM proxy, vLLM, and the local emulator.
Transport retries (429 / 5xx / timeouts, Retry-After) are
``providers.http.send_with_retry``'s; this module adds the answer-level
checks: a body that is not a completion, and JSON that does not validate.
Both loops live within the step's deadline (``vidpipe.deadline``): each HTTP
attempt's timeout is cut to the time the step has left, and an answer asked
for again only when an attempt still fits; otherwise ProviderRetryable hands
the call back to Step Functions.

Metering: every HTTP attempt carries a new client request id
(``X-Client-Request-Id``), and a ``CallMeter`` hears about each attempt by that
id: ``before`` it is sent, then exactly one of ``billed`` (the provider
generated an answer, or may have: ``result`` is None when its usage could not
be read) or ``not_billed`` (HTTP status >= 400, or no connection was made).
A Lambda that dies between the two leaves the ``before`` behind, which the
accounting records at its estimate. How an attempt is classified:

    2xx, a completion                  billed(result)   the provider's usage
    2xx, body unreadable / not JSON    billed(None)     estimate, unconfirmed
    read/write timeout, connection     billed(None)     the request may have been
      dropped after sending                             answered and billed
    HTTP status >= 400                 not_billed
    connect error / timeout, pool      not_billed       nothing reached the provider
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from vidpipe import deadline
from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.providers.http import RetryPolicy, send_with_retry

M = TypeVar("M", bound=BaseModel)

CLIENT_REQUEST_ID_HEADER = "X-Client-Request-Id"
# Transport errors raised before the request reached the provider: nothing was generated.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
            httpx.LocalProtocolError)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    content: str
    usage: Usage
    request_id: str | None  # the provider's response id
    latency_ms: int
    call_key: str | None = None  # the client request id this answer was sent with
    usage_reported: bool = True  # False: the body had no readable usage (``usage`` is zeros)


class CallMeter(Protocol):
    """Hears about every HTTP attempt of a completion, by its client request id."""

    def before(self, call_key: str) -> None:
        """The attempt is about to be sent (write-ahead: raise to stop it)."""

    def billed(self, call_key: str, result: ChatResult | None) -> None:
        """The provider generated (or may have generated) an answer; ``result`` is None
        when its usage could not be read."""

    def not_billed(self, call_key: str) -> None:
        """The attempt produced no answer (HTTP status >= 400, no connection)."""


def new_call_key() -> str:
    return f"ccr-{uuid.uuid4().hex}"


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
            # "title" is pydantic's annotation, dropped; a property *named* title is kept.
            node = {k: ({name: resolve(spec) for name, spec in v.items()} if k == "properties" else resolve(v))
                    for k, v in node.items() if k != "title"}
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
                 on_attempt: Callable[[int], None] | None = None, meter: CallMeter | None = None) -> ChatResult:
        """One completion. ``on_attempt`` runs before every HTTP attempt (rate limiting),
        then ``meter.before``; every attempt's outcome goes to ``meter`` (module docstring).

        Raises ProviderError (with ``details["malformed"]`` when the body is
        not a completion) or ProviderRetryable once transport retries run out.
        """
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
        if response_format is not None:
            body["response_format"] = response_format
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        keys: list[str] = []

        def attempt_headers(_attempt: int) -> dict[str, str]:
            keys.append(new_call_key())
            if meter:
                meter.before(keys[-1])
            return {CLIENT_REQUEST_ID_HEADER: keys[-1]}

        def failed(_attempt: int, outcome: httpx.Response | Exception) -> None:
            if meter is None:
                return
            if isinstance(outcome, (httpx.Response, *NOT_SENT)):
                meter.not_billed(keys[-1])
            else:  # the request went out; its answer may have been generated and billed
                meter.billed(keys[-1], None)

        started = time.monotonic()
        response = send_with_retry(self.http, "POST", self.url, policy=self.policy, sleep=self.sleep,
                                   on_attempt=on_attempt, attempt_headers=attempt_headers,
                                   on_failed_attempt=failed, json=body, headers=headers)
        latency_ms = int((time.monotonic() - started) * 1000)
        try:
            result = _parse_completion(response, latency_ms, keys[-1])
        except ProviderError:
            if meter:
                meter.billed(keys[-1], None)
            raise
        if meter:
            # Without the provider's usage the attempt is accounted at our estimate.
            meter.billed(keys[-1], result if result.usage_reported else None)
        return result

    def complete_structured(self, model: str, messages: list[dict], answer: type[M], *, name: str,
                            max_attempts: int = 3, max_tokens: int | None = None,
                            on_attempt: Callable[[int], None] | None = None,
                            meter: CallMeter | None = None,
                            check: Callable[[M], None] | None = None) -> tuple[M, ChatResult]:
        """A completion whose content must validate as ``answer``.

        A malformed body or invalid JSON is asked again, at most
        ``max_attempts`` times in all, then ProviderError. Every attempt is
        metered by ``complete``: an answer rejected here was billed with the
        provider's usage like any other. ``check`` may raise ValueError for
        semantic problems (e.g. missing frame indices), which count as invalid.
        """
        response_format = json_schema_format(name, answer)
        problem = "no attempt made"
        for attempt in range(max_attempts):
            if attempt and not deadline.current().can_attempt():
                raise ProviderRetryable(f"{model}: {problem}; out of time to ask again "
                                        f"({deadline.current().budget_s():.1f} s of the step left)",
                                        retry_after_s=1.0, out_of_time=True)
            try:
                result = self.complete(model, messages, response_format, max_tokens=max_tokens,
                                       on_attempt=on_attempt, meter=meter)
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
                continue
            return parsed, result
        raise ProviderError(f"{model}: {problem} (after {max_attempts} attempts)", invalid_answer=True)


def _parse_completion(response: httpx.Response, latency_ms: int, call_key: str | None = None) -> ChatResult:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("message content is not a string")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as exc:
        raise ProviderError(f"malformed completion body from {response.request.url.host} "
                            f"({type(exc).__name__})", malformed=True) from exc
    usage = _usage(data.get("usage"))
    response_id = data.get("id") if isinstance(data.get("id"), str) else None
    return ChatResult(content=content, usage=usage or Usage(), request_id=response_id or
                      response.headers.get("x-request-id"), latency_ms=latency_ms, call_key=call_key,
                      usage_reported=usage is not None)


def _usage(usage: object) -> Usage | None:
    """The provider's token counts, or None when it reported none we can read."""
    try:
        input_tokens, output_tokens = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        return None
    return Usage(input_tokens, output_tokens) if input_tokens >= 0 and output_tokens >= 0 else None


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "answer"
        return f"{where}: {error['msg']}"[:200]
    return str(exc)[:200] or type(exc).__name__
