"""S3RangeFile: a seekable file over one version of an S3 object, read by ranged GETs (moto)."""

import io
import random

import boto3
import pytest
from botocore.exceptions import IncompleteReadError

from vidpipe.errors import InputRejected
from vidpipe.s3_file import open_s3_object

BUCKET = "media-range-test"
KEY = "uploads/blob.bin"
BODY = random.Random(5).randbytes(300_000)


@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def versioned(s3):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def test_given_seeks_anywhere_when_read_then_the_bytes_are_the_objects_and_cached_blocks_cost_no_request(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    f = open_s3_object(s3, BUCKET, KEY, block_size=16 * 1024)
    rng = random.Random(1)

    for _ in range(200):
        offset, length = rng.randrange(len(BODY) + 10), rng.randrange(70_000)
        f.seek(offset)
        assert f.read(length) == BODY[offset:offset + length]
    f.seek(-100, io.SEEK_END)
    assert f.read() == BODY[-100:]
    requests = f.stats.get_requests
    f.seek(len(BODY) - 50)
    assert f.read(50) == BODY[-50:] and f.stats.get_requests == requests  # still cached


def test_given_a_sequential_read_when_done_then_each_byte_came_from_s3_once(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    f = open_s3_object(s3, BUCKET, KEY, block_size=64 * 1024)

    data = b"".join(iter(lambda: f.read(32 * 1024), b""))

    assert data == BODY
    assert f.stats.bytes_read == len(BODY) and f.stats.get_requests == -(-len(BODY) // (64 * 1024))
    assert f.stats.head_requests == 1


def test_given_a_version_id_when_the_key_is_overwritten_then_the_file_still_reads_that_version(versioned):
    first = versioned.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)["VersionId"]
    f = open_s3_object(versioned, BUCKET, KEY, first, size=len(BODY))
    assert f.read(10) == BODY[:10]

    versioned.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * len(BODY))

    f.seek(200_000)
    assert f.read(10) == BODY[200_000:200_010]
    assert f.stats.head_requests == 0 and f.uri == f"s3://{BUCKET}/{KEY} (version {first})"


def test_given_no_version_when_opened_then_the_version_a_head_sees_is_pinned(versioned):
    first = versioned.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)["VersionId"]
    f = open_s3_object(versioned, BUCKET, KEY)

    versioned.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * 10)

    assert f.version_id == first and f.size == len(BODY)
    assert f.read() == BODY


def test_given_an_unversioned_bucket_when_the_object_is_replaced_mid_read_then_reading_fails_instead_of_mixing(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    f = open_s3_object(s3, BUCKET, KEY, block_size=16 * 1024)
    assert f.read(10) == BODY[:10]

    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"y" * len(BODY))
    f.seek(100_000)

    with pytest.raises(InputRejected, match="was replaced while it was being read"):
        f.read(10)


@pytest.mark.parametrize("version_id", [None, "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"])
def test_given_a_missing_object_or_version_when_opened_then_the_upload_is_said_to_be_gone(versioned, version_id):
    if version_id:
        versioned.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)

    with pytest.raises(InputRejected, match="no longer exists"):
        open_s3_object(versioned, BUCKET, KEY if version_id else "uploads/none.bin", version_id).read(1)


class CutOffOnce:
    """An S3 client whose first GET body is cut off mid-stream."""

    def __init__(self, s3):
        self.s3, self.cut = s3, False

    def __getattr__(self, name):
        return getattr(self.s3, name)

    def get_object(self, **kwargs):
        answer = self.s3.get_object(**kwargs)
        if not self.cut:
            self.cut = True

            class Cut:
                def read(self):
                    raise IncompleteReadError(actual_bytes=10, expected_bytes=100)

            answer["Body"] = Cut()
        return answer


def test_given_a_body_cut_off_mid_stream_when_read_then_the_block_is_fetched_again(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    f = open_s3_object(CutOffOnce(s3), BUCKET, KEY, size=len(BODY), block_size=16 * 1024)

    assert f.read(100) == BODY[:100]
    assert f.stats.get_requests == 2 and f.stats.bytes_read == 16 * 1024
