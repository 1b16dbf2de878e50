"""Fixtures for the spend tests: a moto table shaped like the template's, and
an atomic-request switch for the concurrency tests."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from spend_testkit import TABLE


@pytest.fixture
def ddb(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
        )
        yield client


@pytest.fixture
def atomic_requests(monkeypatch):
    """Make moto apply each DynamoDB request atomically, as DynamoDB does.

    moto 5.2.5 holds no lock while it serves a request (in-process or in server
    mode): two conditional updates can both pass their check, and a cancelled
    transaction restores a deep copy of the whole table, wiping writes other
    threads made meanwhile. With this lock each request is atomic and
    transactions are serialisable, which is DynamoDB's contract (it reports a
    TransactionConflict where this lock makes a caller wait; that path is
    tested separately with an injected conflict).
    """
    lock = threading.Lock()
    serve = DynamoHandler.call_action

    def call_action_atomically(self):
        with lock:
            return serve(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action_atomically)
