import json
from pathlib import Path

import pytest

from vidpipe.analysis.models import AnalyzeEvent, ExtractEvent, PlanEvent, ProbeEvent, SummarizeEvent

EVENTS = Path(__file__).resolve().parents[3] / "events"


@pytest.mark.parametrize("name, model", [("probe_video", ProbeEvent), ("plan_analysis", PlanEvent),
                                         ("extract_frames", ExtractEvent), ("analyze_chunk", AnalyzeEvent),
                                         ("summarize_report", SummarizeEvent)])
def test_given_a_sample_event_file_then_it_is_a_valid_event_for_its_function(name, model):
    text = (EVENTS / f"{name}.json").read_text().replace("{{MEDIA_BUCKET}}", "media")

    event = model.model_validate(json.loads(text))

    assert event.job_id == "an-example-job"
