"""Chat answers derive from the pixels received; structured output is valid
JSON of the requested schema."""

from __future__ import annotations

import json
import threading
from typing import Literal

import jsonschema
from emulator_helpers import chat_body, image_bytes, image_part
from pydantic import BaseModel, Field
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from vidpipe_local.emulator import image_signature

RED, BLUE, GREEN = (30, 30, 220), (220, 60, 30), (40, 200, 40)


class Frame(BaseModel):
    index: int
    timestamp_s: float
    description: str
    tags: list[str]
    dominant_colour: str
    brightness: float = Field(ge=0, le=1)


class ChunkAnswer(BaseModel):
    frames: list[Frame]
    mood: Literal["calm", "busy"]


class Physics(BaseModel):
    time_scale: float | None
    gravity_mps2: float | None


class EnhancerAnswer(BaseModel):
    prompt: str = Field(min_length=1, max_length=400)
    mode: Literal["normal", "slow_motion", "time_lapse", "hyperlapse"]
    physics: Physics
    keywords: list[str] = Field(min_length=2)


def _json_schema(model: type[BaseModel]) -> dict:
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": model.model_json_schema()}}


def _content(client, body: dict) -> str:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_given_red_image_when_described_then_answer_names_red_and_its_signature(client):
    image = image_bytes(320, 180, RED)

    content = _content(client, chat_body("gpt-4.1", image_part(image)))

    assert "mostly red" in content
    assert f"sig:{image_signature(image)}" in content


def test_given_labelled_frames_when_json_schema_asked_then_one_valid_element_per_frame_in_order(client, emulator):
    images = [image_bytes(160, 90, colour) for colour in (RED, BLUE, GREEN)]
    parts = [{"type": "text", "text": "Describe each frame."}]
    for n, image in enumerate(images):
        parts += [{"type": "text", "text": f"Frame {n} at {n * 1.5:.2f}s"}, image_part(image)]
    schema = _json_schema(ChunkAnswer)

    answer = json.loads(_content(client, chat_body("gemini-2.5-flash", *parts, response_format=schema)))

    jsonschema.validate(answer, schema["json_schema"]["schema"])
    assert [f["index"] for f in answer["frames"]] == [0, 1, 2]
    assert [f["timestamp_s"] for f in answer["frames"]] == [0.0, 1.5, 3.0]
    assert [f["dominant_colour"] for f in answer["frames"]] == ["red", "blue", "green"]
    for frame, image in zip(answer["frames"], images, strict=True):
        assert f"sig:{image_signature(image)}" in frame["description"]
        assert frame["dominant_colour"] in frame["tags"]
    assert emulator.calls[-1].image_signatures == [image_signature(i) for i in images]


def test_given_frame_labels_with_global_indices_when_answered_then_indices_follow_the_labels(client):
    parts = [{"type": "text", "text": "Frame 12 at 6.00s"}, image_part(image_bytes(64, 64)),
             {"type": "text", "text": "Frame 13 at 6.50s"}, image_part(image_bytes(64, 64, BLUE))]

    answer = json.loads(_content(client, chat_body("gpt-4.1", *parts, response_format=_json_schema(ChunkAnswer))))

    assert [(f["index"], f["timestamp_s"]) for f in answer["frames"]] == [(12, 6.0), (13, 6.5)]


def test_given_no_images_when_json_schema_asked_then_text_comes_from_the_prompt(client):
    user = json.dumps({"prompt": "a glass of water tips over in slow motion", "mode": "slow_motion"})
    body = {
        "model": "gemini-2.5-flash",
        "messages": [{"role": "system", "content": "Modes: normal, slow_motion, time_lapse, hyperlapse."},
                     {"role": "user", "content": user}],
        "response_format": _json_schema(EnhancerAnswer),
    }

    answer = json.loads(_content(client, body))

    jsonschema.validate(answer, EnhancerAnswer.model_json_schema())
    assert answer["prompt"] == "a glass of water tips over in slow motion"
    assert answer["mode"] == "slow_motion"
    assert answer["physics"] == {"time_scale": None, "gravity_mps2": None}
    assert "glass" in answer["keywords"]


def test_given_signatures_in_a_reduce_prompt_when_summarized_then_the_summary_keeps_them(client):
    prompt = ("Summarize: frame 0 a mostly red frame (sig:00ff00ff00ff00ff); "
              "frame 1 a mostly blue frame (sig:ff00ff00ff00ff00)")
    schema = {"type": "object", "properties": {"summary": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["summary", "tags"], "additionalProperties": False}
    body = chat_body("gpt-4.1-mini", {"type": "text", "text": prompt},
                     response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}})

    answer = json.loads(_content(client, body))

    jsonschema.validate(answer, schema)
    assert "sig:00ff00ff00ff00ff" in answer["summary"] and "sig:ff00ff00ff00ff00" in answer["summary"]
    assert {"red", "blue"} <= set(answer["tags"])


def test_given_json_object_format_when_images_sent_then_answer_is_an_object_per_frame(client):
    image = image_bytes(128, 128, GREEN)

    answer = json.loads(_content(client, chat_body("gpt-4.1", image_part(image), response_format={"type": "json_object"})))

    assert answer["frames"][0]["signature"] == image_signature(image)
    assert answer["frames"][0]["colours"][0] == "green"


def test_given_image_url_on_loopback_when_sent_then_it_is_fetched_and_counted(client, emulator):
    image = image_bytes(384, 384)
    server = _ImageServer(image)
    try:
        body = chat_body("gemini-2.0-flash", {"type": "image_url", "image_url": {"url": server.url}})
        response = client.post("/v1/chat/completions", json=body)
    finally:
        server.stop()

    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] == 258
    assert emulator.calls[-1].image_signatures == [image_signature(image)]


def test_given_image_url_off_loopback_when_sent_then_400(client):
    body = chat_body("gpt-4.1", {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}})

    response = client.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image_url"


def test_given_bytes_that_are_not_an_image_when_sent_then_400_invalid_image(client):
    body = chat_body("gpt-4.1", {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}})

    response = client.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image_format"


def test_given_jpeg_and_png_of_the_same_pixels_when_signed_then_signatures_match():
    assert image_signature(image_bytes(200, 100, ext=".png")) == image_signature(image_bytes(200, 100, ext=".jpg"))


class _ImageServer:
    """Another local server holding one image, as a pipeline's presigned URL would."""

    def __init__(self, data: bytes):
        self._server = make_server("127.0.0.1", 0, Response(data, mimetype="image/png"), threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/frame.png"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
