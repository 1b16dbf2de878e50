"""One status check: ready, failed, timed out, or when to look again.

A transient provider error (429/5xx/timeout that outlived the adapter's short
retries) does not fail the job: it counts as a check and the next wait
honours its Retry-After. The attempt cap and the deadline bound the loop.
"""

from __future__ import annotations

from collections.abc import Callable

from vidpipe.accounting import Accounting, ProviderCall
from vidpipe.errors import ProviderError, ProviderRetryable, VidpipeError
from vidpipe.generation.messages import GenerateJob
from vidpipe.generation.polling import PollPolicy, next_wait_s
from vidpipe.generation.state import PollState
from vidpipe.observability import logger
from vidpipe.providers.video import VideoProvider, billed_seconds


class GenerationTimedOut(ProviderError):
    """No clip by the deadline or the attempt cap. Never retried (not in any Retry list)."""


def check_generation(job_id: str, request: GenerateJob, poll: PollState, provider: VideoProvider,
                     accounting: Accounting, *, policy: PollPolicy, max_attempts: int,
                     now: Callable[[], float]) -> PollState:
    attempt = poll.attempt + 1
    transient: ProviderRetryable | None = None
    try:
        status = provider.status(poll.provider_job_id)
    except ProviderRetryable as exc:
        status, transient = None, exc
    checked_at = now()

    if status is not None and status.state == "completed":
        # The provider bills at completion, so this is where the clip's cost is recorded
        # (idempotent on the provider job id if this check is retried).
        accounting.record_call(ProviderCall(
            job_id=job_id, step="generate", call_key=poll.provider_job_id, provider=provider.name,
            model=request.model, clip_seconds=billed_seconds(provider.name, request.model, request.duration_s),
            resolution=request.resolution, fps=request.fps, latency_ms=int((checked_at - poll.submitted_at) * 1000), request_id=poll.provider_job_id))
        return poll.model_copy(update={"attempt": attempt, "state": "completed", "progress": 1.0,
                                       "download_url": status.download_url, "s3_uri": status.s3_uri,
                                       "completed_at": checked_at})
    if status is not None and status.state == "failed":
        raise ProviderError(f"the provider failed the job: {status.error}", provider_job_id=poll.provider_job_id)

    elapsed = checked_at - poll.submitted_at
    if attempt >= max_attempts or checked_at >= poll.deadline_at:
        outcome = cancel_at_provider(provider, poll.provider_job_id)
        raise GenerationTimedOut(f"timed out: no video after {attempt} status checks in {elapsed:.0f} s; {outcome}",
                                 provider_job_id=poll.provider_job_id)

    progress = status.progress if status is not None else poll.progress
    wait = next_wait_s(policy, elapsed_s=elapsed, eta_s=poll.eta_s, progress=progress,
                       previous_progress=poll.progress, reported_eta_s=status.eta_s if status else None,
                       time_left_s=poll.deadline_at - checked_at,
                       retry_after_s=transient.retry_after_s if transient else None)
    update = {"attempt": attempt, "wait_seconds": wait, "progress": progress}
    if status is not None:
        update["state"] = status.state
    else:
        update |= {"status_errors": poll.status_errors + 1, "last_error": transient.reason}
    return poll.model_copy(update=update)


def cancel_at_provider(provider: VideoProvider, provider_job_id: str) -> str:
    """Best effort: the job is failing either way, so a cancel error is reported, not raised."""
    try:
        return "cancelled at the provider" if provider.cancel(provider_job_id) else \
            f"{provider.name} offers no cancel"
    except VidpipeError as exc:
        logger.warning("cancel failed", extra={"provider_job_id": provider_job_id, "reason": exc.reason})
        return f"cancel failed: {exc.reason}"
