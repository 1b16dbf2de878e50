"""The sample events in events/ (for `vidpipe invoke` and `sam local invoke`) parse as their functions' events."""

from pathlib import Path

import pytest

from vidpipe.generation.events import JobEvent, PollEvent, SubmitEvent

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("event_file", "model"), [
    ("enhance_prompt.json", JobEvent), ("reserve_generation.json", JobEvent),
    ("submit_generation.json", SubmitEvent), ("check_generation.json", PollEvent), ("store_video.json", PollEvent)])
def test_given_the_sample_events_then_each_parses_as_its_functions_event(event_file, model):
    event = model.model_validate_json((ROOT / "events" / event_file).read_text())
    assert event.job_id and event.request.type == "generate"
