import boto3
import pytest
from analysis_fakes import BUCKET, FakeAccounting


@pytest.fixture
def accounting() -> FakeAccounting:
    return FakeAccounting()


@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client
