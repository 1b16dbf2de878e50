"""Stopping a CLI process a test started (`vidpipe emulator`, `vidpipe local up`) the way a user does: Ctrl-C."""

from __future__ import annotations

import signal
import subprocess

import pytest


def interrupt(process: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
    """SIGINT, then its (stdout, stderr). A process still running after ``timeout_s`` fails the test with
    every thread's stack (started with ``-X faulthandler``: SIGABRT dumps them to stderr) and is gone."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        command = " ".join(map(str, process.args[3:]))
        pytest.fail(f"{command} did not stop within {timeout_s:g} s of Ctrl-C; its threads:\n{err[-12000:]}")
