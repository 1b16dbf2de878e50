import json

import httpx
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
from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.providers.http import RetryPolicy

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


def test_given_an_analyzed_chunk_when_the_ledger_is_written_then_the_entry_is_keyed_by_the_request_id_sent(
        s3, accounting):
    put_segment(s3, "job-1", 3, 180.0, 240.0, [181.0, 182.0, 183.0, 184.0, 185.0], frames_per_chunk=4)
    gateway = ScriptedGateway(describe_every_image)

    analyze_chunk(event(1, segment=3), s3, BUCKET, chat_with(gateway), accounting)

    (call,) = accounting.ledger.values()
    assert (call.step, call.call_key, call.provider, call.model, call.images, call.confirmed) == \
        ("analyze", gateway.client_request_ids[0], "gemini", "gemini-2.5-flash", 1, True)
    assert call.input_tokens == 258 + 90 and call.expected_prompt_tokens > 258
    assert call.request_id == "chatcmpl-1"  # the provider's own id, kept beside ours
    assert [provider for provider, _ in accounting.acquired] == ["gemini"]
    assert accounting.intents == {}


class FailingFirstPut:
    """An S3 client whose first put of a chunk result fails: the Lambda dies after its call."""

    def __init__(self, s3):
        self._s3, self.failed = s3, False

    def put_object(self, **kwargs):
        if not self.failed and "/chunks/" in kwargs["Key"]:
            self.failed = True
            raise ConnectionError("the Lambda was killed")
        return self._s3.put_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._s3, name)


def test_given_a_chunk_whose_result_was_not_saved_when_retried_then_both_calls_have_entries(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    gateway = ScriptedGateway(describe_every_image)
    store = FailingFirstPut(s3)

    with pytest.raises(ConnectionError):
        analyze_chunk(event(0), store, BUCKET, chat_with(gateway), accounting)
    analyze_chunk(event(0), store, BUCKET, chat_with(gateway), accounting)

    assert len(gateway.requests) == 2  # the provider answered (and billed) twice
    assert sorted(key for _, key in accounting.ledger) == sorted(gateway.client_request_ids)
    assert all(call.confirmed for call in accounting.ledger.values())


def test_given_a_read_timeout_then_an_answer_when_analyzed_then_the_lost_answer_is_an_unconfirmed_entry(
        s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    gateway = ScriptedGateway(httpx.ReadTimeout("no answer in time"), describe_every_image)

    analyze_chunk(event(0), s3, BUCKET, chat_with(gateway), accounting)

    lost, answered = (accounting.ledger[("job-1", key)] for key in gateway.client_request_ids)
    assert (answered.confirmed, answered.input_tokens) == (True, 258 * 2 + 90)
    # the estimate: image and text rules for the prompt, max_tokens for the answer
    assert (lost.confirmed, lost.input_tokens, lost.output_tokens) == (False, answered.expected_prompt_tokens,
                                                                       2 * 120 * 2)
    assert lost.input_tokens >= 258 * 2 + 90 and lost.images == 2


def test_given_a_503_then_an_answer_when_analyzed_then_the_refused_attempt_has_no_entry(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    gateway = ScriptedGateway(httpx.Response(503, json={"error": {"message": "overloaded"}}), describe_every_image)

    analyze_chunk(event(0), s3, BUCKET, chat_with(gateway), accounting)

    assert list(accounting.ledger) == [("job-1", gateway.client_request_ids[1])]
    assert accounting.intents == {}


def test_given_503_every_time_when_analyzed_then_nothing_is_recorded_and_nothing_is_left_open(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0], frames_per_chunk=4)
    gateway = ScriptedGateway(httpx.Response(503, json={}))

    with pytest.raises(ProviderRetryable):
        analyze_chunk(event(0), s3, BUCKET, chat_with(gateway, policy=RetryPolicy(max_attempts=2)), accounting)

    assert accounting.ledger == {} and accounting.intents == {}


def test_given_a_chunk_already_analyzed_when_run_again_then_nothing_is_sent_or_recorded(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    gateway = ScriptedGateway(describe_every_image)
    chat = chat_with(gateway)
    analyze_chunk(event(0), s3, BUCKET, chat, accounting)

    again = analyze_chunk(event(0), s3, BUCKET, chat, accounting)

    assert again.reused and again.frames == 2
    assert len(gateway.requests) == 1 and len(accounting.ledger) == 1


def test_given_an_invalid_answer_first_when_analyzed_then_both_calls_are_in_the_ledger_with_their_usage(
        s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0, 2.0], frames_per_chunk=4)
    gateway = ScriptedGateway(completion('{"frames": [', prompt_tokens=700, completion_tokens=5, request_id="r-bad"),
                              describe_every_image)

    analyze_chunk(event(0), s3, BUCKET, chat_with(gateway), accounting)

    keys_and_tokens = {call.call_key: (call.input_tokens, call.confirmed) for call in accounting.ledger.values()}
    assert keys_and_tokens == {gateway.client_request_ids[0]: (700, True),
                               gateway.client_request_ids[1]: (258 * 2 + 90, True)}
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
    assert all(call.confirmed for call in accounting.ledger.values())  # at the usage the provider reported
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="work/job-1/chunks/").get("KeyCount") == 0


def test_given_bodies_that_are_never_a_completion_when_analyzed_then_each_is_an_unconfirmed_entry(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [1.0], frames_per_chunk=4)
    gateway = ScriptedGateway(httpx.Response(200, content=b'{"choices": [{"message": {"content": "{\\"fra'))

    with pytest.raises(ProviderError, match="malformed completion body"):
        analyze_chunk(event(0), s3, BUCKET, chat_with(gateway), accounting)

    assert sorted(key for _, key in accounting.ledger) == sorted(gateway.client_request_ids)
    assert [(c.confirmed, c.output_tokens) for c in accounting.ledger.values()] == [(False, 240)] * 3
