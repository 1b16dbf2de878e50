import json

import boto3
import httpx
import pytest
from botocore.stub import ANY, Stubber

from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.video import Status, VideoRequest, billed_seconds, build_video_provider
from vidpipe.providers.video.bedrock import BedrockVideoProvider
from vidpipe.providers.video.generic import GenericPaths, GenericVideoProvider

REQUEST = VideoRequest(prompt="a marble bounces", model="vidgen-1", mode="slow_motion", duration_s=5.5, fps=24,
                       resolution="1280x720", physics={"time_scale": 0.25},
                       output_s3_uri="s3://media/outputs/job-1/provider")
NO_WAIT = RetryPolicy(max_attempts=3, base_delay_s=0, max_total_wait_s=5)


class Recorder:
    """An httpx transport answering from a list of (status, body) in order, recording requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.answers[min(len(self.requests), len(self.answers)) - 1]
        headers = {"Retry-After": "0"} if status == 429 else {}
        return httpx.Response(status, json=body, headers=headers)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def http_provider(name: str, recorder: Recorder, **kwargs):
    return build_video_provider(name, base_url="https://video.test", api_key="sk-video", policy=NO_WAIT,
                                sleep=lambda _s: None, http_client=recorder.client(), **kwargs)


# ------------------------------------------------------------------ generic

def test_given_a_generic_provider_when_submitting_then_it_posts_the_request_with_an_idempotency_key():
    recorder = Recorder((200, {"id": "gen_1", "status": "queued", "eta_seconds": 42}))
    submitted = http_provider("generic", recorder).submit(REQUEST, "key-1")

    [request] = recorder.requests
    assert (request.method, str(request.url)) == ("POST", "https://video.test/v1/video/generate")
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.headers["Authorization"] == "Bearer sk-video"
    assert json.loads(request.content) == {"model": "vidgen-1", "prompt": "a marble bounces", "mode": "slow_motion",
                                           "duration_s": 5.5, "fps": 24, "resolution": "1280x720",
                                           "physics": {"time_scale": 0.25}}
    assert (submitted.provider_job_id, submitted.eta_s) == ("gen_1", 42.0)


def test_given_a_submit_answer_without_eta_when_submitting_then_an_estimate_stands_in():
    submitted = http_provider("generic", Recorder((200, {"id": "gen_1"}))).submit(REQUEST, "k")
    assert submitted.eta_s == pytest.approx(15 * 5.5)


def test_given_configured_paths_when_checking_then_they_are_used_and_ids_are_escaped():
    recorder = Recorder((200, {"status": "running", "progress": 40}))
    provider = GenericVideoProvider("https://video.test/api", "", http_client=recorder.client(),
                                    paths=GenericPaths(status="/jobs/{id}"))
    status = provider.status("a/b")
    assert str(recorder.requests[0].url) == "https://video.test/api/jobs/a%2Fb"
    assert "Authorization" not in recorder.requests[0].headers
    assert status == Status("processing", progress=0.4)


@pytest.mark.parametrize(("body", "expected"), [
    ({"status": "queued", "progress": 0, "eta_seconds": 30}, Status("queued", progress=0.0, eta_s=30.0)),
    ({"status": "processing", "progress": 0.5, "eta_seconds": 12.5}, Status("processing", progress=0.5, eta_s=12.5)),
    ({"status": "completed", "progress": 1, "video_url": "https://cdn.test/v.mp4"},
     Status("completed", progress=1.0, download_url="https://cdn.test/v.mp4")),
    ({"status": "failed", "error": {"message": "content policy violation"}},
     Status("failed", error="content policy violation")),
    ({"status": "failed", "error": "GPU\nfell over"}, Status("failed", error="GPU fell over")),
])
def test_given_a_generic_status_answer_when_checking_then_it_maps_to_the_common_status(body, expected):
    assert http_provider("generic", Recorder((200, body))).status("gen_1") == expected


@pytest.mark.parametrize("body", [{"status": "completed"}])  # completed, but no video_url
def test_given_an_answer_outside_the_contract_when_checking_then_it_is_a_provider_error(body):
    with pytest.raises(ProviderError):
        http_provider("generic", Recorder((200, body))).status("gen_1")


def test_given_a_429_then_success_when_checking_then_the_status_is_retried():
    recorder = Recorder((429, {"error": "slow down"}), (200, {"status": "queued"}))
    assert http_provider("generic", recorder).status("gen_1").state == "queued"
    assert len(recorder.requests) == 2


def test_given_only_5xx_when_checking_then_it_is_retryable_not_fatal():
    with pytest.raises(ProviderRetryable):
        http_provider("generic", Recorder((503, {}))).status("gen_1")


def test_given_a_body_that_is_not_json_when_submitting_then_it_is_retryable():
    provider = GenericVideoProvider("https://video.test", "", http_client=httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))))
    with pytest.raises(ProviderRetryable, match="without a JSON object"):
        provider.submit(REQUEST, "k")


def test_given_a_generic_job_when_cancelling_then_it_posts_to_the_cancel_path_and_reads_the_answer():
    recorder = Recorder((200, {"status": "cancelled", "error": "cancelled by the client"}))
    assert http_provider("generic", recorder).cancel("gen_1") == Status("failed", error="cancelled by the client")
    assert (recorder.requests[0].method, recorder.requests[0].url.path) == ("POST", "/v1/video/generations/gen_1/cancel")


def test_given_a_job_that_completed_before_the_cancel_when_cancelling_then_the_answer_says_completed():
    recorder = Recorder((200, {"status": "completed", "progress": 1, "video_url": "https://video.test/v.mp4"}))
    answer = http_provider("generic", recorder).cancel("gen_1")
    assert (answer.state, answer.download_url) == ("completed", "https://video.test/v.mp4")


@pytest.mark.parametrize("name, body", [("generic", {"status": "moderating"}),
                                        ("openai", {"id": "video_1", "status": "rendering_v2"})])
def test_given_a_status_the_adapter_does_not_know_when_checking_then_the_job_counts_as_still_running(name, body):
    assert http_provider(name, Recorder((200, body))).status("x").state == "processing"


@pytest.mark.parametrize("answer", [
    lambda request: httpx.Response(200, text='{"id": "gen_1", "sta'),  # garbled
    lambda request: httpx.Response(200, json={"status": "queued"}),  # no id
    lambda request: (_ for _ in ()).throw(httpx.ReadTimeout("read timed out", request=request)),
])
def test_given_a_submit_whose_answer_is_lost_when_submitting_then_the_error_says_the_answer_was_lost(answer):
    provider = GenericVideoProvider("https://video.test", "", policy=NO_WAIT, sleep=lambda _s: None,
                                    http_client=httpx.Client(transport=httpx.MockTransport(answer)))
    with pytest.raises((ProviderError, ProviderRetryable)) as failed:
        provider.submit(REQUEST, "k")
    assert failed.value.details.get("answer_lost") is True


@pytest.mark.parametrize("answer", [
    lambda request: httpx.Response(503, json={"error": "busy"}),
    lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)),
])
def test_given_a_submit_refused_outright_when_submitting_then_no_answer_was_lost(answer):
    provider = GenericVideoProvider("https://video.test", "", policy=NO_WAIT, sleep=lambda _s: None,
                                    http_client=httpx.Client(transport=httpx.MockTransport(answer)))
    with pytest.raises(ProviderRetryable) as failed:
        provider.submit(REQUEST, "k")
    assert "answer_lost" not in failed.value.details


def test_given_download_urls_when_asking_for_headers_then_credentials_go_only_to_the_provider_origin():
    provider = http_provider("generic", Recorder())
    assert provider.download_headers("https://video.test/files/v.mp4") == {"Authorization": "Bearer sk-video"}
    assert provider.download_headers("https://cdn.elsewhere.test/v.mp4") == {}
    assert provider.download_headers("http://video.test/files/v.mp4") == {}


# ------------------------------------------------------------------ openai

def test_given_the_openai_api_when_submitting_then_seconds_and_size_follow_its_shape():
    recorder = Recorder((200, {"id": "video_1", "object": "video", "status": "queued", "progress": 0}))
    submitted = http_provider("openai", recorder).submit(REQUEST, "key-1")

    [request] = recorder.requests
    assert (request.method, request.url.path) == ("POST", "/v1/videos")
    assert request.headers["Idempotency-Key"] == "key-1"
    assert json.loads(request.content) == {"model": "vidgen-1", "prompt": "a marble bounces", "seconds": "6",
                                           "size": "1280x720"}
    assert submitted.provider_job_id == "video_1" and submitted.eta_s > 0


@pytest.mark.parametrize(("body", "expected"), [
    ({"status": "queued", "progress": 0}, Status("queued", progress=0.0)),
    ({"status": "in_progress", "progress": 35}, Status("processing", progress=0.35)),
    ({"status": "completed", "progress": 100},
     Status("completed", progress=1.0, download_url="https://video.test/v1/videos/video_1/content")),
    ({"status": "failed", "progress": 80, "error": {"code": "moderation", "message": "blocked"}},
     Status("failed", progress=0.8, error="blocked")),
])
def test_given_an_openai_video_object_when_checking_then_it_maps_to_the_common_status(body, expected):
    recorder = Recorder((200, {"id": "video_1", "object": "video", **body}))
    assert http_provider("openai", recorder).status("video_1") == expected
    assert recorder.requests[0].url.path == "/v1/videos/video_1"


def test_given_the_openai_api_when_cancelling_then_it_says_it_cannot():
    recorder = Recorder()
    assert http_provider("openai", recorder).cancel("video_1") is None
    assert recorder.requests == []


def test_given_the_openai_content_url_when_downloading_then_the_bearer_key_is_sent():
    provider = http_provider("openai", Recorder())
    assert provider.download_headers("https://video.test/v1/videos/video_1/content") == {
        "Authorization": "Bearer sk-video"}


# ------------------------------------------------------------------ bedrock

ARN = "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcdefghij12"


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber


def test_given_nova_reel_when_submitting_then_start_async_invoke_carries_the_token_and_s3_output(bedrock):
    client, stubber = bedrock
    request = VideoRequest(prompt="waves", model="amazon.nova-reel-v1:1", mode="normal", duration_s=6, fps=24,
                           resolution="1280x720", output_s3_uri="s3://media/outputs/job-1/provider")
    stubber.add_response("start_async_invoke", {"invocationArn": ARN}, {
        "modelId": "amazon.nova-reel-v1:1", "clientRequestToken": "vidpipe-submit-abc",
        "modelInput": {"taskType": "TEXT_VIDEO", "textToVideoParams": {"text": "waves"},
                       "videoGenerationConfig": {"durationSeconds": 6, "fps": 24, "dimension": "1280x720"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://media/outputs/job-1/provider"}}})
    acquired = []

    submitted = BedrockVideoProvider(client, on_attempt=acquired.append).submit(request, "vidpipe-submit-abc")

    assert submitted.provider_job_id == ARN and submitted.eta_s == 90
    assert acquired == [0]
    stubber.assert_no_pending_responses()


def test_given_luma_ray_when_submitting_then_the_luma_input_shape_is_sent(bedrock):
    client, stubber = bedrock
    request = VideoRequest(prompt="a fox", model="luma.ray-v2:0", mode="normal", duration_s=7, fps=24,
                           resolution="720x1280", output_s3_uri="s3://media/o")
    stubber.add_response("start_async_invoke", {"invocationArn": ARN}, {
        "modelId": "luma.ray-v2:0", "clientRequestToken": ANY, "outputDataConfig": ANY,
        "modelInput": {"prompt": "a fox", "aspect_ratio": "9:16", "loop": False, "duration": "9s",
                       "resolution": "720p"}})
    BedrockVideoProvider(client).submit(request, "k")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(("answer", "expected"), [
    ({"status": "InProgress"}, Status("processing")),
    ({"status": "Completed", "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://media/outputs/j/provider/abc/"}}},
     Status("completed", progress=1.0, s3_uri="s3://media/outputs/j/provider/abc/output.mp4")),
    ({"status": "Failed", "failureMessage": "ValidationException: prompt too long"},
     Status("failed", error="ValidationException: prompt too long")),
])
def test_given_get_async_invoke_answers_when_checking_then_they_map_to_the_common_status(bedrock, answer, expected):
    client, stubber = bedrock
    base = {"invocationArn": ARN, "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-reel-v1:1",
            "clientRequestToken": "k", "submitTime": "2025-01-01T00:00:00Z",
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://media/o"}}}
    stubber.add_response("get_async_invoke", {**base, **answer}, {"invocationArn": ARN})
    assert BedrockVideoProvider(client).status(ARN) == expected


@pytest.mark.parametrize(("code", "error"), [("ThrottlingException", ProviderRetryable),
                                             ("ServiceUnavailableException", ProviderRetryable),
                                             ("ValidationException", ProviderError),
                                             ("AccessDeniedException", ProviderError)])
def test_given_a_bedrock_error_when_calling_then_it_is_classified(bedrock, code, error):
    client, stubber = bedrock
    stubber.add_client_error("get_async_invoke", service_error_code=code, service_message="nope")
    with pytest.raises(error, match=code):
        BedrockVideoProvider(client).status(ARN)


def test_given_an_unknown_bedrock_model_when_submitting_then_it_is_refused_before_any_call(bedrock):
    client, stubber = bedrock
    request = VideoRequest(prompt="x", model="stability.sd3", mode="normal", duration_s=5, fps=24,
                           resolution="1280x720", output_s3_uri="s3://media/o")
    with pytest.raises(ProviderError, match="no request shape"):
        BedrockVideoProvider(client).submit(request, "k")


@pytest.mark.parametrize(("provider", "model", "requested", "billed"), [
    ("generic", "vidgen-1", 5.5, 5.5), ("openai", "sora-2", 5.5, 6), ("bedrock", "amazon.nova-reel-v1:1", 7, 12),
    ("bedrock", "luma.ray-v2:0", 4, 5), ("bedrock", "luma.ray-v2:0", 6, 9)])
def test_given_provider_rounding_when_billing_then_the_charged_seconds_are_used(provider, model, requested, billed):
    assert billed_seconds(provider, model, requested) == billed
