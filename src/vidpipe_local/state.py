"""Where `vidpipe local up` says which stack it serves: one state file per port.

    $VIDPIPE_STATE_DIR/local-stack-<port>.json   (default: <checkout>/.vidpipe/)

A checkout's commands therefore use the stacks started from that checkout,
never another project's. A file whose process is gone or whose endpoint does
not answer is stale and ignored. This module is light on purpose (no boto3,
no moto): `vidpipe status` with no stack up answers in well under a second.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
PROBE_TIMEOUT_S = 1.0


def state_dir() -> Path:
    return Path(os.environ.get("VIDPIPE_STATE_DIR") or CHECKOUT / ".vidpipe")


def state_file(port: int) -> Path:
    return state_dir() / f"local-stack-{port}.json"


def log_file(name: str) -> Path:
    """A log beside the state files, for commands with no output folder."""
    return state_dir() / name


def write_state(port: int, fields: dict) -> Path:
    path = state_file(port)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields, indent=2))
    return path


def live_states(url: str | None = None) -> list[dict]:
    """The state of every stack that is up (only the one at ``url`` when given), by port."""
    found = []
    for path in sorted(state_dir().glob("local-stack-*.json")):
        try:
            state = json.loads(path.read_text())
            endpoint = state["aws_endpoint_url"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if url is not None and endpoint.rstrip("/") != url.rstrip("/"):
            continue
        if _process_alive(state.get("pid")) and _answers(endpoint):
            found.append(state)
    return found


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _answers(endpoint: str) -> bool:
    """Something listens at ``endpoint``. A stack busy running jobs may take longer than
    the probe's timeout to answer: a live process that accepted the connection counts
    as up (only a refused or unroutable connection makes a state file stale)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=PROBE_TIMEOUT_S):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except TimeoutError:
        return True  # connected, busy
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, TimeoutError)
    except (OSError, ValueError):
        return False
