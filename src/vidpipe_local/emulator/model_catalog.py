"""The models the emulator knows, listed as OpenAI lists models::

    GET /v1/models          {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}, ...]}
    GET /v1/models/{id}     one of them; 404 ``model_not_found`` otherwise

Chat models: one or more of each family whose image-token rule tokens.py
implements (a test checks each listed name has its rule). Video models: the
names the two video wire shapes default to or the project configures. Chat
completions still accept any model name (an unknown one is billed with
OpenAI's tile rule); the list says which names have a documented rule.
"""

from __future__ import annotations

from vidpipe_local.emulator.errors import ApiError

# A fixed date for every model: the emulator's models have no release history.
CREATED = 1_700_000_000

CHAT_MODELS: dict[str, str] = {  # id -> owned_by
    "gpt-4o": "openai",
    "gpt-4o-mini": "openai",
    "chatgpt-4o-latest": "openai",
    "gpt-4.1": "openai",
    "gpt-4.1-mini": "openai",
    "gpt-4.1-nano": "openai",
    "gpt-4.5-preview": "openai",
    "gpt-5": "openai",
    "gpt-5-mini": "openai",
    "gpt-5-nano": "openai",
    "o1": "openai",
    "o1-mini": "openai",
    "o3": "openai",
    "o3-mini": "openai",
    "o4-mini": "openai",
    "gpt-3.5-turbo": "openai",
    "gemini-2.5-flash": "google",
    "gemini-2.5-pro": "google",
    "gemini-2.0-flash": "google",
    "claude-sonnet-4-5": "anthropic",
    "claude-haiku-4-5": "anthropic",
    "deepseek-chat": "deepseek",
    "deepseek-v3.2": "deepseek",
}

VIDEO_MODELS: dict[str, str] = {
    "sora-2": "openai",  # the OpenAI videos API's default
    "sora-2-pro": "openai",
    "vidgen-1": "vidpipe-emulator",  # vidpipe's default video model (generic REST shape)
    "emulator-video": "vidpipe-emulator",  # the generic shape's default when no model is sent
}


def model_object(model_id: str) -> dict:
    owned_by = CHAT_MODELS.get(model_id) or VIDEO_MODELS.get(model_id)
    if owned_by is None:
        raise ApiError(404, f"The model '{model_id}' does not exist", code="model_not_found", param="model")
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": owned_by}


def model_list() -> dict:
    return {"object": "list", "data": [model_object(model_id) for model_id in {**CHAT_MODELS, **VIDEO_MODELS}]}
