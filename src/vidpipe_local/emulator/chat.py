"""``POST /v1/chat/completions``: an OpenAI-compatible answer derived from
the pixels received, with ``usage`` following the documented token rules.

Token rules: tokens.py (the emulator's own, from the providers' docs).
Prompt tokens = image tokens (each image's real size, the model's rule and
the part's ``detail``; OpenAI's default ``auto`` is billed as ``high``) +
text tokens of each text segment (every string ``content`` and every
``text`` part of every message, summed per segment). An image sent to a
text-only model is refused with the provider's 400. Completion tokens = text
tokens of the answer. ``max_tokens`` (or ``max_completion_tokens``) caps
the answer as the providers do: cut to that many tokens, ``finish_reason``
``length``. A text part right before an image labels it ("Frame 12 at
3.50s"): the answer uses that index and timestamp.

``stream: true`` asks for the same answer as server-sent events
(chat_stream.py); ``stream_options`` is only allowed with it, as OpenAI
rules. The answer is generated whole either way, so a streamed completion
is billed exactly like a non-streamed one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from vidpipe_local.emulator.errors import ApiError
from vidpipe_local.emulator.pixels import ImageDecodeError, ImageFacts, analyze
from vidpipe_local.emulator.prompt_digest import digest
from vidpipe_local.emulator.schema_fill import FillContext, SeenImage, fill
from vidpipe_local.emulator.tokens import accepts_images, image_tokens, text_tokens

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_LABEL_INDEX = re.compile(r"\b(?:frame|image)\s*#?\s*(\d+)", re.IGNORECASE)
_LABEL_TIME = re.compile(r"\bat\s*(\d+(?:\.\d+)?)\s*s\b", re.IGNORECASE)


@dataclass(frozen=True)
class ChatResult:
    body: dict
    id: str
    model: str
    signatures: list[str]
    prompt_tokens: int
    completion_tokens: int
    streamed: bool = False  # answer as server-sent events (chat_stream.py)
    include_usage: bool = False  # streamed: end with a usage chunk (stream_options.include_usage)


@dataclass
class _Prompt:
    images: list[SeenImage]
    image_tokens: int
    text_tokens: int
    user_text: str


def complete(request: dict, now: float) -> ChatResult:
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", param="model")
    streamed, include_usage = _stream_options(request)
    max_tokens = _max_tokens(request)
    prompt = _read_messages(request.get("messages"), model)
    content = _answer(prompt, request.get("response_format"))
    finish_reason = "stop"
    if max_tokens is not None and text_tokens(content) > max_tokens:
        content, finish_reason = content[: 4 * max_tokens], "length"
    completion_tokens = text_tokens(content)
    prompt_tokens = prompt.image_tokens + prompt.text_tokens
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(now),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    signatures = [seen.facts.signature for seen in prompt.images]
    return ChatResult(body, completion_id, model, signatures, prompt_tokens, completion_tokens, streamed, include_usage)


def _stream_options(request: dict) -> tuple[bool, bool]:
    """(stream, include_usage), refused as OpenAI does when they do not fit together."""
    stream = request.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, "stream must be a boolean", param="stream")
    options = request.get("stream_options")
    if options is None:
        return bool(stream), False
    if not stream:
        raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       param="stream_options")
    if not isinstance(options, dict):
        raise ApiError(400, "stream_options must be an object", param="stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise ApiError(400, "stream_options.include_usage must be a boolean", param="stream_options.include_usage")
    return True, include_usage


def _max_tokens(request: dict) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ApiError(400, f"{key} must be a positive integer", param=key)
        return value
    return None


def _read_messages(messages: object, model: str) -> _Prompt:
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty array", param="messages")
    prompt = _Prompt(images=[], image_tokens=0, text_tokens=0, user_text="")
    user_texts: list[str] = []
    for i, message in enumerate(messages):
        parts = _parts(message, i)
        for j, part in enumerate(parts):
            param = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                prompt.text_tokens += text_tokens(part["text"])
                if message["role"] == "user":
                    user_texts.append(part["text"])
            elif kind == "image_url":
                label = parts[j - 1].get("text") if j > 0 and isinstance(parts[j - 1], dict) else None
                if not accepts_images(model):
                    raise _text_only_refusal(i)
                seen, detail = _read_image(part, param, label, len(prompt.images))
                prompt.images.append(seen)
                prompt.image_tokens += image_tokens(model, seen.facts.width, seen.facts.height, detail)
            else:
                raise ApiError(400, f"unsupported content part {kind!r}", param=param)
    prompt.user_text = "\n".join(user_texts)
    return prompt


def _text_only_refusal(i: int) -> ApiError:
    """What DeepSeek's OpenAI-compatible API answers when a text-only model is sent an image part."""
    return ApiError(
        400,
        f"Failed to deserialize the JSON body into the target type: messages[{i}]: "
        "unknown variant `image_url`, expected `text`",
        code="invalid_request_error",
    )


def _parts(message: object, i: int) -> list:
    if not isinstance(message, dict) or "role" not in message:
        raise ApiError(400, f"messages[{i}] must be an object with a role", param=f"messages[{i}]")
    content = message.get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    if not isinstance(parts, list):
        raise ApiError(400, f"messages[{i}].content must be a string or an array", param=f"messages[{i}].content")
    return parts


def _read_image(part: dict, param: str, label: object, position: int) -> tuple[SeenImage, str]:
    """The image and the detail it is billed at (OpenAI bills ``auto`` as ``high``)."""
    image_url = part.get("image_url")
    image_url = {"url": image_url} if isinstance(image_url, str) else image_url
    if not isinstance(image_url, dict):
        raise ApiError(400, "image_url must be an object with a url", param=f"{param}.image_url")
    detail = image_url.get("detail") or "auto"
    if detail not in ("auto", "low", "high"):
        raise ApiError(400, f"invalid detail {detail!r}", param=f"{param}.image_url.detail")
    facts = _load_image(image_url.get("url"), param)
    label = label if isinstance(label, str) else ""
    index, timestamp = _LABEL_INDEX.search(label), _LABEL_TIME.search(label)
    seen = SeenImage(facts, int(index[1]) if index else position, float(timestamp[1]) if timestamp else None)
    return seen, "low" if detail == "low" else "high"


def _load_image(url: object, param: str) -> ImageFacts:
    if not isinstance(url, str):
        raise ApiError(400, "image_url.url must be a string", param=param)
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ApiError(400, "image data URLs must be base64", param=param, code="invalid_image_url")
        try:
            data = base64.b64decode(payload, validate=True)
        except binascii.Error as exc:
            raise ApiError(400, "image data URL is not valid base64", param=param, code="invalid_image_url") from exc
    else:
        data = _fetch_loopback(url, param)
    try:
        return analyze(data)
    except ImageDecodeError as exc:
        raise ApiError(400, f"invalid image: {exc}", param=param, code="invalid_image_format") from exc


def _fetch_loopback(url: str, param: str) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK_HOSTS:
        raise ApiError(400, "the emulator only fetches image URLs on 127.0.0.1", param=param, code="invalid_image_url")
    try:
        response = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as exc:
        raise ApiError(400, f"failed to download image: {exc}", param=param, code="invalid_image_url") from exc
    if response.status_code != 200:
        raise ApiError(400, f"failed to download image: HTTP {response.status_code}", param=param, code="invalid_image_url")
    return response.content


def _answer(prompt: _Prompt, response_format: object) -> str:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise ApiError(400, "response_format.json_schema.schema must be an object", param="response_format")
        if (response_format.get("json_schema") or {}).get("name") == "storyboard" and not prompt.images:
            from vidpipe_local.emulator.storyboard import storyboard_answer

            return json.dumps(storyboard_answer(prompt.user_text, schema))
        return json.dumps(fill(schema, FillContext(prompt.images, prompt.user_text)))
    if kind == "json_object":
        return json.dumps(_json_object(prompt))
    if kind not in (None, "text"):
        raise ApiError(400, f"unsupported response_format type {kind!r}", param="response_format")
    if not prompt.images:
        return digest(prompt.user_text)
    return "\n".join(f"frame {seen.index}: {seen.facts.describe()}" for seen in prompt.images)


def _json_object(prompt: _Prompt) -> dict:
    if not prompt.images:
        return {"summary": digest(prompt.user_text)}
    frames = [
        {
            "index": seen.index,
            "timestamp_s": seen.timestamp_s,
            "description": seen.facts.describe(),
            "colours": list(seen.facts.colours),
            "brightness": seen.facts.brightness,
            "edge_density": seen.facts.edge_density,
            "signature": seen.facts.signature,
        }
        for seen in prompt.images
    ]
    return {"frames": frames, "summary": "; ".join(f"frame {f['index']}: {f['description']}" for f in frames)}
