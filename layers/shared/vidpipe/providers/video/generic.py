"""A generic async REST video API: submit → {id, status, eta_seconds};
status → {status, progress, video_url, error}; cancel. Paths are configurable.

Submit body (JSON)::

    {"model", "prompt", "mode", "duration_s", "fps", "resolution": "WxH", "physics": {...},
     "image": "<base64>", "image_type": "image/jpeg" | "image/png"}   # image fields only with a reference image

``image`` is the reference image (standard base64, no data: prefix) at the
requested resolution; the clip starts from it (docs/reference-images.md).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from vidpipe.providers.video.base import (HttpVideoProvider, Status, Submitted, VideoRequest, error_text,
                                          estimated_eta_s, fraction, required_str)

# Spellings seen across async video APIs, folded into the four common states.
STATES = {
    "queued": "queued", "pending": "queued", "submitted": "queued",
    "processing": "processing", "running": "processing", "in_progress": "processing",
    "completed": "completed", "succeeded": "completed", "success": "completed",
    "failed": "failed", "error": "failed", "cancelled": "failed", "canceled": "failed",
}


@dataclass(frozen=True)
class GenericPaths:
    submit: str = "/v1/video/generate"
    status: str = "/v1/video/generations/{id}"
    cancel: str = "/v1/video/generations/{id}/cancel"


class GenericVideoProvider(HttpVideoProvider):
    name = "generic"

    def __init__(self, base_url: str, api_key: str, *, paths: GenericPaths = GenericPaths(), **kwargs):
        super().__init__(base_url, api_key, **kwargs)
        self.paths = paths

    def submit(self, request: VideoRequest, idempotency_key: str) -> Submitted:
        body = {"model": request.model, "prompt": request.prompt, "mode": request.mode,
                "duration_s": request.duration_s, "fps": request.fps, "resolution": request.resolution,
                "physics": request.physics}
        if request.reference_image is not None:
            body |= {"image": base64.b64encode(request.reference_image).decode("ascii"),
                     "image_type": request.reference_image_type or "image/png"}
        answer = self._call("POST", self.paths.submit, json=body, headers={"Idempotency-Key": idempotency_key})
        eta = answer.get("eta_seconds")
        return Submitted(provider_job_id=required_str(answer, "id", self.name),
                         eta_s=float(eta) if _is_number(eta) and eta > 0 else estimated_eta_s(request.duration_s))

    def status(self, provider_job_id: str) -> Status:
        return self._status(self._call("GET", self._path(self.paths.status, provider_job_id)))

    def _status(self, answer: dict[str, Any]) -> Status:
        # A status we do not know is a job still under way: only "completed" is billed,
        # and the deadline bounds the wait.
        state = STATES.get(str(answer.get("status", "")).lower(), "processing")
        eta = answer.get("eta_seconds")
        common: dict[str, Any] = {"progress": fraction(answer.get("progress")),
                                  "eta_s": float(eta) if _is_number(eta) else None}
        if state == "failed":
            return Status("failed", error=error_text(answer.get("error")), **common)
        if state == "completed":
            return Status("completed", download_url=required_str(answer, "video_url", self.name), **common)
        return Status(state, **common)

    def cancel(self, provider_job_id: str) -> Status:
        """The answer is the job as the cancel left it: ``completed`` when it finished first."""
        return self._status(self._call("POST", self._path(self.paths.cancel, provider_job_id)))

    # The generic shape's webhooks (video.completed / video.failed) carry the job's status object
    # in ``data`` (status, video_url, error), so the webhook alone says where the clip is.
    webhooks = True

    def announced(self, provider_job_id: str, announcement: dict) -> Status | None:
        data = announcement.get("data") or {}
        expected = {"video.completed": "completed", "video.failed": "failed"}.get(announcement.get("type"))
        if expected is None or STATES.get(str(data.get("status", "")).lower()) != expected:
            return None
        if expected == "completed" and not (isinstance(data.get("video_url"), str) and data["video_url"]):
            return None
        return self._status(data)

    @staticmethod
    def _path(template: str, provider_job_id: str) -> str:
        return template.format(id=quote(provider_job_id, safe=""))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
