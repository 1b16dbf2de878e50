"""Where CLI commands run: the stack `vidpipe local up` serves, when one is
up, else an ephemeral in-process stack that lives for the command.

    with stack_session() as session:
        session.client("s3").put_object(Bucket=session.bucket, ...)
        job = session.wait_for_job(job_id, on_progress=print)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx

from vidpipe.config import Settings
from vidpipe.jobs import TERMINAL, JobStore
from vidpipe_local.clock import ScaledClock
from vidpipe_local.stack.stack import FAKE_CREDENTIALS, LocalStack, StackEndpoints, wait_until
from vidpipe_local.stack.template import REGION

DEFAULT_TIME_SCALE = 30.0  # provider seconds per real second in the CLI and demo


def state_file() -> Path:
    return Path(os.environ.get("VIDPIPE_STATE_DIR", Path.home() / ".vidpipe")) / "local-stack.json"


def running_stack() -> StackEndpoints | None:
    """The endpoints of a live `vidpipe local up`, if any (stale files are ignored)."""
    path = state_file()
    if not path.exists():
        return None
    try:
        endpoints = StackEndpoints(**json.loads(path.read_text()))
        httpx.get(f"{endpoints.aws_endpoint_url}/moto-api/", timeout=1.0)
        return endpoints
    except (ValueError, TypeError, httpx.HTTPError):
        return None


class Session:
    """Clients and names of a local stack, however it runs."""

    def __init__(self, endpoints: StackEndpoints, stack: LocalStack | None = None):
        self.endpoints = endpoints
        self.stack = stack
        self._clients: dict[str, Any] = {}

    @property
    def remote(self) -> bool:
        return self.stack is None

    def client(self, service: str):
        if self.stack is not None:
            return self.stack.clients[service]
        if service not in self._clients:
            creds = {k.lower(): v for k, v in FAKE_CREDENTIALS.items()
                     if k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
            self._clients[service] = boto3.client(service, region_name=REGION,
                                                  endpoint_url=self.endpoints.aws_endpoint_url, **creds)
        return self._clients[service]

    @property
    def settings(self) -> Settings:
        return Settings(table_name=self.endpoints.table, media_bucket=self.endpoints.bucket)

    @property
    def bucket(self) -> str:
        return self.endpoints.bucket

    @property
    def table(self) -> str:
        return self.endpoints.table

    @property
    def jobs(self) -> JobStore:
        return JobStore(self.table, client=self.client("dynamodb"))

    def wait_for_job(self, job_id: str, timeout_s: float = 600.0,
                     on_progress: Callable[[dict | None], None] | None = None) -> dict:
        def check() -> dict | None:
            job = self.jobs.get(job_id)
            if on_progress:
                on_progress(job)
            return job

        return wait_until(check, lambda job: bool(job) and job.get("status") in TERMINAL, timeout_s,
                          lambda job: f"job {job_id} still {job and job.get('status')}", first_s=0.1, cap_s=0.1)


_current: Session | None = None  # the session an enclosing command (the demo) already opened


@contextmanager
def stack_session(time_scale: float = DEFAULT_TIME_SCALE, **stack_options) -> Iterator[Session]:
    global _current
    if _current is not None:
        yield _current
        return
    endpoints = running_stack()
    if endpoints is not None:
        yield Session(endpoints)
        return
    stack = LocalStack(clock=ScaledClock(time_scale), background_pollers=True, **stack_options)
    with stack:
        _current = Session(stack.endpoints(), stack)
        try:
            yield _current
        finally:
            _current = None
