"""Fixtures for the provider emulator tests: one emulator per test on a
free port, driven by a VirtualClock, and an httpx client that sends its key."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
from emulator_helpers import API_KEY

from vidpipe_local.clock import VirtualClock
from vidpipe_local.emulator import Emulator

# Built once: httpx would build a TLS context per client (~30 ms each), though
# the emulator speaks plain HTTP.
_TLS = ssl.create_default_context()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[Emulator]:
    with Emulator(api_key=API_KEY, clock=clock, default_eta_s=30.0) as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10.0,
                      verify=_TLS) as http:
        yield http


@pytest.fixture
def anonymous(emulator: Emulator) -> Iterator[httpx.Client]:
    """A client that sends no key (control endpoints, auth checks)."""
    with httpx.Client(base_url=emulator.url, timeout=10.0, verify=_TLS) as http:
        yield http
