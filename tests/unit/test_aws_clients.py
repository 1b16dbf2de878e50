import boto3
import pytest

from vidpipe import aws


@pytest.fixture
def sessions(monkeypatch):
    """Every boto3 session created, in order."""
    created = []
    real = boto3.session.Session

    def counted(*args, **kwargs):
        created.append(real(*args, **kwargs))
        return created[-1]

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(boto3.session, "Session", counted)
    aws.reset_clients()
    yield created
    aws.reset_clients()


def test_given_a_container_when_it_creates_clients_for_several_services_then_they_share_one_session(sessions):
    clients = [aws.client(service) for service in ("dynamodb", "s3", "events", "dynamodb")]

    assert len(sessions) == 1  # botocore's service list and endpoints are loaded once
    assert clients[0] is clients[3]
    assert [c.meta.service_model.service_name for c in clients[:3]] == ["dynamodb", "s3", "events"]


def test_given_clients_reset_when_a_client_is_asked_for_then_a_new_session_makes_it(sessions):
    first = aws.client("s3")
    aws.reset_clients()

    assert aws.client("s3") is not first
    assert len(sessions) == 2
