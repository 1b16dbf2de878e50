"""boto3 client factories. Only adapter modules call these; tests inject clients."""

from __future__ import annotations

import threading
from functools import lru_cache

import boto3
from botocore.config import Config

_lock = threading.Lock()
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@lru_cache(maxsize=None)
def _cached(service: str):
    # boto3's default session is not thread-safe for client creation.
    with _lock:
        return boto3.session.Session().client(service, config=_CONFIG)


def client(service: str):
    return _cached(service)


def resource(service: str):
    with _lock:
        return boto3.session.Session().resource(service, config=_CONFIG)


def reset_clients() -> None:
    """Drop cached clients (the local stack calls this when it starts or stops)."""
    _cached.cache_clear()
