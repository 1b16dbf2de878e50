"""OpenAI videos API (Sora): POST /v1/videos, GET /v1/videos/{id},
GET /v1/videos/{id}/content. It reports progress (0–100) but no ETA, and
offers no cancel (DELETE only removes finished videos)."""

from __future__ import annotations

import math
from urllib.parse import quote

from vidpipe.providers.video.base import (HttpVideoProvider, Status, Submitted, VideoRequest, error_text,
                                          estimated_eta_s, fraction, required_str)

STATES = {"queued": "queued", "in_progress": "processing", "completed": "completed", "failed": "failed"}


class OpenAIVideoProvider(HttpVideoProvider):
    name = "openai"

    @classmethod
    def billed_seconds(cls, model: str, duration_s: float) -> float:
        return float(math.ceil(duration_s))

    def submit(self, request: VideoRequest, idempotency_key: str) -> Submitted:
        # The API takes whole seconds as a string ("4", "8", "12") and the size as "WxH".
        body = {"model": request.model, "prompt": request.prompt,
                "seconds": str(math.ceil(request.duration_s)), "size": request.resolution}
        answer = self._call("POST", "/v1/videos", json=body, headers={"Idempotency-Key": idempotency_key})
        return Submitted(required_str(answer, "id", self.name), estimated_eta_s(request.duration_s))

    def status(self, provider_job_id: str) -> Status:
        video_id = quote(provider_job_id, safe="")
        answer = self._call("GET", f"/v1/videos/{video_id}")
        state = STATES.get(str(answer.get("status")), "processing")  # unknown: still under way
        progress = fraction(answer.get("progress"))
        if state == "failed":
            return Status("failed", progress=progress, error=error_text(answer.get("error")))
        if state == "completed":
            return Status("completed", progress=1.0, download_url=f"{self.base_url}/v1/videos/{video_id}/content")
        return Status(state, progress=progress)

    def cancel(self, provider_job_id: str) -> None:
        return None
