import pytest
from analysis_fakes import BUCKET

from vidpipe.analysis.models import ProbeEvent
from vidpipe.analysis.probe import probe_upload
from vidpipe.config import Settings
from vidpipe.errors import InputRejected
from vidpipe_local import samples


class DownloadSpy:
    """The S3 client with download_file counted."""

    def __init__(self, s3):
        self.s3, self.downloads = s3, 0

    def __getattr__(self, name):
        return getattr(self.s3, name)

    def download_file(self, *args, **kwargs):
        self.downloads += 1
        return self.s3.download_file(*args, **kwargs)


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
