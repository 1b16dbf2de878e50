import pytest
from analysis_fakes import BUCKET
from botocore.exceptions import ClientError

from vidpipe.analysis.models import ProbeEvent
from vidpipe.analysis.probe import probe_upload
from vidpipe.config import Settings
from vidpipe.errors import InputRejected
from vidpipe.s3_errors import S3AccessDenied
from vidpipe_local import samples


class DownloadSpy:
    """The S3 client with object reads (GETs and downloads) counted."""

    def __init__(self, s3):
        self.s3, self.downloads = s3, 0

    def __getattr__(self, name):
        return getattr(self.s3, name)

    def get_object(self, *args, **kwargs):
        self.downloads += 1
        return self.s3.get_object(*args, **kwargs)

    def download_file(self, *args, **kwargs):
        self.downloads += 1
        return self.s3.download_file(*args, **kwargs)


class Refusing:
    """An S3 client whose role lacks the permission: every read is a 403, as S3 answers it."""

    def __init__(self, code: str = "403"):
        self.code = code

    def _refuse(self, operation: str, **_):
        raise ClientError({"Error": {"Code": self.code, "Message": "Forbidden"}}, operation)

    def head_object(self, **kwargs):
        self._refuse("HeadObject", **kwargs)

    def get_object(self, **kwargs):
        self._refuse("GetObject", **kwargs)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("probe") / "clip.mp4"
    samples.make_video(path, [samples.ShotSpec(duration_s=1.0, seed=1), samples.ShotSpec(duration_s=1.0, seed=2)],
                       fps=10, size=(64, 36))
    return path


def upload(s3, key: str, body: bytes) -> ProbeEvent:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return ProbeEvent(job_id="j", bucket=BUCKET, key=key)


def test_given_a_video_when_probed_then_its_facts_are_returned(s3, clip):
    event = upload(s3, "uploads/a clip +ü.mp4", clip.read_bytes())

    video = probe_upload(event, s3, Settings())

    assert (video.width, video.height, video.codec) == (64, 36, "h264")
    assert video.duration_s == pytest.approx(2.0, abs=0.15) and video.fps == pytest.approx(10.0)
    assert video.size_bytes == clip.stat().st_size


def test_given_an_upload_over_the_size_cap_when_probed_then_it_is_rejected_without_downloading(s3, clip):
    event = upload(s3, "uploads/big.mp4", clip.read_bytes())
    spy = DownloadSpy(s3)

    with pytest.raises(InputRejected) as raised:
        probe_upload(event, spy, Settings(max_video_bytes=1000))

    assert spy.downloads == 0 and "size cap" in raised.value.reason


def test_given_bytes_that_are_not_a_video_when_probed_then_it_is_rejected_with_a_reason(s3):
    event = upload(s3, "uploads/notes.mp4", b"these are not the frames you are looking for" * 100)

    with pytest.raises(InputRejected) as raised:
        probe_upload(event, s3, Settings())

    assert "not a readable video" in raised.value.reason


def test_given_a_video_over_the_duration_cap_when_probed_then_the_reason_names_the_cap(s3, clip):
    event = upload(s3, "uploads/long.mp4", clip.read_bytes())

    with pytest.raises(InputRejected) as raised:
        probe_upload(event, s3, Settings(max_duration_s=1.0))

    assert "max_duration_s" in raised.value.reason


def test_given_an_upload_that_is_gone_when_probed_then_it_is_rejected(s3):
    with pytest.raises(InputRejected):
        probe_upload(ProbeEvent(job_id="j", bucket=BUCKET, key="uploads/missing.mp4"), s3, Settings())


def test_given_an_upload_that_is_gone_when_probed_then_the_reason_says_so(s3):
    with pytest.raises(InputRejected) as raised:
        probe_upload(ProbeEvent(job_id="j", bucket=BUCKET, key="uploads/missing.mp4"), s3, Settings())

    assert raised.value.reason == f"the upload s3://{BUCKET}/uploads/missing.mp4 no longer exists"


@pytest.mark.parametrize("code", ["403", "AccessDenied"])
def test_given_a_role_without_read_permission_when_probed_then_it_is_a_permissions_problem_naming_the_action(code):
    with pytest.raises(S3AccessDenied) as raised:
        probe_upload(ProbeEvent(job_id="j", bucket=BUCKET, key="uploads/a.mp4"), Refusing(code), Settings())

    assert raised.value.reason.startswith(f"s3:GetObject on s3://{BUCKET}/uploads/a.mp4 was denied")
    assert not isinstance(raised.value, InputRejected)


def test_given_a_pinned_version_without_permission_when_probed_then_the_action_named_is_get_object_version():
    event = ProbeEvent(job_id="j", bucket=BUCKET, key="uploads/a.mp4", version_id="v1")

    with pytest.raises(S3AccessDenied, match=f"^s3:GetObjectVersion on s3://{BUCKET}/uploads/a.mp4 was denied"):
        probe_upload(event, Refusing(), Settings())


def test_given_no_version_in_the_event_when_probed_then_the_version_there_now_is_pinned_and_reads_are_counted(
        s3, clip):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    event = upload(s3, "uploads/v.mp4", clip.read_bytes())

    video = probe_upload(event, s3, Settings())

    assert video.version_id == s3.head_object(Bucket=BUCKET, Key="uploads/v.mp4")["VersionId"]
    assert video.read.head_requests == 1 and video.read.get_requests >= 1
    assert 0 < video.read.bytes_read <= video.size_bytes


def test_given_the_key_overwritten_after_the_notification_when_probed_then_the_notified_version_is_probed(
        s3, clip, tmp_path):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    notified = s3.put_object(Bucket=BUCKET, Key="uploads/v.mp4", Body=clip.read_bytes())["VersionId"]
    longer = samples.make_video(tmp_path / "longer.mp4", [samples.ShotSpec(duration_s=4.0, seed=9)], fps=10,
                                size=(64, 36))
    s3.put_object(Bucket=BUCKET, Key="uploads/v.mp4", Body=open(longer.path, "rb").read())

    video = probe_upload(ProbeEvent(job_id="j", bucket=BUCKET, key="uploads/v.mp4", version_id=notified), s3,
                         Settings())

    assert video.version_id == notified
    assert video.duration_s == pytest.approx(2.0, abs=0.15) and video.size_bytes == clip.stat().st_size
