"""Fixtures for the spend tests: a moto table shaped like the template's, and
an atomic-request switch for the concurrency tests."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto.dynamodb.responses import DynamoHandler

from spend_testkit import TABLE
from vidpipe.jobs import from_item


@pytest.fixture(scope="session")
def dynamodb_client():
    # Created once (client creation is the slow part); moto intercepts it whenever a mock is active.
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture
def ddb(mocked_aws, dynamodb_client):
    """A fresh moto DynamoDB with the template's table shape (pk/sk strings, on demand)."""
    dynamodb_client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
    )
    return dynamodb_client


@pytest.fixture
def atomic_requests(monkeypatch):
    """Make moto apply each DynamoDB request atomically, as DynamoDB does, and
    return a ``StateHistory`` that can record an item after every request.

    moto 5.2.5 holds no lock while it serves a request (in-process or in server
    mode): two conditional updates can both pass their check, and a cancelled
    transaction restores a deep copy of the whole table, wiping writes other
    threads made meanwhile. With this lock each request is atomic and
    transactions are serialisable, which is DynamoDB's contract (it reports a
    TransactionConflict where this lock makes a caller wait; that path is
    tested separately with an injected conflict).
    """
    history = StateHistory()
    serve = DynamoHandler.call_action

    def call_action_atomically(self):
        with history.lock:
            try:
                return serve(self)
            finally:
                history.record(self.dynamodb_backend)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action_atomically)
    return history


class StateHistory:
    """Every committed state of the watched items, one entry per request."""

    def __init__(self):
        self.lock = threading.Lock()
        self.watched: list[dict] = []
        self.states: list[dict] = []

    def watch(self, key: dict) -> None:
        self.watched.append(key)

    def record(self, backend) -> None:
        for key in self.watched:
            item = backend.get_item(TABLE, key) if TABLE in backend.tables else None
            if item is not None:
                self.states.append(from_item(item.to_json()["Attributes"]))
