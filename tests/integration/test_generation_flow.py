"""The Generation flow on the local stack: jobs queue → start_jobs → the real
generation ASL executed by moto → handlers in-process → the provider emulator
over HTTP, on a VirtualClock (provider minutes pass in milliseconds)."""

from __future__ import annotations

import json

import pytest

from vidpipe.config import Settings
from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe.jobs import JobStore

pytestmark = pytest.mark.integration
# The handlers' deps() build the DynamoDB-backed accounting; the flow cannot run without it.
pytest.importorskip("vidpipe.spend.accounting", reason="vidpipe.spend.accounting (DynamoAccounting) not written yet")

# Small clips keep the emulator's rendering fast.
CLIP = {"duration_s": 1, "fps": 12, "resolution": "160x96"}


def send(stack, **fields) -> str:
    body = json.dumps({"type": "generate", "prompt": "a glass marble bouncing on a wooden floor", **CLIP, **fields})
    stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
    return execution_name(parse_job_message(body))


def keys(stack, job_id: str) -> list[str]:
    listing = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"outputs/{job_id}/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def provider_jobs(stack) -> set[str]:
    """Provider jobs created: an idempotent replay answers with the job it already made."""
    return {call.job_id for call in stack.emulator.calls if call.kind == "video.submit" and call.status == 200}


@pytest.mark.parametrize("mode", ["normal", "slow_motion", "time_lapse", "hyperlapse"])
def test_given_a_message_per_mode_when_it_runs_then_a_verified_video_and_poster_are_stored(local_stack, mode):
    s = local_stack
    job_id = send(s, mode=mode, enhance_prompt=(mode == "slow_motion"), max_cost_usd=1)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert keys(s, job_id) == [f"outputs/{job_id}/poster.jpg", f"outputs/{job_id}/video.mp4"]
    assert job["outputs"]["verification"]["mismatches"] == []
    details = job["details"]
    assert details["polls"] >= 1 and details["provider_job_id"]
    assert details["enhancement"]["enhanced"] is (mode == "slow_motion")
    assert job["spend"]["clip_seconds"] == 1


def test_given_a_malformed_enhancement_when_it_runs_then_the_original_prompt_is_used_and_recorded(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("chat:malformed:times=always")
    job_id = send(s, enhance_prompt=True)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    enhancement = job["details"]["enhancement"]
    assert enhancement["enhanced"] is False
    assert enhancement["prompt"] == "a glass marble bouncing on a wooden floor"
    assert "malformed" in enhancement["fallback_reason"]


def test_given_the_chat_provider_is_down_when_enhancing_then_the_flow_falls_back_after_retries(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("chat:503:times=always,retry_after=1")
    job_id = send(s, enhance_prompt=True)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    enhancement = job["details"]["enhancement"]
    assert enhancement["enhanced"] is False
    assert enhancement["fallback_reason"] == ("prompt enhancement failed (ProviderRetryable); "
                                              "the original prompt was used")


def test_given_the_provider_fails_the_job_when_it_runs_then_the_job_fails_with_the_providers_reason(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:job_fail:message=content policy violation")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "ProviderError"
    assert "content policy violation" in job["error"]["reason"]
    assert keys(s, job_id) == []


def test_given_a_job_that_never_finishes_when_it_runs_then_the_deadline_cancels_and_times_out(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:job_stall")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "GenerationTimedOut"
    assert job["error"]["reason"].startswith("timed out")
    assert "cancelled at the provider" in job["error"]["reason"]
    assert any(call.kind == "video.cancel" for call in s.emulator.calls)
    checks = sum(1 for call in s.emulator.calls if call.kind == "video.status")
    assert 1 < checks <= Settings().poll_max_attempts


def test_given_a_429_storm_on_submit_and_status_when_it_runs_then_it_still_succeeds_once(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:429:times=3,retry_after=2")
    s.emulator.faults.add_spec("video.status:429:times=4,retry_after=20")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(provider_jobs(s)) == 1
    assert job["details"]["status_errors"] >= 1


def test_given_a_truncated_download_when_it_runs_then_no_object_is_left_in_s3(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.download:truncate:times=always")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert "truncated" in job["error"]["reason"] or "interrupted" in job["error"]["reason"]
    assert keys(s, job_id) == []
    assert s.s3.list_multipart_uploads(Bucket=s.bucket).get("Uploads", []) == []


def test_given_a_download_url_on_a_private_address_when_it_runs_then_it_is_refused(local_stack, monkeypatch):
    import vidpipe.runtime

    s = local_stack
    monkeypatch.setenv("DOWNLOAD_ALLOW_HOSTS", "")  # the deployed configuration: 127.0.0.1 is private
    vidpipe.runtime.reset()
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "DownloadRefused"
    assert "127.0.0.1" in job["error"]["reason"]
    assert keys(s, job_id) == []


def test_given_a_duplicate_message_when_delivered_twice_then_one_provider_submission(local_stack):
    s = local_stack
    first = send(s, client_token="catalogue-1/item-1")
    second = send(s, client_token="catalogue-1/item-1")
    assert first == second

    job = s.wait_for_job(first)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(s.executions(s.generation_arn)) == 1
    assert len(provider_jobs(s)) == 1


def test_given_a_batch_with_one_poison_message_when_delivered_then_the_rest_succeed(local_stack):
    s = local_stack
    good = [send(s, prompt=f"scene {n}") for n in range(3)]
    poison = json.dumps({"type": "generate", "prompt": "x", "fps": 0, "physics": {"gravity_mps2": 99}})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=poison)

    jobs = [s.wait_for_job(job_id) for job_id in good]

    assert [job["status"] for job in jobs] == ["SUCCEEDED"] * 3
    rejected = [item for item in JobStore(s.table, client=s.ddb).ddb.scan(TableName=s.table)["Items"]
                if item.get("status", {}).get("S") == "REJECTED"]
    assert len(rejected) == 1
    reason = rejected[0]["error"]["M"]["reason"]["S"]
    assert "fps: Input should be greater than or equal to 1" in reason
    assert "physics.gravity_mps2: 99 is outside 0–30 m/s²" in reason
