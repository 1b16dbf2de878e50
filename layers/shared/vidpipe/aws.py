"""boto3 client factories. Only adapter modules call these; tests inject clients.

boto3 is imported on the first client, not with this module: a handler's cold start
pays for it when it first calls AWS (bench/bench_coldstart.py).
"""

from __future__ import annotations

import threading
from functools import lru_cache

_lock = threading.Lock()


@lru_cache(maxsize=None)
def _cached(service: str):
    import boto3
    from botocore.config import Config

    # boto3's default session is not thread-safe for client creation.
    with _lock:
        return boto3.session.Session().client(service, config=Config(retries={"mode": "standard", "max_attempts": 5}))


def client(service: str):
    return _cached(service)


def reset_clients() -> None:
    """Drop cached clients (the local stack calls this when it starts or stops)."""
    _cached.cache_clear()
