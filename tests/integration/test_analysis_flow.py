"""The Analysis flow on the local stack: upload → ingest queue → start_jobs →
the real analysis ASL executed by moto → handlers in-process → the provider
emulator over HTTP, on a VirtualClock."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from vidpipe.analysis.models import Manifest
from vidpipe.start_jobs import OPTIONS_METADATA_KEY, upload_job_id
from vidpipe_local import samples
from vidpipe_local.emulator.pixels import image_signature

pytestmark = pytest.mark.integration

TRUE_CUTS = [3.0, 6.0, 9.0]  # sample_with_cuts_and_fade: hard cut, fade through black, hard cut


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("analysis") / "clip.mp4"
    samples.sample_with_cuts_and_fade(path, size=(640, 360))
    return path.read_bytes()


def upload(stack, key: str, body: bytes, **options) -> str:
    put = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body,
                              Metadata={OPTIONS_METADATA_KEY: json.dumps(options)} if options else {})
    return upload_job_id(stack.bucket, key, put["ETag"], options)


def run(stack, key: str, body: bytes, **options) -> tuple[str, dict]:
    job_id = upload(stack, key, body, **options)
    return job_id, stack.wait_for_job(job_id, timeout_s=300)


def read_json(stack, key: str):
    return json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def manifests(stack, job_id: str, segments: int) -> list[Manifest]:
    return [Manifest.model_validate(read_json(stack, f"work/{job_id}/manifests/{i}.json")) for i in range(segments)]


def chat_calls(stack) -> list:
    return [call for call in stack.emulator.calls if call.kind == "chat"]


def scene_starts(report: dict) -> list[float]:
    return [scene["start_s"] for scene in report["scenes"][1:]]


def test_given_a_clip_with_cuts_and_a_fade_when_analyzed_then_scenes_follow_the_shots_and_the_report_is_complete(
        local_stack, clip):
    s = local_stack
    job_id, job = run(s, "uploads/cuts and fade.mp4", clip)

    assert job["status"] == "SUCCEEDED", job.get("error")
    report = read_json(s, f"reports/{job_id}/report.json")
    assert len(report["scenes"]) == 4
    assert all(abs(found - true) <= 0.5 for found, true in zip(scene_starts(report), TRUE_CUTS))
    assert report["sampling"]["strategy"] == "scene"
    assert report["summary"] and report["tags"]
    for name in ("report.md", "contact_sheet.jpg"):
        assert s.s3.head_object(Bucket=s.bucket, Key=f"reports/{job_id}/{name}")["ContentLength"] > 0
    calls = [c for c in chat_calls(s) if c.status == 200]
    assert report["spend"]["calls"] == len(calls)
    assert report["spend"]["input_tokens"] == sum(c.prompt_tokens for c in calls)


def test_given_an_analysis_then_the_provider_received_exactly_the_frames_of_the_manifests(local_stack, clip):
    s = local_stack
    job_id, job = run(s, "uploads/frames.mp4", clip)

    assert job["status"] == "SUCCEEDED", job.get("error")
    planned = [image_signature(s.s3.get_object(Bucket=s.bucket, Key=frame.key)["Body"].read())
               for manifest in manifests(s, job_id, 1) for frame in manifest.frames]
    received = [sig for call in chat_calls(s) if call.status == 200 for sig in call.image_signatures]
    assert Counter(received) == Counter(planned) and planned


def test_given_a_video_longer_than_a_segment_when_analyzed_then_segments_are_stitched_in_order(
        make_stack, clip, monkeypatch):
    monkeypatch.setenv("SEGMENT_SECONDS", "4")  # 12 s → segments [0, 4), [4, 8), [8, 12)
    s = make_stack()
    job_id, job = run(s, "uploads/long one.mp4", clip)

    assert job["status"] == "SUCCEEDED", job.get("error")
    report = read_json(s, f"reports/{job_id}/report.json")
    assert report["sampling"]["segments"] == 3
    assert all(abs(found - true) <= 0.5 for found, true in zip(scene_starts(report), TRUE_CUTS))
    assert len(report["scenes"]) == 4  # no scene boundary at 4 s or 8 s
    scenes = report["scenes"]
    assert scenes[0]["start_s"] == 0.0 and scenes[-1]["end_s"] == pytest.approx(report["video"]["duration_s"])
    assert all(a["end_s"] == b["start_s"] for a, b in zip(scenes, scenes[1:]))
    assert [m.segment.index for m in manifests(s, job_id, 3)] == [0, 1, 2]


def test_given_the_same_notification_twice_when_delivered_then_one_execution_and_one_analysis(local_stack, clip):
    s = local_stack
    job_id = upload(s, "uploads/twice.mp4", clip)
    messages = s.sqs.receive_message(QueueUrl=s.ingest_queue_url, MaxNumberOfMessages=10)["Messages"]
    for message in messages:
        s.sqs.change_message_visibility(QueueUrl=s.ingest_queue_url, ReceiptHandle=message["ReceiptHandle"],
                                        VisibilityTimeout=0)
        s.sqs.send_message(QueueUrl=s.ingest_queue_url, MessageBody=message["Body"])

    job = s.wait_for_job(job_id, timeout_s=300)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(s.executions(s.analysis_arn)) == 1


@pytest.mark.parametrize("name, make", [
    ("random bytes.mp4", lambda path: samples.random_bytes_file(path)),
    ("empty.mp4", lambda path: samples.zero_byte_file(path)),
    ("cut short.mp4", lambda path: samples.truncated_mp4(path)),
    ("only sound.mp4", lambda path: samples.audio_only_mp4(path)),
])
def test_given_a_bad_input_when_analyzed_then_the_job_fails_with_a_reason_and_no_provider_call(
        local_stack, tmp_path, name, make):
    s = local_stack
    path = tmp_path / "input.mp4"
    make(path)

    _, job = run(s, f"uploads/{name}", path.read_bytes())

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "InputRejected" and len(job["error"]["reason"]) > 10
    assert chat_calls(s) == []


def test_given_a_budget_below_the_estimate_when_analyzed_then_it_fails_before_any_provider_call(local_stack, clip):
    s = local_stack
    _, job = run(s, "uploads/pricey.mp4", clip, budget_usd=0.0001)  # the smallest budget accepted

    assert job["status"] == "FAILED" and job["error"]["error"] == "BudgetExceeded"
    assert chat_calls(s) == []


@pytest.mark.parametrize("spec", ["chat:429:times=2,retry_after=1", "chat:503:times=2", "chat:malformed:times=1"])
def test_given_transient_provider_faults_when_analyzed_then_they_are_retried_and_the_job_succeeds(
        local_stack, clip, spec):
    s = local_stack
    s.emulator.faults.add_spec(spec)

    _, job = run(s, "uploads/faulty provider.mp4", clip)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert any(call.fault for call in chat_calls(s))


def test_given_a_provider_that_refuses_when_analyzed_then_the_job_fails_without_retrying(local_stack, clip):
    s = local_stack
    s.emulator.faults.add_spec("chat:400:times=always")

    _, job = run(s, "uploads/refused.mp4", clip)

    assert job["status"] == "FAILED" and job["error"]["error"] == "ProviderError"
    assert "HTTP 400" in job["error"]["reason"]
    assert len(chat_calls(s)) <= 2  # one request per chunk, none repeated (the clip makes at most two chunks)


@pytest.mark.parametrize("key", ["uploads/my holiday clip.mp4", "uploads/café – été ü.mp4", "uploads/a+b=c.mp4"])
def test_given_keys_with_spaces_unicode_and_plus_when_analyzed_then_the_report_names_the_key(local_stack, clip, key):
    s = local_stack
    job_id, job = run(s, key, clip)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert read_json(s, f"reports/{job_id}/report.json")["source"]["key"] == key
