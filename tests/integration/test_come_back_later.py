"""Deadline-aware steps on the local stack, with the retry regime the state machines
really apply: a step that cannot finish hands back "retry after N s" before its
Lambda timeout, and the ASL waits N s and runs it again (docs/analysis.md,
docs/generation.md, "Come back later")."""

from __future__ import annotations

import json
from collections import Counter

import pytest

import vidpipe.deadline

from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe.start_jobs import OPTIONS_METADATA_KEY, upload_job_id
from vidpipe_local import samples
from vidpipe_local.clock import ScaledClock, VirtualClock

pytestmark = pytest.mark.integration

RPM = 6


def busiest_minute(times: list[float]) -> int:
    """The most requests any closed 60 s window holds."""
    times = sorted(times)
    return max(sum(1 for t in times if start <= t <= start + 60.0) for start in times)


def count_invocations(stack) -> Counter:
    """Counts each function's invocations (every Step Functions attempt of a Task is one)."""
    counts: Counter = Counter()
    invoke = stack.lambdas.invoke

    def counting(function_name, event, arn=""):
        counts[stack.lambdas.functions[function_name].logical_id] += 1
        return invoke(function_name, event, arn)

    stack.lambdas.invoke = counting
    return counts


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("come_back") / "clip.mp4"
    samples.sample_with_cuts_and_fade(path, size=(320, 180))
    return path.read_bytes()


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_a_low_rate_limit_and_many_chunks_at_once_when_analyzed_then_every_chunk_comes_back_until_it_succeeds_within_the_limit(
        make_stack, clip, monkeypatch):
    monkeypatch.setenv("SEGMENT_SECONDS", "4")  # 12 s → 3 segments of one-frame chunks, all at once
    # A ScaledClock: concurrent Lambdas wait side by side, as on AWS (a VirtualClock adds their
    # waits up, which delays requests past their booked slots and bunches them at the provider).
    # The bucket books slots at most RPM per minute; a loaded machine can deliver a booked request
    # a little late, so two may land in one provider minute with the next. One request of slack
    # at the provider absorbs that delivery jitter and still catches a bucket that over-admits.
    s = make_stack(clock=ScaledClock(10), parameter_overrides={"RateLimitRpm": RPM},
                   emulator_options={"rpm_limit": RPM + 1})
    invocations = count_invocations(s)
    options = {"sampling": "uniform", "fps": 1, "frames_per_chunk": 1}
    put = s.s3.put_object(Bucket=s.bucket, Key="uploads/busy.mp4", Body=clip,
                          Metadata={OPTIONS_METADATA_KEY: json.dumps(options)})
    job_id = upload_job_id(s.bucket, "uploads/busy.mp4", put["ETag"], options)

    job = s.wait_for_job(job_id, timeout_s=300)

    assert job["status"] == "SUCCEEDED", job.get("error")
    chat = [call for call in s.emulator.calls if call.kind == "chat"]
    assert [call for call in chat if call.status == 429] == []  # the shared bucket kept every call under the limit
    assert busiest_minute([call.timestamp for call in chat]) <= RPM + 1
    chunks = int(job["spend"]["calls"]) - 1  # every chunk's call and the summary's (de-duplication drops a few frames)
    assert chunks > RPM and invocations["AnalyzeChunkFunction"] > chunks  # more than a minute's worth; some came back
    assert s.lambdas.timed_out == []
    print(f"\n{chunks} chunks at {RPM} rpm: {invocations['AnalyzeChunkFunction']} AnalyzeChunk attempts by "
          f"Step Functions, {len(chat)} chat calls over {max(c.timestamp for c in chat) - min(c.timestamp for c in chat):.0f} s")


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_a_chat_provider_slower_than_the_step_when_enhancing_then_the_step_hands_back_before_its_timeout_and_the_job_falls_back(
        make_stack, monkeypatch):
    # Each real second counts 10 on the functions' clocks: the 7 s answer is 70 s, longer than
    # the 60 s chat timeout, and two attempts do not fit in EnhancePrompt's 90 s. The margin
    # covers what the step does after its last attempt (recording it in DynamoDB): ~50 ms on
    # AWS, but moto's real time ×10 here, so it is raised from 5 s to 15 s for this test.
    monkeypatch.setattr(vidpipe.deadline, "MARGIN_S", 15.0)
    s = make_stack(clock=VirtualClock(real_time_scale=10))
    s.emulator.faults.add_spec("chat:latency:delay_s=7,times=always")
    invocations = count_invocations(s)
    body = json.dumps({"type": "generate", "prompt": "a glass marble bouncing on a wooden floor", "duration_s": 1,
                       "fps": 12, "resolution": "160x96", "enhance_prompt": True})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=body)

    job = s.wait_for_job(execution_name(parse_job_message(body)), timeout_s=300)

    timed_out = [invocation.fn.logical_id for invocation in s.lambdas.timed_out]
    assert "EnhancePromptFunction" not in timed_out  # handed back, never Sandbox.Timedout
    assert job["status"] == "SUCCEEDED", job.get("error")
    enhancement = job["details"]["enhancement"]
    assert enhancement["enhanced"] is False
    assert enhancement["fallback_reason"] == ("prompt enhancement failed (ProviderRetryable); "
                                              "the original prompt was used")
    assert invocations["EnhancePromptFunction"] == 1 + 3  # the first run and the ASL's 3 come-backs


def test_given_a_provider_that_keeps_asking_to_come_back_when_submitting_then_the_job_fails_with_the_bound_as_its_reason(
        local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:429:times=always,retry_after=30")
    invocations = count_invocations(s)
    body = json.dumps({"type": "generate", "prompt": "a glass marble bouncing on a wooden floor", "duration_s": 1,
                       "fps": 12, "resolution": "160x96"})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=body)

    job = s.wait_for_job(execution_name(parse_job_message(body)), timeout_s=300)

    assert job["status"] == "FAILED" and job["error"]["error"] == "ProviderRetryable"
    assert job["error"]["reason"].startswith("gave up after 6 come-backs and ")  # ProviderRetryable: 5 at most
    assert "retry after 30 s: HTTP 429" in job["error"]["reason"]
    assert invocations["SubmitGenerationFunction"] == 6  # the first run and 5 come-backs
    submits = sorted(call.timestamp for call in s.emulator.calls if call.kind == "video.submit")
    gaps = [b - a for a, b in zip(submits, submits[1:])]
    assert gaps and min(gaps) >= 30  # every retry, in the Lambda or by the state machine, waited Retry-After
    assert s.lambdas.timed_out == []
