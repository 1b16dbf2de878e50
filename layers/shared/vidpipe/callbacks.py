"""Callbacks: a job message's ``callback_url`` hears how the job ended.

Intake (``callback_url_problem``): the URL must be https (http only for hosts in
DOWNLOAD_ALLOW_HOSTS, the local profile's 127.0.0.1), and its host must resolve
to public addresses only: the download guard's address checks
(``vidpipe.net.download_guard.check_target``). A private, loopback, link-local
or metadata address makes the job REJECTED, with the rule it breaks as reason.

Delivery (``deliver``, run by CallbackFunction for each CallbacksQueue message
``vidpipe.completion`` queued): one POST of the event detail as JSON, signed
with Standard Webhooks (headers ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``; secret ``callback_signing_secret`` in the ProviderSecret
JSON, ``whsec_`` + base64). The address is checked again when connecting, and
the connection goes to the checked address (no DNS rebinding). No redirect is
followed. A 2xx is delivered. Anything else (a 5xx, a timeout, a refused
connection, a 3xx/4xx) raises ``CallbackFailed``: the record fails and SQS
offers it again after a backoff; past ``callback_max_attempts`` (or at once
when retrying cannot help: the address is refused, no secret) the message goes
to the CallbacksDeadLetterQueue with a ``reason`` attribute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from vidpipe.config import Settings
from vidpipe.errors import DownloadRefused, VidpipeError
from vidpipe.net.download_guard import DownloadPolicy, Resolver, check_target, system_resolver

MAX_URL_CHARS = 2048
USER_AGENT = "vidpipe-callbacks/1"
# Seconds a failed delivery waits before SQS offers it again: doubles per receive, capped.
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 900


class CallbackFailed(VidpipeError):
    """The callback was not delivered this time. ``permanent``: retrying cannot help."""

    def __init__(self, reason: str, permanent: bool = False, **details):
        super().__init__(reason, **details)
        self.permanent = permanent


def callback_policy(url: str, settings: Settings) -> DownloadPolicy:
    """https only, except for hosts the deployment allows (the local emulator/test server)."""
    host = httpx.URL(url).host
    allowed = settings.download_allowlist
    return DownloadPolicy(allow_hosts=allowed, require_https=host not in allowed, max_redirects=0)


def callback_url_problem(url: str, settings: Settings, resolver: Resolver = system_resolver) -> str | None:
    """Why ``url`` may not be a callback URL, or None."""
    if len(url) > MAX_URL_CHARS:
        return f"longer than {MAX_URL_CHARS} characters"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"not a URL ({exc})"
    if parsed.userinfo:
        return "must not carry credentials (user:password@)"
    try:
        check_target(parsed, callback_policy(url, settings), resolver)
    except DownloadRefused as exc:
        return exc.reason.replace("downloads are allowed", "callback URLs are allowed")
    return None


def signed_headers(secret: str, webhook_id: str, body: str, now: Callable[[], float] = time.time) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (the library signs: HMAC-SHA256 over id.timestamp.body)."""
    from standardwebhooks import Webhook

    stamp = datetime.fromtimestamp(int(now()), tz=UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, stamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def deliver(message: dict, *, secret: str, settings: Settings, client: httpx.Client | None = None,
            resolver: Resolver = system_resolver, now: Callable[[], float] = time.time) -> int:
    """POST one queued callback; returns the receiver's status. Raises CallbackFailed."""
    url, webhook_id, detail = message["url"], message["webhook_id"], message["detail"]
    if not secret:
        raise CallbackFailed("callback_signing_secret is not set in the provider secret", permanent=True)
    try:
        target = check_target(url, callback_policy(url, settings), resolver)
    except DownloadRefused as exc:
        raise CallbackFailed(f"callback {exc.reason}", permanent=True) from exc
    body = json.dumps(detail, separators=(",", ":"))
    try:
        headers = signed_headers(secret, webhook_id, body, now)
    except Exception as exc:  # a malformed secret: the library raises its own types
        raise CallbackFailed(f"callback_signing_secret is not a usable signing secret ({type(exc).__name__})",
                             permanent=True) from exc
    pinned = target.url.copy_with(host=target.address)  # connect to the checked address only
    extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
    own = client is None
    client = client or httpx.Client(trust_env=False, timeout=settings.callback_timeout_s)
    try:
        request = client.build_request("POST", pinned, content=body.encode(), extensions=extensions,
                                       headers={**headers, "Host": target.url.netloc.decode("ascii")})
        response = client.send(request, follow_redirects=False)
    except httpx.TimeoutException as exc:
        raise CallbackFailed(f"callback to {target.url.host} timed out after {settings.callback_timeout_s:g} s") from exc
    except httpx.TransportError as exc:
        raise CallbackFailed(f"callback to {target.url.host} failed: {type(exc).__name__}") from exc
    finally:
        if own:
            client.close()
    if not 200 <= response.status_code < 300:
        raise CallbackFailed(f"callback to {target.url.host} answered {response.status_code}")
    return response.status_code


def backoff_s(receive_count: int) -> int:
    """How long a failed delivery stays invisible before its next attempt."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, receive_count - 1))
