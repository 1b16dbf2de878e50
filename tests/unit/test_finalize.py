"""Finalize settles money on every outcome and records one readable reason."""

import json
from decimal import Decimal

from vidpipe.finalize import FinalizeInput, explain, finalize
from vidpipe.jobs import JobStatus


class FakeAccounting:
    def __init__(self):
        self.settled = []

    def settle(self, job_id, reservation_id):
        self.settled.append((job_id, reservation_id))
        return {"cost_usd": Decimal("0.0123"), "calls": 2}


class FakeJobs:
    def __init__(self):
        self.updates = []

    def update(self, job_id, status=None, **fields):
        self.updates.append((job_id, status, fields))
        return True

    def get(self, job_id):
        return None  # no record to announce (vidpipe.completion is tested in test_completion.py)


class D:
    def __init__(self):
        self.accounting, self.jobs = FakeAccounting(), FakeJobs()


def test_given_a_lambda_error_cause_then_the_reason_is_its_error_message():
    cause = json.dumps({"errorType": "InputRejected", "errorMessage": "not a video: no video stream\nmore"})
    assert explain({"Error": "InputRejected", "Cause": cause}) == {
        "error": "InputRejected", "reason": "not a video: no video stream"}


def test_given_a_plain_cause_then_it_is_used_as_is():
    assert explain({"Error": "States.Timeout", "Cause": "took too long"})["reason"] == "took too long"


def test_given_a_failed_job_when_finalized_then_reservation_settled_and_job_failed_with_reason():
    deps = D()
    out = finalize(FinalizeInput(job_id="j1", outcome="FAILED", reservation_id="r1",
                                 error={"Error": "ProviderError", "Cause": "HTTP 401"}), deps)
    assert deps.accounting.settled == [("j1", "r1")]
    job_id, status, fields = deps.jobs.updates[0]
    assert status is JobStatus.FAILED and fields["error"]["reason"] == "HTTP 401"
    assert out["status"] == "FAILED" and fields["spend"]["calls"] == 2


def test_given_a_successful_job_when_finalized_then_outputs_recorded_and_no_error():
    deps = D()
    finalize(FinalizeInput(job_id="j2", outcome="SUCCEEDED", outputs={"video": "outputs/j2/video.mp4"}), deps)
    _, status, fields = deps.jobs.updates[0]
    assert status is JobStatus.SUCCEEDED and fields["error"] is None and fields["outputs"]["video"].endswith(".mp4")


def test_given_a_reference_image_a_step_found_unusable_when_finalized_then_the_job_is_rejected_and_settled():
    deps = D()
    cause = json.dumps({"errorType": "ReferenceImageRejected", "errorMessage": "reference_image: not a decodable image"})
    out = finalize(FinalizeInput(job_id="j3", outcome="FAILED", reservation_id="r3",
                                 error={"Error": "ReferenceImageRejected", "Cause": cause}), deps)
    _, status, fields = deps.jobs.updates[0]
    assert status is JobStatus.REJECTED and out["status"] == "REJECTED"
    assert fields["error"] == {"error": "ReferenceImageRejected", "reason": "reference_image: not a decodable image"}
    assert deps.accounting.settled == [("j3", "r3")]
