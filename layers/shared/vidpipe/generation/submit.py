"""Submit the clip to the provider, once, and start the polling state."""

from __future__ import annotations

from collections.abc import Callable

from vidpipe.generation.enhance import Enhancement
from vidpipe.generation.messages import GenerateJob
from vidpipe.generation.polling import PollPolicy, next_wait_s
from vidpipe.generation.state import PollState
from vidpipe.jobs import stable_id
from vidpipe.providers.video import VideoProvider, VideoRequest


def idempotency_key(job_id: str) -> str:
    """Stable per job: a retried submit (Lambda or Step Functions retry) reuses it."""
    return stable_id("vidpipe-submit", job_id, length=40)


def submit_generation(job_id: str, request: GenerateJob, enhancement: Enhancement, provider: VideoProvider, *,
                      policy: PollPolicy, deadline_s: float, output_s3_uri: str,
                      now: Callable[[], float]) -> PollState:
    video = VideoRequest(prompt=enhancement.prompt, model=request.model, mode=request.mode,
                         duration_s=request.duration_s, fps=request.fps, resolution=request.resolution,
                         physics=enhancement.physics.set_values(), output_s3_uri=output_s3_uri)
    submitted = provider.submit(video, idempotency_key(job_id))
    submitted_at = now()
    return PollState(
        provider=provider.name, provider_job_id=submitted.provider_job_id, submitted_at=submitted_at,
        deadline_at=submitted_at + deadline_s, eta_s=submitted.eta_s,
        wait_seconds=next_wait_s(policy, elapsed_s=0.0, eta_s=submitted.eta_s, time_left_s=deadline_s),
    )
