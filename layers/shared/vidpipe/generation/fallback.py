"""Fallback across a job's video routes (vidpipe/routing.py), inside the functions.

The Generation state machine is not aware of routes: SubmitGeneration walks
them, CheckGeneration moves a job to the next one, and each returns the
``PollState`` of the provider job now followed (``route_index``, ``provider``,
``model``, ``base_url``).

When a route is left (docs/routing.md):

- **Submit, unavailable**: a ``ProviderRetryable`` that outlived the adapter's
  retries (HTTP 5xx, timeouts, connection failures), or a 429 whose
  Retry-After is longer than the job's polling deadline. A plain 429 (the
  provider will take it shortly), our own rate bucket (``RateLimited``), a
  step out of time, and a submit whose answer was lost are NOT: the error goes
  back to the state machine, which comes back later. A lost answer may have
  created a paid job, so the walk resumes at that route (its ``LOST#`` marker,
  watch.py) and never starts a second provider's job for it.
- **Check, capacity**: the provider failed the job saying it is out of
  capacity (overloaded, try again later). A failed job is not billed; its watch
  ends, and the next route is submitted with the job's remaining deadline.
- **Never**: a content-policy refusal (the next provider would refuse too), any
  other ``ProviderError`` (a 4xx: the request is wrong), a pinned job
  (provider and model given), or no route left. The job ends with the
  provider's reason.

Every attempt goes to the job record's ``attempts`` list: ``{provider, model,
base_url, provider_job_id, outcome, reason}`` with outcome ``submitted``,
``unavailable``, ``answer_lost``, ``retry_later``, ``refused``, ``capacity``, ``content_policy`` or
``failed``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from botocore.exceptions import ClientError

from vidpipe import aws
from vidpipe.accounting import Accounting
from vidpipe.errors import ProviderError, ProviderRetryable, RateLimited
from vidpipe.generation.enhance import Enhancement
from vidpipe.generation.messages import GenerateJob
from vidpipe.generation.polling import PollPolicy
from vidpipe.generation.state import PollState
from vidpipe.generation.submit import idempotency_key, submit_generation
from vidpipe.generation.watch import WatchStore
from vidpipe.jobs import job_key, now_iso, stable_id
from vidpipe.observability import logger
from vidpipe.providers.video import Status, VideoProvider
from vidpipe.routing import VideoRoute

# Provider-side failure reasons. Policy is read first: a refusal that mentions capacity is still a refusal.
CONTENT_POLICY = re.compile(r"polic|moderat|safety|content.?filter|blocked|prohibited|not allowed", re.I)
CAPACITY = re.compile(r"capacity|overload|unavailable|try again later|resource.?exhausted|too busy|busy", re.I)

ProviderFor = Callable[[VideoRoute], VideoProvider]


def route_key(job_id: str, route_index: int) -> str:
    """The Idempotency-Key of the job's submission on one route (route 0: the key it always had)."""
    return idempotency_key(job_id) if route_index == 0 else stable_id("vidpipe-submit", job_id, str(route_index),
                                                                      length=40)


def failure_kind(status: Status) -> str:
    """``content_policy`` | ``capacity`` | ``failed`` for a provider-side failed job."""
    reason = status.error or ""
    if CONTENT_POLICY.search(reason):
        return "content_policy"
    if CAPACITY.search(reason):
        return "capacity"
    return "failed"


def unavailable(exc: ProviderError | ProviderRetryable, deadline_s: float) -> bool:
    """Whether a submit error means "this provider cannot take the job now": try the next route."""
    if not isinstance(exc, ProviderRetryable) or isinstance(exc, RateLimited):
        return False
    if exc.details.get("answer_lost") or exc.details.get("out_of_time"):
        return False
    if re.search(r"\bHTTP 429\b", exc.reason):
        return exc.retry_after_s is not None and exc.retry_after_s > deadline_s
    return True


class AttemptLog:
    """Appends to the job record's ``attempts`` (no record: nothing to annotate)."""

    def __init__(self, table: str, client=None):
        self.table = table
        self.ddb = client or aws.client("dynamodb")

    def add(self, job_id: str, route: VideoRoute, route_index: int, *, outcome: str,
            provider_job_id: str | None = None, reason: str | None = None) -> None:
        attempt = {"M": {
            "route_index": {"N": str(route_index)}, "provider": {"S": route.provider}, "model": {"S": route.model},
            "base_url": {"S": route.base_url} if route.base_url else {"NULL": True},
            "provider_job_id": {"S": provider_job_id} if provider_job_id else {"NULL": True},
            "outcome": {"S": outcome}, "reason": {"S": reason[:500]} if reason else {"NULL": True},
            "at": {"S": now_iso()}}}
        self._update(job_id, "SET attempts = list_append(if_not_exists(attempts, :none), :one)",
                     {":none": {"L": []}, ":one": {"L": [attempt]}})

    def remember_enhancement(self, job_id: str, enhancement: Enhancement) -> None:
        """What was submitted, for a CheckGeneration that submits on the next route (its event has no prompt)."""
        self._update(job_id, "SET submitted_enhancement = :e",
                     {":e": {"S": enhancement.model_dump_json()}})

    def _update(self, job_id: str, expression: str, values: dict) -> None:
        try:
            self.ddb.update_item(TableName=self.table, Key=job_key(job_id), UpdateExpression=expression,
                                 ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues=values)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            logger.info("no job record to annotate", extra={"job_id": job_id})

    def submitted_enhancement(self, job_id: str, request: GenerateJob) -> Enhancement:
        item = self.ddb.get_item(TableName=self.table, Key=job_key(job_id), ConsistentRead=True,
                                 ProjectionExpression="submitted_enhancement").get("Item", {})
        if "submitted_enhancement" in item:
            return Enhancement.model_validate_json(item["submitted_enhancement"]["S"])
        return Enhancement(prompt=request.prompt, physics=request.physics)


def submit_on_routes(job_id: str, request: GenerateJob, enhancement: Enhancement, routes: list[VideoRoute],
                     provider_for: ProviderFor, accounting: Accounting, watches: WatchStore, attempts: AttemptLog, *,
                     policy: PollPolicy, deadline_s: float, output_s3_uri: str, now: Callable[[], float],
                     start: int = 0, **submit_options) -> PollState:
    """Submit on the first route that takes the job, from ``start`` (or from a route whose
    answer was lost). Raises the last route's error when none does."""
    if not routes:
        raise ProviderError("the job has no video route")
    lost = [i for i in range(len(routes)) if watches.lost(job_id, route_key(job_id, i))]
    first = lost[0] if lost else start
    if len(routes) > 1 and not request.pinned:
        attempts.remember_enhancement(job_id, enhancement)
    for index in range(first, len(routes)):
        route = routes[index]
        routed = request.model_copy(update={"provider": route.provider, "model": route.model})
        provider = provider_for(route)
        try:
            poll = submit_generation(job_id, routed, enhancement, provider, accounting, watches, policy=policy,
                                     deadline_s=deadline_s, output_s3_uri=output_s3_uri, now=now,
                                     key=route_key(job_id, index), **submit_options)
        except (ProviderError, ProviderRetryable) as exc:
            moving = unavailable(exc, deadline_s) and index + 1 < len(routes) and not request.pinned
            outcome = ("answer_lost" if exc.details.get("answer_lost")
                       else "unavailable" if unavailable(exc, deadline_s)
                       else "retry_later" if isinstance(exc, ProviderRetryable) else "refused")
            attempts.add(job_id, route, index, outcome=outcome, reason=exc.reason)
            if not moving:
                raise
            logger.warning("video route unavailable: trying the next", extra={
                "route_index": index, "provider": route.provider, "model": route.model, "reason": exc.reason})
            continue
        attempts.add(job_id, route, index, outcome="submitted", provider_job_id=poll.provider_job_id)
        return poll.model_copy(update={"route_index": index, "model": route.model, "base_url": route.base_url})
    raise ProviderError("no video route left")  # unreachable: the last route raises


def after_failure(job_id: str, request: GenerateJob, poll: PollState, status: Status, routes: list[VideoRoute],
                  provider_for: ProviderFor, accounting: Accounting, watches: WatchStore, attempts: AttemptLog, *,
                  policy: PollPolicy, output_s3_uri: str, now: Callable[[], float],
                  submit_options: Callable[[], dict] = dict) -> PollState | None:
    """The provider failed the job (its watch already ended: a failed job is not billed).
    Capacity, with a route left and time left: the next route's PollState. Otherwise None
    (the job ends with the provider's reason). ``submit_options()`` (e.g. the reference image)
    is only called when the job moves."""
    kind = failure_kind(status)
    index = poll.route_index
    route = routes[index] if index < len(routes) else VideoRoute(provider=poll.provider,
                                                                   model=poll.model or request.model or "unknown")
    attempts.add(job_id, route, index, outcome=kind, provider_job_id=poll.provider_job_id, reason=status.error)
    time_left = poll.deadline_at - now()
    if kind != "capacity" or request.pinned or index + 1 >= len(routes) or time_left <= 0:
        return None
    logger.warning("provider out of capacity: trying the next video route", extra={
        "route_index": index, "provider": poll.provider, "provider_job_id": poll.provider_job_id})
    enhancement = attempts.submitted_enhancement(job_id, request)
    moved = submit_on_routes(job_id, request, enhancement, routes, provider_for, accounting, watches, attempts,
                             policy=policy, deadline_s=time_left, output_s3_uri=output_s3_uri, now=now,
                             start=index + 1, **submit_options())
    return moved.model_copy(update={"status_errors": poll.status_errors})
