"""A chat completion as OpenAI streams it: server-sent events of
``chat.completion.chunk`` objects, then ``data: [DONE]``.

The chunks, all with the completion's ``id``, ``created`` and ``model``:

1. ``delta: {"role": "assistant", "content": ""}``;
2. the answer's text in pieces of ``PIECE_CHARS`` characters
   (``delta: {"content": ...}``); joined, they are the non-streamed
   ``message.content``;
3. ``delta: {}`` with the ``finish_reason``;
4. with ``stream_options.include_usage``: ``choices: []`` and the
   completion's ``usage``. Every other chunk then carries ``usage: null``.

The body is built whole and sent as one answer (the emulator has generated
the whole answer by then), so the ``malformed`` and ``truncate`` faults cut
it like any other body: the client sees the stream stop halfway.
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

PIECE_CHARS = 16  # about four tokens per content chunk


def chunks(completion: dict, include_usage: bool) -> list[dict]:
    """The ``chat.completion.chunk`` objects that stream ``completion`` (a non-streamed answer)."""
    choice = completion["choices"][0]
    content = choice["message"]["content"]
    head = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"]}
    if include_usage:
        head["usage"] = None

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": content[i : i + PIECE_CHARS]}) for i in range(0, len(content), PIECE_CHARS)]
    out.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        out.append({**head, "choices": [], "usage": completion["usage"]})
    return out


def sse_response(completion: dict, include_usage: bool) -> Response:
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks(completion, include_usage)]
    events.append("data: [DONE]\n\n")
    response = Response("".join(events).encode(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    return response
