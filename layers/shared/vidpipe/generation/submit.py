"""Submit the clip to the provider, once, and start the polling state.

The submission is metered like a chat call: before the request an intent
keyed by the Idempotency-Key holds the clip's estimate (unconfirmed), so a
submission the provider accepted but whose answer we lost is still charged.
Once the provider's job id is known the job is watched under that id
(``watch.py``) and the intent is dropped: the clip is recorded when it
completes, under the provider's id. A plain refusal (HTTP error, no
connection) drops the intent, unless an earlier attempt's answer was lost.
"""

from __future__ import annotations

from collections.abc import Callable

from vidpipe.accounting import Accounting, ProviderCall
from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.generation.enhance import Enhancement
from vidpipe.generation.messages import GenerateJob
from vidpipe.generation.polling import PollPolicy, next_wait_s
from vidpipe.generation.state import PollState
from vidpipe.generation.watch import Watch, WatchStore
from vidpipe.jobs import stable_id
from vidpipe.providers.video import VideoProvider, VideoRequest, billed_seconds
from vidpipe.reference_image import ReferenceImage, for_provider


def idempotency_key(job_id: str) -> str:
    """Stable per job: a retried submit (Lambda or Step Functions retry) reuses it."""
    return stable_id("vidpipe-submit", job_id, length=40)


def submit_generation(job_id: str, request: GenerateJob, enhancement: Enhancement, provider: VideoProvider,
                      accounting: Accounting, watches: WatchStore, *, policy: PollPolicy, deadline_s: float,
                      output_s3_uri: str, now: Callable[[], float],
                      reference: ReferenceImage | None = None, key: str | None = None) -> PollState:
    """``reference``: the job's reference image, fetched and checked (vidpipe.reference_image.fetch)."""
    video = VideoRequest(prompt=enhancement.prompt, model=request.model, mode=request.mode,
                         duration_s=request.duration_s, fps=request.fps, resolution=request.resolution,
                         physics=enhancement.physics.set_values(), output_s3_uri=output_s3_uri,
                         **for_provider(reference, provider.name, request.model, request.resolution))
    key = key or idempotency_key(job_id)  # [ROUTING] a fallback route has its own (generation/fallback.py)
    seconds = billed_seconds(provider.name, request.model, request.duration_s)
    accounting.begin_call(ProviderCall(job_id=job_id, step="generate", call_key=key, provider=provider.name,
                                       model=request.model, clip_seconds=seconds, resolution=request.resolution,
                                       fps=request.fps, confirmed=False))
    try:
        submitted = provider.submit(video, key)
    except (ProviderError, ProviderRetryable) as exc:
        raise _unanswered(exc, job_id, key, seconds, accounting, watches) from exc
    submitted_at = now()
    watches.add(Watch(job_id=job_id, provider_job_id=submitted.provider_job_id, provider=provider.name,
                      model=request.model, seconds=seconds, resolution=request.resolution, fps=request.fps,
                      idempotency_key=key, submitted_at=submitted_at, base_url=getattr(provider, "base_url", None)))
    # Watched under the provider's id from here on: the intent's work is done.
    accounting.abandon_call(job_id, key)
    watches.clear_lost(job_id, key)
    return PollState(
        provider=provider.name, provider_job_id=submitted.provider_job_id, submitted_at=submitted_at,
        deadline_at=submitted_at + deadline_s, eta_s=submitted.eta_s,
        wait_seconds=next_wait_s(policy, elapsed_s=0.0, eta_s=submitted.eta_s, time_left_s=deadline_s),
    )


def _unanswered(exc: ProviderError | ProviderRetryable, job_id: str, key: str, seconds: float,
                accounting: Accounting, watches: WatchStore) -> ProviderError | ProviderRetryable:
    """The error to raise (same type, so the state machine's Retry/Catch still apply)."""
    if exc.details.get("answer_lost"):
        watches.mark_lost(job_id, key)
    elif not watches.lost(job_id, key):
        accounting.abandon_call(job_id, key)  # refused outright, by every attempt: not billed
        return exc
    reason = (f"{exc.reason}; the provider may have created the job without our learning its id: unless a "
              f"retried submit learns it, it is recorded as unconfirmed spend of {seconds:g} s")
    details = {k: v for k, v in exc.details.items() if k != "answer_lost"}
    if isinstance(exc, ProviderRetryable):
        return type(exc)(reason, retry_after_s=exc.retry_after_s, answer_lost=True, **details)
    return type(exc)(reason, answer_lost=True, **details)
