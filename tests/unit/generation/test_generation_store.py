"""Storing the clip with moto S3: whole and verified, or nothing at all."""

import boto3
import httpx
import pytest
from generation_fakes import generate_job
from moto import mock_aws

from vidpipe.errors import DownloadRefused, OutputInvalid, ProviderRetryable
from vidpipe.generation.state import PollState
from vidpipe.generation.store import source_opener, store_video
from vidpipe.media.verify import ExpectedVideo
from vidpipe.net.download_guard import DownloadPolicy

BUCKET = "media"
MIB = 1024**2
URL = "https://cdn.example.com/v.mp4"
JPEG = b"\xff\xd8poster\xff\xd9"


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class Body(httpx.SyncByteStream):
    def __init__(self, data: bytes, drop_after: int | None = None):
        self.data, self.drop_after = data, drop_after

    def __iter__(self):
        sent = self.data if self.drop_after is None else self.data[:self.drop_after]
        for start in range(0, len(sent), MIB):
            yield sent[start:start + MIB]
        if self.drop_after is not None:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def cdn(data: bytes, *, declared: int | None = None, drop_after: int | None = None) -> httpx.Client:
    length = str(declared if declared is not None else len(data))
    return httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Length": length}, stream=Body(data, drop_after))))


def poll(**location) -> PollState:
    return PollState(provider="generic", provider_job_id="pj-1", submitted_at=0, deadline_at=3600, eta_s=30,
                     wait_seconds=5, state="completed", **location)


class Verifier:
    def __init__(self, result=None, error: Exception | None = None):
        self.result = result if result is not None else {"duration_s": 6.0, "mismatches": []}
        self.error = error
        self.seen: list[tuple[bytes, ExpectedVideo]] = []

    def __call__(self, path, expected):
        self.seen.append((path.read_bytes(), expected))
        if self.error:
            raise self.error
        return self.result


def store(s3, tmp_path, client=None, verifier=None, policy=DownloadPolicy(), **location):
    opener = source_opener(s3=s3, bucket=BUCKET, policy=policy, headers_for=lambda _url: {}, http_client=client,
                           resolver=lambda host, port: ["93.184.216.34"])
    return store_video("job-1", generate_job(duration_s=6, fps=24, resolution="640x360"), poll(**location),
                       s3=s3, bucket=BUCKET, prefix="outputs", open_source=opener, verify=verifier or Verifier(),
                       poster=lambda path: JPEG, workdir=tmp_path, max_bytes=64 * MIB, now=lambda: 123.0)


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def open_uploads(s3) -> list:
    return s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def test_given_a_small_clip_when_storing_then_one_put_writes_video_and_poster(s3, tmp_path):
    data = b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000
    verifier = Verifier()

    stored = store(s3, tmp_path, cdn(data), verifier, download_url=URL)

    assert keys(s3) == ["outputs/job-1/poster.jpg", "outputs/job-1/video.mp4"]
    assert s3.get_object(Bucket=BUCKET, Key="outputs/job-1/video.mp4")["Body"].read() == data
    assert s3.get_object(Bucket=BUCKET, Key="outputs/job-1/poster.jpg")["ContentType"] == "image/jpeg"
    assert stored.video.s3_uri == "s3://media/outputs/job-1/video.mp4" and stored.video.bytes == len(data)
    assert stored.poster.bytes == len(JPEG) and stored.stored_at == 123.0
    assert verifier.seen == [(data, ExpectedVideo(duration_s=6.0, fps=24, width=640, height=360))]


def test_given_a_large_clip_when_storing_then_it_streams_through_a_multipart_upload(s3, tmp_path):
    data = bytes(range(256)) * (9 * MIB // 256)

    stored = store(s3, tmp_path, cdn(data), download_url=URL)

    obj = s3.get_object(Bucket=BUCKET, Key="outputs/job-1/video.mp4")
    assert obj["Body"].read() == data and stored.video.bytes == len(data)
    assert obj["ETag"].strip('"').endswith("-2")  # two parts: 8 MiB + 1 MiB
    assert open_uploads(s3) == []


def test_given_a_truncated_download_when_storing_then_nothing_is_stored_and_the_upload_is_aborted(s3, tmp_path):
    data = b"v" * (9 * MIB)

    with pytest.raises(ProviderRetryable, match=f"download truncated: got {len(data)} of {10 * MIB} bytes"):
        store(s3, tmp_path, cdn(data, declared=10 * MIB), download_url=URL)

    assert keys(s3) == [] and open_uploads(s3) == []


def test_given_a_small_truncated_download_when_storing_then_nothing_is_put(s3, tmp_path):
    with pytest.raises(ProviderRetryable, match="download truncated"):
        store(s3, tmp_path, cdn(b"v" * 1000, declared=5000), download_url=URL)
    assert keys(s3) == []


def test_given_the_connection_drops_mid_body_when_storing_then_the_multipart_upload_is_aborted(s3, tmp_path):
    data = b"v" * (12 * MIB)

    with pytest.raises(ProviderRetryable, match="download interrupted: RemoteProtocolError"):
        store(s3, tmp_path, cdn(data, drop_after=10 * MIB), download_url=URL)

    assert keys(s3) == [] and open_uploads(s3) == []


def test_given_an_undecodable_clip_when_storing_then_it_is_never_committed(s3, tmp_path):
    verifier = Verifier(error=OutputInvalid("the video does not decode"))
    with pytest.raises(OutputInvalid):
        store(s3, tmp_path, cdn(b"v" * (9 * MIB)), verifier, download_url=URL)
    assert keys(s3) == [] and open_uploads(s3) == []


def test_given_a_clip_that_differs_from_the_request_when_storing_then_the_mismatch_is_recorded(s3, tmp_path):
    report = {"duration_s": 4.0, "fps": 24.0, "width": 640, "height": 360,
              "mismatches": ["duration 4.0 s, expected 6.0 s (±10%)"]}

    stored = store(s3, tmp_path, cdn(b"v" * 100), Verifier(result=report), download_url=URL)

    assert stored.verification["mismatches"] == ["duration 4.0 s, expected 6.0 s (±10%)"]
    assert "outputs/job-1/video.mp4" in keys(s3)


def test_given_a_download_url_on_a_private_address_when_storing_then_it_is_refused_and_nothing_stored(
        s3, tmp_path):
    with pytest.raises(DownloadRefused, match="10.0.0.8 is a private address"):
        store(s3, tmp_path, cdn(b"v" * 100), download_url="https://10.0.0.8/v.mp4")
    assert keys(s3) == []


def test_given_a_bedrock_output_in_our_bucket_when_storing_then_it_is_copied_and_verified(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="outputs/job-1/provider/abc/output.mp4", Body=b"nova" * 100)

    stored = store(s3, tmp_path, s3_uri="s3://media/outputs/job-1/provider/abc/output.mp4")

    assert s3.get_object(Bucket=BUCKET, Key="outputs/job-1/video.mp4")["Body"].read() == b"nova" * 100
    assert stored.video.bytes == 400


def test_given_a_provider_output_in_another_bucket_when_storing_then_it_is_refused(s3, tmp_path):
    with pytest.raises(DownloadRefused, match="must be in s3://media/"):
        store(s3, tmp_path, s3_uri="s3://someone-else/secret.mp4")


def real_verify(path, expected):
    from vidpipe.media.verify import verify_video

    return verify_video(path, expected).model_dump(mode="json")


def real_poster(path):
    from vidpipe.media.verify import poster_frame

    return poster_frame(path)


def rendered(duration_s: float, fps: float = 12, size=(160, 96)) -> bytes:
    from vidpipe_local.emulator.videogen import VideoSpec, render_mp4

    return render_mp4(VideoSpec("a marble", "normal", duration_s, fps, *size))


def store_real(s3, tmp_path, data: bytes):
    opener = source_opener(s3=s3, bucket=BUCKET, policy=DownloadPolicy(), headers_for=lambda _url: {},
                           http_client=cdn(data), resolver=lambda host, port: ["93.184.216.34"])
    return store_video("job-1", generate_job(duration_s=2, fps=12, resolution="160x96"), poll(download_url=URL),
                       s3=s3, bucket=BUCKET, prefix="outputs", open_source=opener, verify=real_verify,
                       poster=real_poster, workdir=tmp_path, max_bytes=64 * MIB, now=lambda: 1.0)


def test_given_a_real_clip_shorter_than_asked_when_storing_then_it_is_stored_with_the_mismatch(s3, tmp_path):
    stored = store_real(s3, tmp_path, rendered(duration_s=1))

    assert stored.verification["mismatches"] == ["duration 1.00 s, expected 2.00 s (±5%)"]
    assert stored.verification["info"]["width"] == 160
    poster = s3.get_object(Bucket=BUCKET, Key="outputs/job-1/poster.jpg")["Body"].read()
    assert poster[:2] == b"\xff\xd8"


def test_given_a_real_clip_cut_in_half_when_storing_then_it_is_undecodable_and_not_stored(s3, tmp_path):
    clip = rendered(duration_s=2)
    with pytest.raises(OutputInvalid):
        store_real(s3, tmp_path, clip[: len(clip) // 2])
    assert keys(s3) == []


def test_given_the_job_stops_during_a_large_download_when_storing_then_nothing_is_committed(s3, tmp_path):
    from vidpipe.generation.store import JobNotRunning

    data = bytes(range(256)) * (9 * MIB // 256)  # multipart: a part is already uploaded when it stops
    answers = iter([None, "its execution is ABORTED"])  # running at the start, stopped by the commit
    downloads = []
    opener = source_opener(s3=s3, bucket=BUCKET, policy=DownloadPolicy(), headers_for=lambda _url: {},
                           http_client=cdn(data), resolver=lambda host, port: ["93.184.216.34"],
                           before_download=lambda: downloads.append("rate limit taken"))

    with pytest.raises(JobNotRunning, match="not stored: its execution is ABORTED"):
        store_video("job-1", generate_job(duration_s=6, fps=24, resolution="640x360"), poll(download_url=URL),
                    s3=s3, bucket=BUCKET, prefix="outputs", open_source=opener, verify=Verifier(),
                    poster=lambda path: JPEG, workdir=tmp_path, max_bytes=64 * MIB, now=lambda: 123.0,
                    still_running=lambda: next(answers))

    assert keys(s3) == [] and open_uploads(s3) == []
    assert downloads == ["rate limit taken"]
