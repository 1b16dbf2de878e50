import cv2
import numpy as np
import pytest

from vidpipe.media.resize import downscale_for_model
from vidpipe.providers.image_tokens import image_tokens


def _frame(width, height):
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _decoded_size(jpeg: bytes) -> tuple[int, int]:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return image.shape[1], image.shape[0]


@pytest.mark.parametrize(
    ("model", "size", "detail", "tokens"),
    [
        ("gemini", (384, 216), "high", 258),
        ("gemini-2.5-flash", (384, 216), "high", 258),
        ("openai", (512, 288), "low", 85),
        ("gpt-4.1-mini", (512, 288), "low", 85),
    ],
)
def test_given_a_720p_frame_when_downscaled_for_a_model_then_it_has_the_cheapest_size_and_token_cost(
    model, size, detail, tokens
):
    small = downscale_for_model(_frame(1280, 720), model)

    assert small.size == size and small.detail == detail
    assert _decoded_size(small.jpeg) == size
    assert image_tokens("gemini" if "gemini" in model else "openai", *small.size, small.detail) == tokens
    assert small.jpeg[:3] == b"\xff\xd8\xff"


def test_given_a_portrait_frame_when_downscaled_for_gemini_then_both_sides_stay_within_384():
    small = downscale_for_model(_frame(720, 1280), "gemini")

    assert small.size == (216, 384)


def test_given_a_frame_smaller_than_the_cheapest_size_when_downscaled_then_it_is_not_enlarged():
    small = downscale_for_model(_frame(200, 100), "openai")

    assert small.size == (200, 100) and _decoded_size(small.jpeg) == (200, 100)


def test_given_a_720p_frame_when_downscaled_then_the_jpeg_matches_opencvs_area_downscale():
    x, y = np.meshgrid(np.linspace(0, 255, 1280), np.linspace(0, 255, 720))
    frame = np.dstack([x, y, np.full_like(x, 40)]).astype(np.uint8)  # BGR: blue grows rightwards, green downwards

    small = downscale_for_model(frame, "gemini")

    decoded = cv2.imdecode(np.frombuffer(small.jpeg, np.uint8), cv2.IMREAD_COLOR)
    reference = cv2.resize(frame, small.size, interpolation=cv2.INTER_AREA)
    assert np.abs(decoded.astype(int) - reference.astype(int)).mean() < 2
