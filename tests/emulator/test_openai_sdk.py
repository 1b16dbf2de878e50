"""The official OpenAI Python SDK against a running emulator, the way a user
points it there: ``OpenAI(base_url=emulator.chat_base_url,
api_key="local-emulator-key")``. Streamed chat, the model list, the video
list with its pagination, and the thumbnail / spritesheet downloads."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import av
import cv2
import httpx
import numpy as np
import openai
import pytest
from emulator_helpers import image_bytes, image_part

from vidpipe_local.clock import VirtualClock
from vidpipe_local.emulator import Emulator
from vidpipe_local.emulator.model_catalog import CHAT_MODELS
from vidpipe_local.emulator.tokens import has_rule

KEY = "local-emulator-key"  # the emulator's default key, the one its banner prints
ETA_S = 30.0
MESSAGES = [{"role": "user", "content": [
    {"type": "text", "text": "Frame 3 at 1.50s"}, image_part(image_bytes(320, 240)),
    {"type": "text", "text": "Describe the frame in detail for a video report."}]}]


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[Emulator]:
    with Emulator(clock=clock, default_eta_s=ETA_S) as emu:  # api_key left at its default
        yield emu


@pytest.fixture
def sdk(emulator: Emulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator.chat_base_url, api_key=KEY, max_retries=0, timeout=10.0) as client:
        yield client


@pytest.fixture
def raw(emulator: Emulator) -> Iterator[httpx.Client]:
    """The wire itself, for what the SDK hides (the SSE framing, exact statuses)."""
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10.0) as client:
        yield client


# -- chat, streamed -----------------------------------------------------------


def test_given_stream_with_include_usage_when_sdk_reads_it_then_the_plain_answer_in_chunks_ending_with_its_usage(
        sdk, emulator):
    plain = sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)

    chunks = list(sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                              stream_options={"include_usage": True}))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content and len(chunks) > 4
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 2) + ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id} != {plain.id}
    bill = emulator.bill()["items"]
    assert [(i["id"], i["input_tokens"], i["output_tokens"]) for i in bill] == [
        (plain.id, plain.usage.prompt_tokens, plain.usage.completion_tokens),
        (chunks[0].id, plain.usage.prompt_tokens, plain.usage.completion_tokens)]


def test_given_stream_without_stream_options_when_sent_then_sse_ending_with_done_and_no_usage_anywhere(raw):
    response = raw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": MESSAGES,
                                                      "stream": True})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    payloads = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert {p["object"] for p in payloads} == {"chat.completion.chunk"}
    assert not any("usage" in p for p in payloads)
    assert payloads[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


def test_given_stream_capped_by_max_tokens_when_read_then_length_finish_and_the_bill_matches_the_usage_chunk(
        sdk, emulator):
    chunks = list(sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=5,
                                              stream_options={"include_usage": True}))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == 5 and len(text) == 20
    (item,) = emulator.bill()["items"]
    assert (item["input_tokens"], item["output_tokens"]) == (chunks[-1].usage.prompt_tokens, 5)


def test_given_stream_options_without_stream_when_sent_then_openai_400_and_nothing_billed(sdk, emulator):
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream_options={"include_usage": True})

    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "stream_options"
    assert emulator.bill()["items"] == []


def test_given_the_sdk_with_another_key_when_it_calls_then_authentication_error(emulator):
    with openai.OpenAI(base_url=emulator.chat_base_url, api_key="not-the-key", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()


# -- models -----------------------------------------------------------------


def test_given_models_list_when_sdk_reads_it_then_the_project_models_are_listed_once_each(sdk):
    models = list(sdk.models.list())

    ids = [m.id for m in models]
    assert {"gemini-2.5-flash", "gpt-4.1", "deepseek-v3.2", "sora-2", "vidgen-1"} <= set(ids)
    assert len(ids) == len(set(ids))
    assert {m.object for m in models} == {"model"}
    assert sdk.models.retrieve("gemini-2.5-flash").owned_by == "google"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found"


def test_given_the_listed_chat_models_when_checked_then_each_has_a_documented_token_rule_and_answers(sdk):
    listed = {m.id for m in sdk.models.list()}
    chat_models = sorted(listed & set(CHAT_MODELS))

    assert chat_models == sorted(CHAT_MODELS)
    assert [m for m in chat_models if not has_rule(m)] == []
    for model in chat_models:
        answer = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
        assert answer.model == model and answer.usage.prompt_tokens == 2


# -- videos -----------------------------------------------------------------


def _create(sdk, clock, n: int, **extra) -> list[str]:
    """n small jobs, one emulator second apart (distinct created_at)."""
    ids = []
    for i in range(n):
        ids.append(sdk.videos.create(prompt=f"a red ball, take {i}", seconds="4", size="720x1280", **extra).id)
        clock.advance(1)
    return ids


def test_given_five_videos_when_listed_two_per_page_then_the_sdk_pages_through_all_newest_first(sdk, clock):
    ids = _create(sdk, clock, 5)

    first = sdk.videos.list(limit=2)
    every = [v.id for v in sdk.videos.list(limit=2)]  # auto-pagination follows last_id
    oldest_first = [v.id for v in sdk.videos.list(order="asc", limit=100)]
    after_second = [v.id for v in sdk.videos.list(order="asc", after=ids[1])]

    assert ([v.id for v in first.data], first.has_more, first.last_id) == ([ids[4], ids[3]], True, ids[3])
    assert every == ids[::-1]
    assert oldest_first == ids
    assert after_second == ids[2:]


def test_given_videos_at_different_stages_when_listed_then_each_shows_its_status_and_deleted_ones_are_gone(
        sdk, clock):
    done, deleted = _create(sdk, clock, 2)
    clock.advance(ETA_S - 2)  # the first job is due, the second is still running
    sdk.videos.delete(deleted)
    running = sdk.videos.create(prompt="waves", seconds="4").id

    listed = {v.id: v.status for v in sdk.videos.list()}

    assert listed == {done: "completed", running: "queued"}


@pytest.mark.parametrize(("query", "param"), [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"order": "newest"}, "order"), ({"after": "video_unknown"}, "after")])
def test_given_bad_list_parameters_when_listed_then_400_naming_the_parameter(raw, query, param):
    response = raw.get("/v1/videos", params=query)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def _mp4_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _jpeg_rgb(data: bytes) -> np.ndarray:
    assert data[:3] == b"\xff\xd8\xff"  # a JPEG
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _closest(image: np.ndarray, frames: list[np.ndarray]) -> int:
    size = (image.shape[1], image.shape[0])
    return int(np.argmin([np.abs(cv2.resize(f, size, interpolation=cv2.INTER_AREA).astype(int) - image).mean()
                          for f in frames]))


def _completed_video(sdk, clock, size: str) -> tuple[str, list[np.ndarray]]:
    video_id = sdk.videos.create(prompt="a red ball rolls across", seconds="4", size=size).id  # type: ignore[arg-type]
    clock.advance(ETA_S)
    return video_id, _mp4_frames(sdk.videos.download_content(video_id).content)


def test_given_a_completed_video_when_its_thumbnail_is_downloaded_then_a_jpeg_of_its_middle_frame(sdk, clock):
    video_id, frames = _completed_video(sdk, clock, "160x96")

    thumbnail = _jpeg_rgb(sdk.videos.download_content(video_id, variant="thumbnail").content)

    assert len(frames) == 96 and thumbnail.shape == (96, 160, 3)
    assert abs(_closest(thumbnail, frames) - 48) <= 1  # the ball moves under 2 px a frame


def test_given_a_completed_video_when_its_spritesheet_is_downloaded_then_ten_tiles_of_evenly_spaced_frames(
        sdk, clock):
    video_id, frames = _completed_video(sdk, clock, "320x192")

    sheet = _jpeg_rgb(sdk.videos.download_content(video_id, variant="spritesheet").content)

    assert sheet.shape == (2 * 96, 5 * 160, 3)  # 5 tiles a row, each shrunk to 160 px wide
    tiles = [sheet[r * 96:(r + 1) * 96, c * 160:(c + 1) * 160] for r in range(2) for c in range(5)]
    closest = [_closest(tile, frames) for tile in tiles]
    assert all(abs(found - i * 96 // 10) <= 1 for i, found in enumerate(closest)), closest


def test_given_a_running_video_when_a_thumbnail_is_asked_then_409_not_ready(sdk, clock):
    video_id = sdk.videos.create(prompt="waves", seconds="4").id
    clock.advance(ETA_S / 2)

    with pytest.raises(openai.ConflictError) as refused:
        sdk.videos.download_content(video_id, variant="thumbnail")

    assert refused.value.body["code"] == "video_not_ready"


def test_given_an_unknown_variant_when_downloaded_then_400_naming_the_supported_variants(sdk, clock):
    video_id = sdk.videos.create(prompt="waves", seconds="4").id
    clock.advance(ETA_S)

    with pytest.raises(openai.BadRequestError) as refused:
        sdk.videos.download_content(video_id, variant="poster")  # type: ignore[arg-type]

    assert refused.value.body["param"] == "variant"
    assert "video, thumbnail, spritesheet" in refused.value.body["message"]
