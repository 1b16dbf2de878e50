"""OpenAI videos API (Sora): POST /v1/videos, GET /v1/videos/{id},
GET /v1/videos/{id}/content. It reports progress (0–100) but no ETA, and
offers no cancel (DELETE only removes finished videos).

With a reference image the submit is multipart/form-data: the same fields plus
the image as the file part ``input_reference``, at the requested ``size`` (the
API uses it as the first frame and wants it at the video's size)."""

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
        if request.reference_image is None:
            sent = {"json": body}
        else:  # the reference goes as a file part, input_reference, of a multipart/form-data body
            mime = request.reference_image_type or "image/png"
            name = "reference." + ("jpg" if mime == "image/jpeg" else mime.rsplit("/", 1)[-1])
            sent = {"data": body, "files": {"input_reference": (name, request.reference_image, mime)}}
        answer = self._call("POST", "/v1/videos", headers={"Idempotency-Key": idempotency_key}, **sent)
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

    # OpenAI's webhooks (video.completed / video.failed) carry only the video id: completed means
    # the content URL is ready; a failure's reason takes one status check.
    webhooks = True

    def announced(self, provider_job_id: str, announcement: dict) -> Status | None:
        if announcement.get("type") == "video.completed":
            video_id = quote(provider_job_id, safe="")
            return Status("completed", progress=1.0, download_url=f"{self.base_url}/v1/videos/{video_id}/content")
        return None
