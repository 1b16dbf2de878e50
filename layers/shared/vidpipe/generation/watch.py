"""Provider jobs we may be billed for, watched until the provider says how they ended.

A provider job is watched from the moment we learn its id (SubmitGeneration)
until its clip is recorded in the ledger or the provider confirms it failed or
was cancelled. While the generation job runs, CheckGeneration resolves it;
once the job is terminal and the watch is still there (the job failed on our
side: a status that never answered, a cancel the API does not offer, a Lambda
that died), the scheduled sweep asks the provider (``resolve_watches``) and
records a clip that completed, so the ledger still equals the provider's bill.

A submit whose answer was lost (read timeout, cut or garbled body) may have
created a job we cannot name. It is not watched (there is no id to ask about):
its intent, keyed by the Idempotency-Key, stays in place and becomes an
unconfirmed ledger entry at the requested seconds when the job settles, unless
a retried submit learns the id. ``LOST#`` remembers such an answer, so a later
attempt that fails plainly (HTTP 5xx) does not drop that intent.

Items (single table):

    JOB#<job_id> / WATCH#<provider_job_id>     the watch
    WATCHES      / <job_id>#<provider_job_id>  the same, for the sweep's one Query (no Scan)
    JOB#<job_id> / LOST#<idempotency_key>      a submit answer that was lost
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from vidpipe import aws
from vidpipe.accounting import Accounting, ProviderCall
from vidpipe.errors import ProviderError, ProviderRetryable, VidpipeError
from vidpipe.jobs import TERMINAL, JobStore, from_item, to_item
from vidpipe.observability import logger
from vidpipe.providers.video import Status, VideoProvider

INDEX_PK = "WATCHES"


@dataclass(frozen=True)
class Watch:
    job_id: str
    provider_job_id: str
    provider: str
    model: str
    seconds: float  # what the provider bills for the clip
    resolution: str
    fps: int
    idempotency_key: str
    submitted_at: float
    base_url: str | None = None  # [ROUTING] the route's provider base URL (None: Settings.video_base_url)

    def clip(self, *, latency_ms: int = 0, confirmed: bool = True) -> ProviderCall:
        """The ledger entry of the finished clip: keyed by the provider's job id."""
        return ProviderCall(job_id=self.job_id, step="generate", call_key=self.provider_job_id,
                            provider=self.provider, model=self.model, clip_seconds=self.seconds,
                            resolution=self.resolution, fps=self.fps, latency_ms=latency_ms,
                            request_id=self.provider_job_id, confirmed=confirmed)


class WatchStore:
    def __init__(self, table: str, client=None):
        self.table = table
        self.ddb = client or aws.client("dynamodb")

    def add(self, watch: Watch) -> None:
        item = to_item(asdict(watch))
        self.ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": self.table, "Item": {**_key(watch.job_id, watch.provider_job_id), **item}}},
            {"Put": {"TableName": self.table, "Item": {**_index_key(watch.job_id, watch.provider_job_id), **item}}},
        ])

    def remove(self, job_id: str, provider_job_id: str) -> None:
        self.ddb.transact_write_items(TransactItems=[
            {"Delete": {"TableName": self.table, "Key": _key(job_id, provider_job_id)}},
            {"Delete": {"TableName": self.table, "Key": _index_key(job_id, provider_job_id)}},
        ])

    def pending(self) -> list[Watch]:
        watches = []
        for page in self.ddb.get_paginator("query").paginate(
                TableName=self.table, ConsistentRead=True, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": INDEX_PK}}):
            for item in page.get("Items", []):
                values = from_item(item)
                watches.append(Watch(**{name: values[name] for name in Watch.__dataclass_fields__
                                        if name in values}))
        return [_numbers(w) for w in watches]

    def mark_lost(self, job_id: str, idempotency_key: str) -> None:
        self.ddb.put_item(TableName=self.table, Item=_lost_key(job_id, idempotency_key))

    def lost(self, job_id: str, idempotency_key: str) -> bool:
        return "Item" in self.ddb.get_item(TableName=self.table, Key=_lost_key(job_id, idempotency_key),
                                           ConsistentRead=True)

    def clear_lost(self, job_id: str, idempotency_key: str) -> None:
        self.ddb.delete_item(TableName=self.table, Key=_lost_key(job_id, idempotency_key))


def _numbers(watch: Watch) -> Watch:
    """DynamoDB hands numbers back as Decimal."""
    return Watch(**{**asdict(watch), "seconds": float(watch.seconds), "fps": int(watch.fps),
                    "submitted_at": float(watch.submitted_at)})


def _key(job_id: str, provider_job_id: str) -> dict:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": f"WATCH#{provider_job_id}"}}


def _index_key(job_id: str, provider_job_id: str) -> dict:
    return {"pk": {"S": INDEX_PK}, "sk": {"S": f"{job_id}#{provider_job_id}"}}


def _lost_key(job_id: str, idempotency_key: str) -> dict:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": f"LOST#{idempotency_key}"}}


# ------------------------------------------------------------------ stopping a provider job

@dataclass(frozen=True)
class Stopped:
    """What asking the provider to stop a job achieved."""

    outcome: str  # cancelled | completed | running | no_cancel | cancel_failed
    description: str
    status: Status | None = None  # the provider's answer, when it gave one

    @property
    def settled(self) -> bool:
        """The provider job is over (and recorded, if it completed): no need to watch it."""
        return self.outcome in ("cancelled", "completed")


def stop_provider_job(provider: VideoProvider, watch: Watch, accounting: Accounting, watches: WatchStore,
                      *, latency_ms: int = 0) -> Stopped:
    """Cancel where the API allows and read the answer: a job that had completed is billed,
    so its clip is recorded; one that stopped is forgotten; anything else stays watched."""
    try:
        answer = provider.cancel(watch.provider_job_id)
    except VidpipeError as exc:
        logger.warning("cancel failed", extra={"provider_job_id": watch.provider_job_id, "reason": exc.reason})
        return Stopped("cancel_failed", f"cancel failed: {exc.reason}; the provider job is watched until it "
                       "ends, and a clip it completes is recorded")
    if answer is None:
        return Stopped("no_cancel", f"{provider.name} offers no cancel; the provider job is watched until it "
                       "ends, and a clip it completes is recorded")
    if answer.state == "completed":
        accounting.record_call(watch.clip(latency_ms=latency_ms))
        watches.remove(watch.job_id, watch.provider_job_id)
        return Stopped("completed", "the provider had already completed the clip (recorded in the ledger)",
                       answer)
    if answer.state == "failed":
        watches.remove(watch.job_id, watch.provider_job_id)
        return Stopped("cancelled", "cancelled at the provider", answer)
    return Stopped("running", f"cancel requested, the provider job is still {answer.state}; it is watched "
                   "until it ends, and a clip it completes is recorded", answer)


# ------------------------------------------------------------------ the sweep's part

def resolve_watches(watches: WatchStore, jobs: JobStore, accounting: Accounting,
                    provider_for: Callable[[str], VideoProvider], *, now: Callable[[], float],
                    give_up_after_s: float) -> dict[str, int]:
    """For every watched provider job whose generation job is terminal: record a clip that
    completed, forget one that failed, ask one still running to stop. A provider that has
    not told us how the job ended ``give_up_after_s`` after its submission gets an
    unconfirmed entry at the requested seconds (never under the bill), and is forgotten."""
    counts = {"recorded": 0, "ended": 0, "watching": 0, "given_up": 0}
    for watch in watches.pending():
        job = jobs.get(watch.job_id)
        if job is not None and job.get("status") not in TERMINAL:
            continue  # the state machine still polls it
        # [ROUTING] a fallback route's provider job is asked at its own base URL
        provider = provider_for(watch.provider) if watch.base_url is None else provider_for(watch.provider,
                                                                                              watch.base_url)
        outcome = _resolve(watch, provider, accounting, watches, now=now,
                           give_up_after_s=give_up_after_s)
        counts[outcome] += 1
        # A job record that is gone (or was never written) has nothing to annotate.
        if outcome != "watching" and job is not None:
            jobs.annotate(watch.job_id, provider_job={"provider_job_id": watch.provider_job_id,
                                                      "outcome": outcome, "resolved_by": "sweep"})
    return counts


def _resolve(watch: Watch, provider: VideoProvider, accounting: Accounting, watches: WatchStore, *,
             now: Callable[[], float], give_up_after_s: float) -> str:
    try:
        status = provider.status(watch.provider_job_id)
    except (ProviderError, ProviderRetryable) as exc:
        logger.warning("watched job status failed", extra={"provider_job_id": watch.provider_job_id,
                                                           "reason": exc.reason})
        status = None
    if status is not None and status.state == "completed":
        accounting.record_call(watch.clip())
        watches.remove(watch.job_id, watch.provider_job_id)
        return "recorded"
    if status is not None and status.state == "failed":
        watches.remove(watch.job_id, watch.provider_job_id)
        return "ended"
    if status is not None:
        stopped = stop_provider_job(provider, watch, accounting, watches)
        if stopped.settled:
            return "recorded" if stopped.outcome == "completed" else "ended"
    if now() - watch.submitted_at > give_up_after_s:
        accounting.record_call(watch.clip(confirmed=False))
        watches.remove(watch.job_id, watch.provider_job_id)
        logger.warning("gave up on a watched provider job; recorded unconfirmed",
                       extra={"provider_job_id": watch.provider_job_id, "seconds": watch.seconds})
        return "given_up"
    return "watching"
