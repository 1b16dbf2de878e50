"""Completion webhooks in: a provider tells us its video job ended, and the waiting
Generation execution resumes (docs/webhooks.md).

After SubmitGeneration a job on a provider that pushes webhooks (``VideoProvider.webhooks``)
in a deployment with a webhook secret waits on a task token
(``lambda:invoke.waitForTaskToken``) instead of polling. AwaitCompletion stores the token
against the provider's job id; ProviderWebhookFunction (a Lambda function URL) verifies the
provider's Standard Webhooks signature, then hands the execution its poll state with the
webhook's news (``PollState.announced``) through SendTaskSuccess. CheckGeneration reads that
news instead of asking the provider (no status check), records the clip and the flow stores it.
The wait times out after ``await_s`` (the polling fallback): one status check, then wait again.

Items (single table, TTL ``ttl``):

    WAIT#<provider>#<provider_job_id> / TOKEN   {token, job_id, poll}: the execution waiting
    WAIT#<provider>#<provider_job_id> / EVENT   {type, webhook_id, data}: a webhook's news, kept
                                                 so a webhook that beats the token is not lost

Whichever of the two arrives second resumes the execution; if both do, the second
SendTaskSuccess is refused by Step Functions (the token is spent) and ignored here.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from vidpipe import aws
from vidpipe.generation.state import PollState
from vidpipe.observability import logger

TOLERANCE_S = 300  # Standard Webhooks: a message more than 5 minutes off our clock is refused
MAX_BODY_BYTES = 64 * 1024
EVENTS = ("video.completed", "video.failed")
# A webhook's news outlives the wait it may be early for; replays are dropped for as long
# as a provider retries a delivery (OpenAI: up to 72 hours).
EVENT_TTL_S = 24 * 3600
REPLAY_WINDOW_S = 72 * 3600
# What Step Functions answers for a token whose task no longer waits (timed out, already resumed).
SPENT_TOKEN_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
_DATA_KEYS = ("id", "status", "video_url", "error")


class WebhookRejected(Exception):
    """The request is not a webhook we can trust: ``reason`` is one of headers, stale, signature."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# ------------------------------------------------------------------ when to fall back to polling

def await_timeout_s(poll: PollState, fallback_s: int, now: float) -> int:
    """How long the next task-token wait lasts: the polling fallback interval, or the policy's
    own next wait when that is longer (a job due in 20 minutes is not asked after 10), never
    past the job's deadline."""
    return max(1, math.ceil(min(max(fallback_s, poll.wait_seconds), poll.deadline_at - now)))


def with_webhooks(poll: PollState, *, supported: bool, secret: str, fallback_s: int, now: float) -> PollState:
    """The poll state a submit or a status check hands on: waiting on webhooks when the
    provider pushes them and the deployment can verify them."""
    if not (supported and secret):
        return poll.model_copy(update={"webhooks": False, "await_s": None})
    return poll.model_copy(update={"webhooks": True, "await_s": await_timeout_s(poll, fallback_s, now)})


# ------------------------------------------------------------------ verifying a delivery

def secret_list(*values: str) -> list[str]:
    """The configured secrets (current first, the previous one during a rotation)."""
    return [v for v in values if v]


def verify(body: bytes, headers: dict[str, str], secrets: Iterable[str], *, now: float,
           tolerance_s: float = TOLERANCE_S) -> dict:
    """The webhook's JSON body, once its Standard Webhooks signature checks out with one of
    ``secrets``; ``WebhookRejected`` otherwise.

    The signature is the ``standardwebhooks`` library's (HMAC-SHA256 over
    ``id.timestamp.body``). Its own ``verify`` compares the timestamp with the wall clock;
    this one compares it with ``now`` (vidpipe.clock: the wall clock when deployed, the
    local stack's clock locally) and then the signature, each in constant time.
    """
    from standardwebhooks.webhooks import Webhook

    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (lower.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signatures):
        raise WebhookRejected("headers", "webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookRejected("headers", "webhook-timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance_s:
        raise WebhookRejected("stale", f"webhook-timestamp is {now - timestamp:+.0f} s off (tolerance "
                                       f"{tolerance_s:g} s)")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise WebhookRejected("signature", "the body is not UTF-8") from None
    when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    offered = [_b64(sig.partition(",")[2]) for sig in signatures.split() if sig.startswith("v1,")]
    for secret in secrets:
        expected = _b64(Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=text).partition(",")[2])
        if any(sig is not None and hmac.compare_digest(expected, sig) for sig in offered):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise WebhookRejected("signature", "signed, but the body is not JSON") from None
            if not isinstance(parsed, dict):
                raise WebhookRejected("signature", "signed, but the body is not a JSON object")
            return parsed
    raise WebhookRejected("signature", "no v1 signature matches the webhook secret")


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return None


@dataclass(frozen=True)
class Announcement:
    """A verified webhook's news about one provider job."""

    type: str  # video.completed | video.failed
    webhook_id: str
    provider_job_id: str
    data: dict

    @classmethod
    def parse(cls, body: dict, webhook_id: str) -> Announcement | None:
        """None for an event type we do not act on, or a body without a job id."""
        data = body.get("data")
        if body.get("type") not in EVENTS or not isinstance(data, dict):
            return None
        job = data.get("id")
        if not isinstance(job, str) or not job or len(job) > 256:
            return None
        # Only the fields an adapter reads, each bounded: the news travels in the execution's state.
        kept = {k: str(data[k])[:2048] for k in _DATA_KEYS if data.get(k) is not None}
        return cls(type=body["type"], webhook_id=webhook_id, provider_job_id=job, data=kept)

    def to_state(self) -> dict:
        return {"type": self.type, "webhook_id": self.webhook_id, "data": self.data}

    def state(self) -> str:
        return "completed" if self.type == "video.completed" else "failed"


# ------------------------------------------------------------------ the waiting executions

def _key(provider: str, provider_job_id: str, sk: str) -> dict:
    return {"pk": {"S": f"WAIT#{provider}#{provider_job_id}"}, "sk": {"S": sk}}


class WaitStore:
    """TOKEN and EVENT items of waiting provider jobs (module docstring)."""

    def __init__(self, table: str, client=None):
        self.table = table
        self.ddb = client or aws.client("dynamodb")

    def put_token(self, provider: str, provider_job_id: str, *, token: str, job_id: str, poll: PollState,
                  ttl: int) -> None:
        self.ddb.put_item(TableName=self.table, Item={
            **_key(provider, provider_job_id, "TOKEN"), "token": {"S": token}, "job_id": {"S": job_id},
            "poll": {"S": poll.model_dump_json()}, "ttl": {"N": str(ttl)}})

    def token(self, provider: str, provider_job_id: str) -> dict | None:
        item = self.ddb.get_item(TableName=self.table, Key=_key(provider, provider_job_id, "TOKEN"),
                                 ConsistentRead=True).get("Item")
        if not item:
            return None
        return {"token": item["token"]["S"], "job_id": item["job_id"]["S"],
                "poll": PollState.model_validate_json(item["poll"]["S"])}

    def delete_token(self, provider: str, provider_job_id: str, token: str) -> None:
        """Only this token's item: a later wait of the same job may have replaced it."""
        try:
            self.ddb.delete_item(TableName=self.table, Key=_key(provider, provider_job_id, "TOKEN"),
                                 ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"},
                                 ExpressionAttributeValues={":t": {"S": token}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def put_event(self, provider: str, announcement: Announcement, ttl: int) -> None:
        self.ddb.put_item(TableName=self.table, Item={
            **_key(provider, announcement.provider_job_id, "EVENT"), "type": {"S": announcement.type},
            "webhook_id": {"S": announcement.webhook_id}, "data": {"S": json.dumps(announcement.data)},
            "ttl": {"N": str(ttl)}})

    def event(self, provider: str, provider_job_id: str) -> Announcement | None:
        item = self.ddb.get_item(TableName=self.table, Key=_key(provider, provider_job_id, "EVENT"),
                                 ConsistentRead=True).get("Item")
        if not item:
            return None
        return Announcement(type=item["type"]["S"], webhook_id=item["webhook_id"]["S"],
                            provider_job_id=provider_job_id, data=json.loads(item["data"]["S"]))


def send_task_success(sfn, token: str, output: str) -> bool:
    """True once Step Functions took the result; False when the token is spent (the wait timed
    out and polling took over, or the other path resumed it first)."""
    try:
        sfn.send_task_success(taskToken=token, output=output)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in SPENT_TOKEN_ERRORS:
            return False
        raise


def resume(store: WaitStore, sfn, provider: str, waiting: dict, announcement: Announcement) -> bool:
    """Hand the waiting execution its poll state with the webhook's news."""
    poll: PollState = waiting["poll"]
    output = poll.model_copy(update={"state": announcement.state(), "announced": announcement.to_state()})
    resumed = send_task_success(sfn, waiting["token"], output.model_dump_json())
    store.delete_token(provider, announcement.provider_job_id, waiting["token"])
    logger.info("completion webhook resumed the job" if resumed else "completion webhook came after the wait ended",
                extra={"job_id": waiting["job_id"], "provider": provider,
                       "provider_job_id": announcement.provider_job_id, "webhook_type": announcement.type})
    return resumed


def await_completion(store: WaitStore, sfn, *, token: str, job_id: str, poll: PollState, now: float) -> dict:
    """AwaitCompletion: store the token; resume at once if the webhook came first."""
    ttl = int(now + (poll.await_s or 0) + EVENT_TTL_S)
    store.put_token(poll.provider, poll.provider_job_id, token=token, job_id=job_id, poll=poll, ttl=ttl)
    early = store.event(poll.provider, poll.provider_job_id)
    if early is not None:
        waiting = {"token": token, "job_id": job_id, "poll": poll}
        return {"waiting": False, "resumed": resume(store, sfn, poll.provider, waiting, early)}
    return {"waiting": True, "await_s": poll.await_s}


def take_announcement(store: WaitStore, sfn, provider: str, announcement: Announcement, *, now: float) -> str:
    """ProviderWebhookFunction after verification: keep the news, resume the waiting execution.
    Returns what happened: resumed | late | unknown_job."""
    store.put_event(provider, announcement, ttl=int(now + EVENT_TTL_S))
    waiting = store.token(provider, announcement.provider_job_id)
    if waiting is None:
        logger.info("completion webhook for a job nobody waits on", extra={
            "provider": provider, "provider_job_id": announcement.provider_job_id,
            "webhook_type": announcement.type})
        return "unknown_job"
    return "resumed" if resume(store, sfn, provider, waiting, announcement) else "late"


# ------------------------------------------------------------------ the HTTP edge (function URL)

@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_function_url(cls, event: dict) -> HttpRequest:
        """A Lambda function URL event (payload format 2.0)."""
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
        http = (event.get("requestContext") or {}).get("http") or {}
        return cls(method=str(http.get("method", "")).upper(), path=event.get("rawPath") or http.get("path") or "/",
                   headers={k.lower(): v for k, v in (event.get("headers") or {}).items()}, body=body)


def response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handle_webhook(request: HttpRequest, *, providers: dict[str, bool], secrets: list[str], now: float,
                   process: Callable[[str, str, Announcement], str],
                   on_rejected: Callable[[str], None]) -> dict:
    """One delivery, answered at once: 401 for anything unverified (and ``on_rejected``), 200
    otherwise (an event we do not act on, or a job nobody waits on, included: a provider would
    only retry it). ``process(webhook_id, provider, announcement)`` runs once per webhook id."""
    if request.method != "POST":
        return response(405, {"error": "POST only"})
    provider = request.path.strip("/")
    if not providers.get(provider):
        endpoints = ", ".join(f"/{name}" for name, on in sorted(providers.items()) if on)
        return response(404, {"error": f"no webhook endpoint {request.path!r}; one of {endpoints}"})
    if len(request.body) > MAX_BODY_BYTES:
        return response(413, {"error": f"a webhook body is at most {MAX_BODY_BYTES} bytes"})
    if not secrets:
        logger.warning("webhook refused: no webhook_secret in the provider secret")
        on_rejected("unconfigured")
        return response(401, {"error": "webhooks are not configured"})
    try:
        body = verify(request.body, request.headers, secrets, now=now)
    except WebhookRejected as exc:
        logger.warning("webhook refused", extra={"reason": exc.reason, "detail": exc.detail, "provider": provider})
        on_rejected(exc.reason)
        return response(401, {"error": "invalid webhook"})
    webhook_id = request.headers["webhook-id"]
    announcement = Announcement.parse(body, webhook_id)
    if announcement is None:
        logger.info("webhook ignored: not a video completion event", extra={"webhook_type": str(body.get("type"))})
        return response(200, {"status": "ignored"})
    return response(200, {"status": process(webhook_id, provider, announcement)})


def webhook_providers(adapters: dict[str, Any]) -> dict[str, bool]:
    """Which adapter names have a webhook endpoint (``/<name>`` on the function URL)."""
    return {name: bool(getattr(adapter, "webhooks", False)) for name, adapter in adapters.items()}


def apply_webhooks(poll: PollState, deps, now: float) -> PollState:
    """``with_webhooks`` for this deployment: the adapter's declaration and the provider secret's
    ``webhook_secret`` (SubmitGeneration and CheckGeneration call it on the state they return)."""
    from vidpipe.providers.video import ADAPTERS

    adapter = ADAPTERS.get(poll.provider)
    return with_webhooks(poll, supported=bool(getattr(adapter, "webhooks", False)),
                         secret=deps.api_key("webhook_secret"), fallback_s=deps.settings.webhook_fallback_s, now=now)
