"""The polling state carried through the Generation state machine as ``$.poll``.

Submit creates it, every status check returns an updated copy; the Wait
state reads ``wait_seconds`` and the Choice state reads ``state``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vidpipe.providers.video.base import VideoState


class PollState(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str
    provider_job_id: str
    submitted_at: float  # provider-clock epoch seconds
    deadline_at: float
    eta_s: float  # the ETA given at submission
    wait_seconds: int = Field(ge=1)
    attempt: int = Field(default=0, ge=0)  # status checks made
    state: VideoState = "queued"
    progress: float | None = None
    download_url: str | None = None
    s3_uri: str | None = None
    completed_at: float | None = None  # when a check first saw the clip ready
    status_errors: int = 0  # checks that met a transient provider error
    last_error: str | None = None
    # [ROUTING] Which of the job's video routes (vidpipe.routing.video_routes) this provider job runs
    # on, its model, and its base URL (None: Settings.video_base_url). A fallback moves to the next.
    route_index: int = Field(default=0, ge=0)
    model: str | None = None
    base_url: str | None = None
    # [WEBHOOKS] Completion webhooks (vidpipe.completion_webhooks, docs/webhooks.md): the job waits on a
    # task token for the provider's webhook (``webhooks``) at most ``await_s`` (the polling fallback),
    # and a verified webhook hands back this state with ``announced`` = {type, webhook_id, data}.
    webhooks: bool = False
    await_s: int | None = Field(default=None, ge=1)
    announced: dict | None = None
