import pytest
from analysis_fakes import BUCKET
from botocore.exceptions import ClientError

from vidpipe.analysis.models import ChunkResult
from vidpipe.analysis.objects import get_bytes, get_model_if_exists, put_json
from vidpipe.s3_errors import S3AccessDenied

KEY = "work/j/chunks/0/0.json"


class Refusing:
    """An S3 client whose role lacks s3:GetObject (or s3:ListBucket): S3 answers 403."""

    def get_object(self, **_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")


def test_given_a_missing_key_when_read_if_it_exists_then_none(s3):
    assert get_model_if_exists(s3, BUCKET, KEY, ChunkResult) is None


def test_given_a_stored_document_when_read_if_it_exists_then_it_comes_back(s3):
    stored = ChunkResult(job_id="j", segment=0, chunk=0, model="m", frames=[], input_tokens=1, output_tokens=2)
    put_json(s3, BUCKET, KEY, stored)

    assert get_model_if_exists(s3, BUCKET, KEY, ChunkResult) == stored


@pytest.mark.parametrize("read", [lambda s3: get_model_if_exists(s3, BUCKET, KEY, ChunkResult),
                                  lambda s3: get_bytes(s3, BUCKET, KEY)])
def test_given_access_denied_when_read_then_it_is_a_permissions_problem_not_a_missing_document(read):
    with pytest.raises(S3AccessDenied) as raised:
        read(Refusing())

    assert raised.value.reason.startswith(f"s3:GetObject on s3://{BUCKET}/{KEY} was denied (AccessDenied)")
