"""A retried SubmitGeneration invocation (Lambda retry, Step Functions retry)
returns the recorded poll state and never reaches the provider twice."""

import json

import pytest

from vidpipe_local.stack.stack import REPO_ROOT

pytestmark = pytest.mark.integration


def test_given_the_same_submit_event_twice_when_invoked_then_one_provider_submission_and_the_same_poll(
        local_stack):
    event = json.loads((REPO_ROOT / "events/submit_generation.json").read_text())

    first, first_failed = local_stack.invoke("SubmitGenerationFunction", event)
    second, second_failed = local_stack.invoke("SubmitGenerationFunction", event)

    assert not first_failed and not second_failed
    assert second == first and first["provider_job_id"]
    submits = [c for c in local_stack.emulator.calls if c.kind == "video.submit"]
    assert len(submits) == 1


def test_given_another_job_when_submitted_then_it_is_not_mistaken_for_a_retry(local_stack):
    event = json.loads((REPO_ROOT / "events/submit_generation.json").read_text())
    local_stack.invoke("SubmitGenerationFunction", event)
    other = {**event, "job_id": "gen-another-job"}

    result, failed = local_stack.invoke("SubmitGenerationFunction", other)

    assert not failed and len([c for c in local_stack.emulator.calls if c.kind == "video.submit"]) == 2
