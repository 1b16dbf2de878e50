"""Reference images: the URL form at intake, the checks where the image is used
(decodes, ≤ 20 MB, sides ≤ 4096 px, no private address even by redirect), the
fit to each provider, and each adapter's wire shape."""

from __future__ import annotations

import base64
import io
import json

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from generation_fakes import Clock, FakeAccounting, MemoryWatches, ScriptedProvider, generate_job
from PIL import Image
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from vidpipe import reference_image as ref
from vidpipe.errors import InputRejected, ProviderError
from vidpipe.generation.enhance import Enhancement
from vidpipe.generation.messages import InvalidJobMessage, execution_name
from vidpipe.generation.physics import Physics
from vidpipe.generation.polling import PollPolicy
from vidpipe.generation.submit import submit_generation
from vidpipe.net.download_guard import DownloadPolicy
from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.video import VideoRequest, build_video_provider
from vidpipe.providers.video.bedrock import BedrockVideoProvider

BUCKET = "media"
PUBLIC = "93.184.216.34"
POLICY = DownloadPolicy()
NO_WAIT = RetryPolicy(max_attempts=1, base_delay_s=0, max_total_wait_s=1)


def image_bytes(size=(400, 300), colour=(200, 40, 30), fmt="PNG", mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else (*colour, 128)).save(out, format=fmt)
    return out.getvalue()


def public(_host, _port):
    return [PUBLIC]


# ------------------------------------------------------------------ the message and intake


def test_given_a_reference_image_when_parsed_then_it_is_part_of_the_job_and_its_name():
    plain = generate_job()
    with_image = generate_job(reference_image=f"s3://{BUCKET}/references/a/bottle.jpg")
    other_image = generate_job(reference_image=f"s3://{BUCKET}/references/b/bottle.jpg")

    assert with_image.reference_image == f"s3://{BUCKET}/references/a/bottle.jpg"
    assert len({execution_name(plain), execution_name(with_image), execution_name(other_image)}) == 3


def test_given_no_reference_image_when_named_then_the_name_is_the_one_it_had_before_the_field():
    # The content digest leaves the unset field out: a message redelivered across a deploy is one job.
    from vidpipe.generation.messages import canonical_json

    assert "reference_image" not in canonical_json(generate_job())


@pytest.mark.parametrize("value", ["ftp://example.com/a.png", "bottle.jpg", "s3://", "https://"])
def test_given_a_reference_image_that_is_no_url_when_parsed_then_invalid(value):
    with pytest.raises(InvalidJobMessage, match="reference_image"):
        generate_job(reference_image=value)


@pytest.mark.parametrize(("value", "problem"), [
    ("https://10.1.2.3/a.png", "10.1.2.3 is a private address"),
    ("https://169.254.169.254/latest/meta-data", "the instance metadata service"),
    ("https://[::ffff:127.0.0.1]/a.png", "loopback"),
    ("http://images.example.com/a.png", "only https downloads are allowed"),
    ("s3://other-bucket/references/a.png", "is not the media bucket media"),
    (f"s3://{BUCKET}/uploads/a.png", "is not under references/"),
])
def test_given_a_reference_url_that_may_not_be_read_when_checked_at_intake_then_the_problem_is_named(value, problem):
    assert problem in ref.url_problem(value, media_bucket=BUCKET, policy=POLICY, resolver=public)


def test_given_a_public_https_or_a_references_object_when_checked_at_intake_then_fine():
    assert ref.url_problem("https://images.example.com/a.png", media_bucket=BUCKET, policy=POLICY,
                           resolver=public) is None
    assert ref.url_problem(f"s3://{BUCKET}/references/x/a.png", media_bucket=BUCKET, policy=POLICY) is None


def test_given_an_allowlisted_private_host_when_checked_at_intake_then_fine_but_never_the_metadata_service():
    policy = DownloadPolicy(allow_hosts=frozenset({"10.0.0.5", "169.254.169.254"}))
    assert ref.url_problem("https://10.0.0.5/a.png", media_bucket=BUCKET, policy=policy) is None
    assert ref.url_problem("https://169.254.169.254/a.png", media_bucket=BUCKET, policy=policy)


# ------------------------------------------------------------------ the image's own checks


def test_given_a_photo_when_checked_then_its_size_and_format_are_known():
    image = ref.check("s3://m/references/a.jpg", image_bytes(fmt="JPEG"))
    assert (image.width, image.height, image.format) == (400, 300, "JPEG")


@pytest.mark.parametrize(("data", "reason"), [
    (b"%PDF-1.7 not an image", "not a decodable image"),
    (image_bytes(fmt="PNG")[:200], "not a decodable image"),  # a truncated PNG
    (image_bytes(size=(4097, 8)), "4097x8 px; each side must be at most 4096 px"),
    (b"\x89PNG" + bytes(ref.MAX_BYTES), "larger than the 20.0 MB limit"),
])
def test_given_a_bad_image_when_checked_then_input_rejected_with_the_reason(data, reason):
    with pytest.raises(InputRejected, match=reason):
        ref.check("x", data)


class FakeS3:
    def __init__(self, objects: dict[str, bytes], declared: dict[str, int] | None = None):
        self.objects, self.declared, self.reads = objects, declared or {}, []

    def get_object(self, Bucket, Key):
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        self.reads.append(Key)
        data = self.objects[Key]
        return {"ContentLength": self.declared.get(Key, len(data)), "Body": io.BytesIO(data)}


def test_given_an_s3_reference_when_fetched_then_the_object_is_read_and_checked():
    s3 = FakeS3({"references/a/bottle.png": image_bytes()})
    image = ref.fetch(f"s3://{BUCKET}/references/a/bottle.png", s3=s3, media_bucket=BUCKET, policy=POLICY)
    assert (image.width, image.height) == (400, 300) and s3.reads == ["references/a/bottle.png"]


@pytest.mark.parametrize(("objects", "declared", "reason"), [
    ({}, {}, "does not exist"),
    ({"references/a.png": b"tiny"}, {"references/a.png": 21 * 1024**2}, "21.0 MB is larger than the 20.0 MB"),
])
def test_given_a_missing_or_oversized_s3_reference_when_fetched_then_input_rejected(objects, declared, reason):
    with pytest.raises(InputRejected, match=reason):
        ref.fetch(f"s3://{BUCKET}/references/a.png", s3=FakeS3(objects, declared), media_bucket=BUCKET,
                  policy=POLICY)


def https_client(handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_given_an_https_reference_when_fetched_then_it_goes_through_the_guard_to_the_checked_address():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers["host"]))
        return httpx.Response(200, content=image_bytes(fmt="JPEG"))

    image = ref.fetch("https://images.example.com/a.jpg", s3=None, media_bucket=BUCKET, policy=POLICY,
                      http_client=https_client(handler), resolver=public)
    assert image.format == "JPEG" and seen == [(PUBLIC, "images.example.com")]


def test_given_a_redirect_to_a_private_address_when_fetched_then_input_rejected_and_never_requested():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(302, headers={"location": "https://10.0.0.7/secret.png"})

    with pytest.raises(InputRejected, match="refused 10.0.0.7: 10.0.0.7 is a private address"):
        ref.fetch("https://images.example.com/a.jpg", s3=None, media_bucket=BUCKET, policy=POLICY,
                  http_client=https_client(handler), resolver=public)
    assert seen == [PUBLIC]


@pytest.mark.parametrize(("response", "reason"), [
    (httpx.Response(404, text="no such image"), "HTTP 404"),
    (httpx.Response(200, content=b"<html>a login page</html>"), "not a decodable image"),
    (httpx.Response(200, content=b"x" * (ref.MAX_BYTES + 1)), "larger than the 20.0 MB limit"),
])
def test_given_an_https_answer_that_is_no_usable_image_when_fetched_then_input_rejected(response, reason):
    with pytest.raises(InputRejected, match=reason):
        ref.fetch("https://images.example.com/a.jpg", s3=None, media_bucket=BUCKET, policy=POLICY,
                  http_client=https_client(lambda _r: response), resolver=public)


# ------------------------------------------------------------------ fitting to the provider


@pytest.mark.parametrize(("provider", "model", "resolution", "size"), [
    ("openai", "sora-2", "720x1280", (720, 1280)),
    ("generic", "vidgen-1", "640x360", (640, 360)),
    ("bedrock", "amazon.nova-reel-v1:1", "1280x720", (1280, 720)),
    ("bedrock", "amazon.nova-reel-v1:1", "640x360", (1280, 720)),  # Nova Reel takes 1280x720 only
])
def test_given_a_provider_when_fitted_then_the_image_has_the_size_it_accepts(provider, model, resolution, size):
    fields = ref.for_provider(ref.check("x", image_bytes(size=(1000, 1000))), provider, model, resolution)
    with Image.open(io.BytesIO(fields["reference_image"])) as fitted:
        assert fitted.size == size and fitted.mode == "RGB"
    assert fields["reference_image_type"] == "image/png"


def test_given_a_jpeg_or_a_transparent_png_when_fitted_then_jpeg_stays_jpeg_and_png_is_flattened_png():
    jpeg = ref.prepare(ref.check("x", image_bytes(fmt="JPEG")), (64, 64))
    rgba = ref.prepare(ref.check("x", image_bytes(mode="RGBA")), (64, 64))
    assert jpeg.mime_type == "image/jpeg" and jpeg.data[:2] == b"\xff\xd8"
    assert rgba.mime_type == "image/png" and Image.open(io.BytesIO(rgba.data)).mode == "RGB"


def test_given_a_wide_image_when_fitted_to_a_tall_video_then_the_centre_is_kept():
    wide = Image.new("RGB", (300, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (100, 0, 200, 100))  # a red middle third between blue sides
    out = io.BytesIO()
    wide.save(out, format="PNG")
    fitted = ref.prepare(ref.check("x", out.getvalue()), (50, 100))
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert image.getpixel((25, 50)) == (255, 0, 0) and image.getpixel((2, 50))[0] > 200


# ------------------------------------------------------------------ the wire shapes

PNG = image_bytes(size=(160, 90))
WITH_IMAGE = VideoRequest(prompt="a bottle turns", model="vidgen-1", mode="normal", duration_s=4, fps=24,
                          resolution="160x90", reference_image=PNG, reference_image_type="image/png")


class Recorder:
    def __init__(self, answer: dict):
        self.answer, self.requests = answer, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(200, json=self.answer)


def provider_for(name: str, recorder: Recorder):
    return build_video_provider(name, base_url="https://video.test", api_key="sk-video", policy=NO_WAIT,
                                sleep=lambda _s: None, http_client=httpx.Client(transport=httpx.MockTransport(recorder)))


def test_given_a_reference_when_the_generic_adapter_submits_then_the_json_carries_it_base64():
    recorder = Recorder({"id": "gen_1"})
    provider_for("generic", recorder).submit(WITH_IMAGE, "key-1")

    body = json.loads(recorder.requests[0].content)
    assert base64.b64decode(body["image"]) == PNG and body["image_type"] == "image/png"
    assert body["prompt"] == "a bottle turns" and recorder.requests[0].headers["Idempotency-Key"] == "key-1"


def test_given_a_reference_when_the_openai_adapter_submits_then_it_is_the_input_reference_file_part():
    recorder = Recorder({"id": "video_1"})
    provider_for("openai", recorder).submit(WITH_IMAGE, "key-1")

    request = recorder.requests[0]
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    environ = EnvironBuilder(method="POST", data=request.content,
                             headers={"Content-Type": request.headers["content-type"]}).get_environ()
    _stream, form, files = parse_form_data(environ)
    part = files["input_reference"]
    assert part.read() == PNG and part.mimetype == "image/png" and part.filename == "reference.png"
    assert form.to_dict() == {"model": "vidgen-1", "prompt": "a bottle turns", "seconds": "4", "size": "160x90"}


def test_given_no_reference_when_the_openai_adapter_submits_then_it_stays_json():
    recorder = Recorder({"id": "video_1"})
    provider_for("openai", recorder).submit(VideoRequest(prompt="p", model="sora-2", mode="normal", duration_s=4,
                                                         fps=24, resolution="1280x720"), "k")
    assert recorder.requests[0].headers["content-type"] == "application/json"


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber


NOVA_IMAGE = {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}


def test_given_a_reference_when_nova_reel_submits_a_6_s_clip_then_text_to_video_params_carry_images(bedrock):
    client, stubber = bedrock
    request = VideoRequest(prompt="a bottle turns", model="amazon.nova-reel-v1:1", mode="normal", duration_s=6,
                           fps=24, resolution="1280x720", output_s3_uri="s3://media/o", reference_image=PNG,
                           reference_image_type="image/png")
    stubber.add_response("start_async_invoke", {"invocationArn": "arn:x"}, {
        "modelId": "amazon.nova-reel-v1:1", "clientRequestToken": "k", "outputDataConfig": ANY,
        "modelInput": {"taskType": "TEXT_VIDEO",
                       "textToVideoParams": {"text": "a bottle turns", "images": [NOVA_IMAGE]},
                       "videoGenerationConfig": {"durationSeconds": 6, "fps": 24, "dimension": "1280x720"}}})
    BedrockVideoProvider(client).submit(request, "k")
    stubber.assert_no_pending_responses()


def test_given_a_reference_when_nova_reel_submits_12_s_then_manual_shots_start_from_the_image(bedrock):
    client, stubber = bedrock
    request = VideoRequest(prompt="a bottle turns", model="amazon.nova-reel-v1:1", mode="normal", duration_s=12,
                           fps=24, resolution="1280x720", output_s3_uri="s3://media/o", reference_image=PNG,
                           reference_image_type="image/png")
    stubber.add_response("start_async_invoke", {"invocationArn": "arn:x"}, {
        "modelId": "amazon.nova-reel-v1:1", "clientRequestToken": "k", "outputDataConfig": ANY,
        "modelInput": {"taskType": "MULTI_SHOT_MANUAL",
                       "multiShotManualParams": {"shots": [{"text": "a bottle turns", "image": NOVA_IMAGE},
                                                           {"text": "a bottle turns"}]},
                       "videoGenerationConfig": {"fps": 24, "dimension": "1280x720"}}})
    BedrockVideoProvider(client).submit(request, "k")
    stubber.assert_no_pending_responses()


def test_given_a_reference_for_luma_ray_when_submitting_then_refused_before_any_call(bedrock):
    client, stubber = bedrock
    request = VideoRequest(prompt="p", model="luma.ray-v2:0", mode="normal", duration_s=5, fps=24,
                           resolution="1280x720", output_s3_uri="s3://media/o", reference_image=PNG)
    with pytest.raises(ProviderError, match="takes no reference image"):
        BedrockVideoProvider(client).submit(request, "k")
    stubber.assert_no_pending_responses()


# ------------------------------------------------------------------ the submit step


def test_given_a_fetched_reference_when_submitting_then_the_provider_gets_it_fitted_to_the_job():
    provider = ScriptedProvider([], eta_s=30)
    job = generate_job(resolution="320x180", reference_image=f"s3://{BUCKET}/references/a/p.png")
    reference = ref.check(job.reference_image, image_bytes(size=(1000, 1000)))

    submit_generation("job-1", job, Enhancement(prompt=job.prompt, physics=Physics()), provider, FakeAccounting(),
                      MemoryWatches(), policy=PollPolicy(), deadline_s=3600, output_s3_uri="s3://media/o",
                      now=Clock(), reference=reference)

    [(request, _key)] = provider.submitted
    assert request.reference_image_type == "image/png"
    assert Image.open(io.BytesIO(request.reference_image)).size == (320, 180)


def test_given_no_reference_when_submitting_then_the_request_carries_none():
    provider = ScriptedProvider([], eta_s=30)
    job = generate_job()
    submit_generation("job-1", job, Enhancement(prompt=job.prompt, physics=Physics()), provider, FakeAccounting(),
                      MemoryWatches(), policy=PollPolicy(), deadline_s=3600, output_s3_uri="s3://media/o",
                      now=Clock())
    assert provider.submitted[0][0].reference_image is None


def test_given_a_local_file_when_keyed_then_the_key_is_content_addressed_under_references():
    a, b = image_bytes(colour=(1, 2, 3)), image_bytes(colour=(3, 2, 1))
    assert ref.reference_key(a, "/tmp/My Bottle.png").startswith("references/")
    assert ref.reference_key(a, "My Bottle.png").endswith("/My-Bottle.png")
    assert ref.reference_key(a, "p.png") != ref.reference_key(b, "p.png")

