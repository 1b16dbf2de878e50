"""Token accounting through the HTTP server with real images, pinned to the
providers' documented examples (not recomputed with the rule under test)."""

from __future__ import annotations

import pytest
from emulator_helpers import chat_body, image_bytes, image_part

from vidpipe_local.emulator.tokens import patch_count

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
    # Anthropic's table: 200x200 ~54, 1000x1000 ~1334, 1092x1092 ~1590 (rounded up)
    (200, 200, 54),
    (1000, 1000, 1334),
    (1092, 1092, 1590),
    (750, 750, 750),
    (300, 200, 80),
    (2000, 1000, 1640),  # shrunk to 1568x784 first
]

# OpenAI's patch models: documented 1024x1024 = 1024 patches, 1800x2400 = 1452
# patches (shrunk to 1056x1408), then x the model's multiplier, rounded up.
PATCH_CASES = [
    ("gpt-4.1-mini", 1024, 1024, 1659),  # 1024 x 1.62 = 1658.88
    ("gpt-4.1-mini", 1800, 2400, 2353),  # 1452 x 1.62 = 2352.24
    ("gpt-4.1-nano", 1024, 1024, 2520),  # 1024 x 2.46 = 2519.04
    ("o4-mini", 1024, 1024, 1762),  # 1024 x 1.72 = 1761.28
    ("gpt-4.1-mini-2025-04-14", 64, 32, 4),  # 2 patches x 1.62 = 3.24
]

# gpt-4o-mini: the tile rule with base 2833 and 5667 per tile.
GPT4O_MINI_CASES = [
    (1024, 1024, "high", 2833 + 4 * 5667),
    (2048, 4096, "high", 2833 + 6 * 5667),
    (4096, 8192, "low", 2833),
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


@pytest.mark.parametrize(("width", "height", "patches"), [(1024, 1024, 1024), (1800, 2400, 1452), (2400, 1800, 1452)])
def test_given_documented_patch_examples_when_counted_then_documented_patches(width, height, patches):
    assert patch_count(width, height) == patches


@pytest.mark.parametrize(("model", "width", "height", "tokens"), PATCH_CASES, ids=lambda v: str(v))
def test_given_patch_model_when_image_sent_then_32px_patches_times_the_model_multiplier(client, model, width, height,
                                                                                        tokens):
    image = image_bytes(width, height, ext=".jpg")

    assert _prompt_tokens(client, model, image_part(image, mime="image/jpeg")) == tokens


def test_given_patch_model_when_low_detail_asked_then_same_patches_as_high(client):
    image = image_bytes(1024, 1024, ext=".jpg")

    low = _prompt_tokens(client, "gpt-4.1-mini", image_part(image, "low", mime="image/jpeg"))
    high = _prompt_tokens(client, "gpt-4.1-mini", image_part(image, "high", mime="image/jpeg"))

    assert low == high == 1659


@pytest.mark.parametrize(("width", "height", "detail", "tokens"), GPT4O_MINI_CASES, ids=lambda v: str(v))
def test_given_gpt4o_mini_when_image_sent_then_2833_plus_5667_per_tile(client, width, height, detail, tokens):
    image = image_bytes(width, height, ext=".jpg")

    assert _prompt_tokens(client, "gpt-4o-mini", image_part(image, detail, mime="image/jpeg")) == tokens


@pytest.mark.parametrize("model", ["deepseek-v3.2", "deepseek/deepseek-chat"])
def test_given_text_only_model_when_image_sent_then_the_providers_400_and_nothing_billed(client, emulator, model):
    body = chat_body(model, {"type": "text", "text": "what is this?"}, image_part(image_bytes(64, 64)))

    response = client.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_request_error"
    assert "messages[0]: unknown variant `image_url`, expected `text`" in error["message"]
    assert emulator.bill()["items"] == []


def test_given_text_only_model_when_text_sent_then_answered(client):
    text = "Write a prompt about waves."  # 27 characters: 7 tokens

    assert _prompt_tokens(client, "deepseek-v3.2", {"type": "text", "text": text}) == 7


def test_given_max_tokens_below_the_answer_when_completed_then_cut_to_max_tokens_with_finish_reason_length(client):
    body = chat_body("gemini-2.5-flash", image_part(image_bytes(64, 64)), image_part(image_bytes(96, 64)))
    whole = client.post("/v1/chat/completions", json=body).json()
    whole_tokens = whole["usage"]["completion_tokens"]

    capped = client.post("/v1/chat/completions", json={**body, "max_tokens": whole_tokens - 3}).json()
    roomy = client.post("/v1/chat/completions", json={**body, "max_completion_tokens": whole_tokens}).json()

    assert capped["usage"]["completion_tokens"] == whole_tokens - 3
    assert capped["choices"][0]["finish_reason"] == "length"
    assert whole["choices"][0]["message"]["content"].startswith(capped["choices"][0]["message"]["content"])
    assert roomy["usage"]["completion_tokens"] == whole_tokens
    assert roomy["choices"][0]["finish_reason"] == "stop"
