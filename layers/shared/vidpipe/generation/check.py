"""One status check: ready, failed, timed out, or when to look again.

A status check that fails in any way (429/5xx/timeout that outlived the
adapter's short retries, 401/404, a garbled body) does not fail the job: it
counts as a check and as a status error, and the next wait honours its
Retry-After. A status the provider reports that we do not know counts as
still running. The attempt cap and the deadline bound the loop; at either the
provider job is cancelled where the API allows, and the cancel's answer is
read: a clip that completed first is billed, so it is recorded (and stored);
a job that could not be stopped stays watched (``watch.py``) until it ends.
"""

from __future__ import annotations

from collections.abc import Callable

from vidpipe.accounting import Accounting
from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.generation.messages import GenerateJob
from vidpipe.generation.polling import PollPolicy, next_wait_s
from vidpipe.generation.state import PollState
from vidpipe.generation.watch import Watch, WatchStore, stop_provider_job
from vidpipe.providers.video import Status, VideoProvider, billed_seconds


class GenerationTimedOut(ProviderError):
    """No clip by the deadline or the attempt cap. Never retried (not in any Retry list)."""


def watch_of(job_id: str, request: GenerateJob, poll: PollState) -> Watch:
    # [ROUTING] the route's model and key (a fallback route's provider job has its own)
    from vidpipe.generation.fallback import route_key

    model = poll.model or request.model
    return Watch(job_id=job_id, provider_job_id=poll.provider_job_id, provider=poll.provider, model=model,
                 seconds=billed_seconds(poll.provider, model, request.duration_s),
                 resolution=request.resolution, fps=request.fps, idempotency_key=route_key(job_id, poll.route_index),
                 submitted_at=poll.submitted_at, base_url=poll.base_url)


def check_generation(job_id: str, request: GenerateJob, poll: PollState, provider: VideoProvider,
                     accounting: Accounting, watches: WatchStore, *, policy: PollPolicy, max_attempts: int,
                     now: Callable[[], float],
                     on_failed: Callable[[Status], PollState | None] | None = None) -> PollState:
    """``on_failed`` [ROUTING]: given a provider-side failure (the watch already ended), the
    PollState of the job on its next route, or None to end the job (generation/fallback.py)."""
    # [WEBHOOKS] A verified completion webhook may already say how the job ended: no status check then.
    announced = provider.announced(poll.provider_job_id, poll.announced) if poll.announced else None
    attempt = poll.attempt + (announced is None)
    error: ProviderError | ProviderRetryable | None = None
    try:
        status = announced or provider.status(poll.provider_job_id)
    except (ProviderError, ProviderRetryable) as exc:
        status, error = None, exc
    checked_at = now()
    watch = watch_of(job_id, request, poll)
    latency_ms = int((checked_at - poll.submitted_at) * 1000)

    if status is not None and status.state == "completed":
        return _completed(poll, status, watch, accounting, watches, attempt=attempt, at=checked_at,
                          latency_ms=latency_ms)
    if status is not None and status.state == "failed":
        watches.remove(job_id, poll.provider_job_id)  # the provider ended it: nothing to bill
        moved = on_failed(status) if on_failed is not None else None
        if moved is not None:
            return moved
        raise ProviderError(f"the provider failed the job: {status.error}", provider_job_id=poll.provider_job_id)

    elapsed = checked_at - poll.submitted_at
    status_errors = poll.status_errors + (error is not None)
    if attempt >= max_attempts or checked_at >= poll.deadline_at:
        stopped = stop_provider_job(provider, watch, accounting, watches, latency_ms=latency_ms)
        if stopped.outcome == "completed" and (stopped.status.download_url or stopped.status.s3_uri):
            # Paid for: store it rather than throw it away.
            return _ready(poll, stopped.status, attempt=attempt, at=checked_at, status_errors=status_errors)
        errors = f" ({status_errors} of them failed)" if status_errors else ""
        raise GenerationTimedOut(f"timed out: no video after {attempt} status checks{errors} in {elapsed:.0f} s; "
                                 f"{stopped.description}", provider_job_id=poll.provider_job_id,
                                 provider_job=stopped.outcome)

    progress = status.progress if status is not None else poll.progress
    wait = next_wait_s(policy, elapsed_s=elapsed, eta_s=poll.eta_s, progress=progress,
                       previous_progress=poll.progress, reported_eta_s=status.eta_s if status else None,
                       time_left_s=poll.deadline_at - checked_at,
                       retry_after_s=getattr(error, "retry_after_s", None))
    update = {"attempt": attempt, "wait_seconds": wait, "progress": progress, "announced": None}
    if status is not None:
        update["state"] = status.state
    else:
        update |= {"status_errors": status_errors, "last_error": error.reason}
    return poll.model_copy(update=update)


def _completed(poll: PollState, status: Status, watch: Watch, accounting: Accounting, watches: WatchStore, *,
               attempt: int, at: float, latency_ms: int) -> PollState:
    # The provider bills at completion, so this is where the clip's cost is recorded
    # (idempotent on the provider job id if this check is retried), then the watch ends.
    accounting.record_call(watch.clip(latency_ms=latency_ms))
    watches.remove(watch.job_id, watch.provider_job_id)
    return _ready(poll, status, attempt=attempt, at=at, status_errors=poll.status_errors)


def _ready(poll: PollState, status: Status, *, attempt: int, at: float, status_errors: int) -> PollState:
    return poll.model_copy(update={"attempt": attempt, "state": "completed", "progress": 1.0,
                                   "download_url": status.download_url, "s3_uri": status.s3_uri,
                                   "completed_at": at, "status_errors": status_errors})
