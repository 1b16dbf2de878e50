"""Shared fixtures. Integration tests run on the local stack: moto with the
real ASL executed, handlers in-process, the provider emulator on 127.0.0.1,
and a VirtualClock so no test sleeps for provider time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

# Never let a test reach a real AWS account.
for _key, _value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
    os.environ[_key] = _value
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def mocked_aws(monkeypatch) -> Iterator[None]:
    """moto for every AWS service, with fake credentials (never a real account)."""
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def make_stack(tmp_path_factory) -> Iterator[Callable[..., object]]:
    """Start a LocalStack with options (one at a time); stopped after the test."""
    from vidpipe_local.clock import VirtualClock
    from vidpipe_local.stack import LocalStack

    started: list[LocalStack] = []

    def start(**options) -> LocalStack:
        options.setdefault("clock", VirtualClock())
        stack = LocalStack(**options).start()
        started.append(stack)
        return stack

    yield start
    for stack in reversed(started):
        stack.stop()


@pytest.fixture
def local_stack(make_stack):
    """The local stack with the template's defaults and a VirtualClock."""
    return make_stack()
