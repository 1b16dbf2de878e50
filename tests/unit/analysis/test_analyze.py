import json

import pytest
from analysis_fakes import (
    BUCKET,
    ScriptedGateway,
    chat_with,
    completion,
    data_url_bytes,
    describe_every_image,
    put_segment,
)

from vidpipe.analysis import keys
from vidpipe.analysis.analyze import analyze_chunk
from vidpipe.analysis.models import AnalyzeEvent, AnalyzeSpec, ChunkResult
from vidpipe.errors import ProviderError

SPEC = AnalyzeSpec(model="gemini-2.5-flash", provider="gemini", detail="high")


def event(chunk: int, job_id: str = "job-1", segment: int = 0) -> AnalyzeEvent:
    return AnalyzeEvent(job_id=job_id, manifest_key=keys.manifest_key(job_id, segment), chunk=chunk, analyze=SPEC)


def test_given_ten_frames_in_chunks_of_four_when_chunking_then_three_chunks_keep_every_frame_once(s3):
    manifest = put_segment(s3, "job-1", 0, 0.0, 10.0, [float(t) for t in range(10)], frames_per_chunk=4)

    chunks = [manifest.chunk(i) for i in range(manifest.chunk_count)]

    assert [len(c) for c in chunks] == [4, 4, 2]
    assert [f.n for c in chunks for f in c] == list(range(10))
    with pytest.raises(IndexError):
        manifest.chunk(3)


def test_given_a_chunk_when_analyzed_then_its_frames_are_sent_labelled_in_order_with_the_planned_detail(s3, accounting):
    manifest = put_segment(s3, "job-1", 0, 0.0, 10.0, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], frames_per_chunk=4)
    gateway = ScriptedGateway(describe_every_image)

    analyze_chunk(event(1), s3, BUCKET, chat_with(gateway), accounting)

    content = gateway.bodies[0]["messages"][0]["content"]
    labels = [p["text"] for p in content if p["type"] == "text"][1:]
    images = [p["image_url"] for p in content if p["type"] == "image_url"]
    assert labels == ["Frame 0 at 4.50s", "Frame 1 at 5.50s"]
    assert [i["detail"] for i in images] == ["high", "high"]
    sent = [data_url_bytes(i["url"]) for i in images]
    expected = [s3.get_object(Bucket=BUCKET, Key=f.key)["Body"].read() for f in manifest.chunk(1)]
    assert sent == expected
    assert gateway.bodies[0]["response_format"]["json_schema"]["strict"] is True


def test_given_an_answer_when_analyzed_then_the_chunk_result_maps_answers_to_frame_timestamps_and_keys(s3, accounting):
    manifest = put_segment(s3, "job-1", 2, 120.0, 180.0, [121.0, 125.0, 130.0], frames_per_chunk=8)
    gateway = ScriptedGateway(describe_every_image)

    result = analyze_chunk(event(0, segment=2), s3, BUCKET, chat_with(gateway), accounting)

    stored = ChunkResult.model_validate_json(s3.get_object(Bucket=BUCKET, Key=result.chunk_key)["Body"].read())
    assert result.chunk_key == "work/job-1/chunks/2-0.json" and not result.reused
    assert [(f.timestamp_s, f.key, f.description) for f in stored.frames] == \
        [(f.timestamp_s, f.key, f"picture {i}") for i, f in enumerate(manifest.frames)]
    assert (stored.input_tokens, stored.output_tokens) == (258 * 3 + 90, 120)


def test_given_an_analyzed_chunk_when_the_ledger_is_written_then_the_call_key_is_segment_dash_chunk(s3, accounting):
    put_segment(s3, "job-1", 3, 180.0, 240.0, [181.0, 182.0, 183.0, 184.0, 185.0], frames_per_chunk=4)
    gateway = ScriptedGateway(describe_every_image)

    analyze_chunk(event(1, segment=3), s3, BUCKET, chat_with(gateway), accounting)

    (call,) = accounting.ledger.values()
    assert (call.step, call.call_key, call.provider, call.model, call.images) == \
        ("analyze", "3-1", "gemini", "gemini-2.5-flash", 1)
    assert call.input_tokens == 258 + 90 and call.expected_prompt_tokens > 258
    assert [provider for provider, _ in accounting.acquired] == ["gemini"]


def test_given_a_chunk_already_analyzed_when_run_again_then_nothing_is_sent_or_recorded(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    gateway = ScriptedGateway(describe_every_image)
    chat = chat_with(gateway)
    analyze_chunk(event(0), s3, BUCKET, chat, accounting)

    again = analyze_chunk(event(0), s3, BUCKET, chat, accounting)

    assert again.reused and again.frames == 2
    assert len(gateway.requests) == 1 and len(accounting.ledger) == 1


def test_given_a_malformed_answer_first_when_analyzed_then_both_calls_are_in_the_ledger_under_distinct_keys(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    gateway = ScriptedGateway(completion('{"frames": [', prompt_tokens=700, completion_tokens=5, request_id="r-bad"),
                              describe_every_image)

    analyze_chunk(event(0), s3, BUCKET, chat_with(gateway), accounting)

    keys_and_tokens = {call.call_key: call.input_tokens for call in accounting.ledger.values()}
    assert keys_and_tokens == {"0-0-rejected-r-bad": 700, "0-0": 258 * 2 + 90}
    assert len(accounting.acquired) == 2  # the rate limiter saw both requests


def test_given_an_answer_missing_a_frame_when_analyzed_then_it_is_asked_again(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    one_frame = {"frames": [{"index": 0, "description": "x", "subjects": [], "actions": [], "setting": "",
                             "text_on_screen": "", "tags": []}]}
    gateway = ScriptedGateway(completion(json.dumps(one_frame), request_id="r-short"), describe_every_image)

    result = analyze_chunk(event(0), s3, BUCKET, chat_with(gateway), accounting)

    assert result.frames == 2 and len(gateway.requests) == 2


def test_given_answers_that_never_validate_when_analyzed_then_provider_error_and_no_chunk_result(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0], frames_per_chunk=4)
    gateway = ScriptedGateway(*(completion("I cannot answer in JSON, sorry.", request_id=f"r-{i}") for i in range(3)))

    with pytest.raises(ProviderError):
        analyze_chunk(event(0), s3, BUCKET, chat_with(gateway), accounting)

    assert len(gateway.requests) == 3
    assert len(accounting.ledger) == 3  # every rejected answer still cost tokens
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="work/job-1/chunks/").get("KeyCount") == 0
