"""boto3 client factories. Only adapter modules call these; tests inject clients.

boto3 is imported on the first client, not with this module: a handler's cold start
pays for it when it first calls AWS (bench/bench_coldstart.py).

Every client comes from one boto3 session per container: a session loads botocore's
service list, endpoints and partitions once, and each further client reads only its own
service model (six clients: ~120 ms from one session, ~600 ms from a session each).
"""

from __future__ import annotations

import threading
from functools import lru_cache

_lock = threading.Lock()  # a boto3 session is not thread-safe for client creation
_session = None


@lru_cache(maxsize=None)
def _cached(service: str):
    import boto3
    from botocore.config import Config

    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, config=Config(retries={"mode": "standard", "max_attempts": 5}))


def client(service: str):
    return _cached(service)


def reset_clients() -> None:
    """Drop cached clients and their session (the local stack calls this when it starts or stops)."""
    global _session
    with _lock:
        _cached.cache_clear()
        _session = None
