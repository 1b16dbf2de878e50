"""Token accounting through the HTTP server with real images, pinned to the
providers' documented examples (not recomputed with the rule under test)."""

from __future__ import annotations

import pytest
from emulator_helpers import chat_body, image_bytes, image_part

GEMINI_CASES = [
    # both sides <= 384: one flat charge
    (384, 384, 258),
    (200, 100, 258),
    # larger: 258 per 768x768 tile
    (385, 200, 258),
    (1000, 1000, 1032),
    (1536, 768, 516),
    (800, 300, 516),
]

OPENAI_CASES = [
    # gpt-4.1 documented examples: 85 base + 170 per 512 px tile at high detail
    (1024, 1024, "high", 765),
    (2048, 4096, "high", 1105),
    (4096, 8192, "low", 85),
    (512, 512, "high", 255),
    (512, 512, None, 255),  # detail omitted = auto, billed as high
]

CLAUDE_CASES = [
    (750, 750, 750),
    (300, 200, 80),
    (1000, 1500, 2000),
    (2000, 1000, 1640),  # shrunk to 1568x784 first
]


def _prompt_tokens(client, model: str, *parts: dict) -> int:
    response = client.post("/v1/chat/completions", json=chat_body(model, *parts))
    assert response.status_code == 200, response.text
    return response.json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize(("width", "height", "tokens"), GEMINI_CASES, ids=lambda v: str(v))
def test_given_gemini_model_when_image_sent_then_258_per_768px_tile(client, width, height, tokens):
    image = image_bytes(width, height)

    assert _prompt_tokens(client, "gemini-2.5-flash", image_part(image)) == tokens


@pytest.mark.parametrize(("width", "height", "detail", "tokens"), OPENAI_CASES, ids=lambda v: str(v))
def test_given_gpt41_model_when_image_sent_then_85_plus_170_per_512px_tile(client, width, height, detail, tokens):
    image = image_bytes(width, height, ext=".jpg")

    assert _prompt_tokens(client, "gpt-4.1", image_part(image, detail, mime="image/jpeg")) == tokens


@pytest.mark.parametrize(("width", "height", "tokens"), CLAUDE_CASES, ids=lambda v: str(v))
def test_given_claude_model_when_image_sent_then_about_pixels_over_750(client, width, height, tokens):
    image = image_bytes(width, height)

    assert _prompt_tokens(client, "anthropic/claude-sonnet-4", image_part(image)) == tokens


def test_given_text_and_images_when_completed_then_usage_sums_images_text_and_answer(client, emulator):
    text = "Describe these frames."  # 22 characters: 6 tokens
    body = chat_body("gemini-2.5-flash", {"type": "text", "text": text}, image_part(image_bytes(384, 384)),
                     image_part(image_bytes(1000, 1000)))
    body["messages"].insert(0, {"role": "system", "content": "Be brief."})  # 9 characters: 3 tokens

    answer = client.post("/v1/chat/completions", json=body).json()

    content = answer["choices"][0]["message"]["content"]
    assert answer["usage"]["prompt_tokens"] == 258 + 1032 + 6 + 3
    assert answer["usage"]["completion_tokens"] == -(-len(content) // 4)
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]
    assert emulator.calls[-1].prompt_tokens == 258 + 1032 + 6 + 3
