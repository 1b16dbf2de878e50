"""Where CLI commands run: the stack `vidpipe local up` serves (found through
its state file, see vidpipe_local.state), else an ephemeral in-process stack
that lives for the command.

    with stack_session(stack_url=args.stack) as session:
        session.announce()  # "stack: ..." names the stack, once per session
        session.client("s3").put_object(Bucket=session.bucket, ...)
        job = session.wait_for_job(job_id, on_progress=print)
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3

from vidpipe.config import Settings
from vidpipe.jobs import TERMINAL, JobStore
from vidpipe_local.clock import ScaledClock
from vidpipe_local.state import live_states, state_dir, state_file
from vidpipe_local.stack.stack import FAKE_CREDENTIALS, LocalStack, StackEndpoints, wait_until
from vidpipe_local.stack.template import REGION

DEFAULT_TIME_SCALE = 30.0  # provider seconds per real second in the CLI and demo

__all__ = ["Session", "StackEndpoints", "running_stack", "stack_session", "state_file", "state_dir"]


class NoStack(Exception):
    """No stack answers where the user pointed, or several are up and none was picked."""


def running_stack(stack_url: str | None = None) -> dict | None:
    """The state of the live `vidpipe local up` to use (None: none is up).

    Raises NoStack when ``stack_url`` names no live stack, or when several are up
    and none was named."""
    states = live_states(stack_url)
    if stack_url and not states:
        raise NoStack(f"no vidpipe stack answers at {stack_url} (state files in {state_dir()})")
    if len(states) > 1:
        urls = ", ".join(s["aws_endpoint_url"] for s in states)
        raise NoStack(f"{len(states)} local stacks are up ({urls}): pick one with --stack URL")
    return states[0] if states else None


def endpoints_from_state(state: dict) -> StackEndpoints:
    names = {f.name for f in dataclasses.fields(StackEndpoints)}
    return StackEndpoints(**{k: v for k, v in state.items() if k in names})


class Session:
    """Clients and names of a local stack, however it runs."""

    def __init__(self, endpoints: StackEndpoints, stack: LocalStack | None = None,
                 clock_start: float | None = None, log_path: str | None = None):
        self.endpoints = endpoints
        self.stack = stack
        self.clock_start = clock_start  # wall time when the stack's scaled clock started
        self.log_path = log_path  # where a served stack writes its functions' logs
        self.announced = False
        self._clients: dict[str, Any] = {}

    def announce(self, stream=None) -> None:
        """Print describe() once per session (a demo runs several commands on one)."""
        if not self.announced:
            print(self.describe(), file=stream or sys.stdout)
            self.announced = True

    def describe(self) -> str:
        """One line naming the stack this command uses."""
        if self.stack is not None:
            return "stack: in-process, for this command only (no `vidpipe local up` is running)"
        e = self.endpoints
        log = f"; its log: {self.log_path}" if self.log_path else ""
        return f"stack: vidpipe local up at {e.aws_endpoint_url} (time scale {e.time_scale:g}x{log})"

    def real_time(self, value: float | datetime) -> datetime:
        """A time stamped by the stack's clock, as wall-clock time.

        The local clock runs ``time_scale`` times faster than real time (so
        provider ETAs and Wait states shrink), and so do the timestamps the
        functions write; this maps one back to when it happened."""
        t = value.timestamp() if isinstance(value, datetime) else float(value)
        scale = self.endpoints.time_scale
        if self.clock_start is not None and scale and scale > 0:
            t = self.clock_start + (t - self.clock_start) / scale
        return datetime.fromtimestamp(t, UTC)

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
def stack_session(time_scale: float = DEFAULT_TIME_SCALE, stack_url: str | None = None,
                  **stack_options) -> Iterator[Session]:
    """The served stack (``stack_url``, or the only one up), else an in-process one.
    ``stack_options`` (LocalStack's) need a stack of their own: with a served one
    up they are refused."""
    global _current
    if _current is not None:
        yield _current
        return
    from vidpipe_local.logs import adopt_terminal_handlers

    adopt_terminal_handlers()  # before any handler logs: its lines go to the command's log
    state = running_stack(stack_url)
    if state is not None:
        if stack_options:
            raise NoStack(f"this needs its own stack, but `vidpipe local up` serves {state['aws_endpoint_url']}: "
                          "stop it first")
        yield Session(endpoints_from_state(state), clock_start=state.get("clock_start"), log_path=state.get("log"))
        return
    started = time.time()
    stack = LocalStack(clock=ScaledClock(time_scale, start=started), background_pollers=True, **stack_options)
    with stack:
        _current = Session(stack.endpoints(), stack, clock_start=started)
        try:
            yield _current
        finally:
            _current = None
