"""The two async video wire shapes over one job store.

Generic REST::

    POST /v1/video/generate                 {prompt, model, mode, duration_s, fps, resolution "WxH",
                                             image (base64, optional), image_type}
    GET  /v1/video/generations/{id}         {id, status, progress 0..1, eta_seconds, video_url, error, ...}
    POST /v1/video/generations/{id}/cancel  (or DELETE /v1/video/generations/{id})
    GET  {video_url}                        mp4; a pre-signed-style URL outside /v1 (token, no bearer key)

OpenAI videos API::

    POST   /v1/videos                       JSON or multipart {model, prompt, seconds, size "WxH",
                                            input_reference (file part, optional, at the video's size)}
    GET    /v1/videos                       {"object": "list", data, first_id, last_id, has_more};
                                            query limit (1..100, default 20), after (a video id), order (asc|desc, default desc)
    GET    /v1/videos/{id}                  video object, status queued|in_progress|completed|failed
    GET    /v1/videos/{id}/content          mp4 (bearer key); ?variant=thumbnail|spritesheet: a JPEG (video_previews.py)
    DELETE /v1/videos/{id}                  cancels (if not yet completed) and forgets the job

Both accept ``x_emulator_eta_s`` (body field) or an ``X-Emulator-Eta-S``
header to pick the job's ETA in emulator seconds, and an
``Idempotency-Key`` header (same key, same job). Every job created is handed
to the bill (bill.py), which charges it once it completes.

A reference image (generic ``image``, OpenAI ``input_reference``) becomes the
clip's first frame (videogen.py); the call record keeps its sha256, size in
bytes and pixels, mean colour and signature (``Call.reference_image``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import secrets
from collections.abc import Callable

import cv2
from werkzeug.wrappers import Request, Response

from vidpipe_local.emulator.bill import Bill
from vidpipe_local.emulator.calls import Call
from vidpipe_local.emulator.errors import ApiError
from vidpipe_local.emulator.faults import Fault
from vidpipe_local.emulator.prompt_digest import mentions
from vidpipe_local.emulator.responses import json_response
from vidpipe_local.emulator.video_jobs import CANCELLED_ERROR, Job, JobState, JobStore, new_job_id
from vidpipe_local.emulator.video_previews import VARIANTS, spritesheet_jpeg, thumbnail_jpeg
from vidpipe_local.emulator.pixels import ImageDecodeError, analyze
from vidpipe_local.emulator.videogen import MODES, VideoSpec, reference_rgb

MAX_DURATION_S = 120.0
MAX_FPS = 120.0
MAX_PIXELS = 1920 * 1080
OPENAI_FPS = 24.0
OPENAI_STATUS = {"processing": "in_progress"}
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100


class VideoApi:
    def __init__(self, jobs: JobStore, bill: Bill, default_eta_s: float, base_url: Callable[[], str],
                 provider: str | None = None):
        self.jobs = jobs
        self.bill = bill
        self.default_eta_s = default_eta_s
        self.base_url = base_url
        self.provider = provider  # the name its bill items carry (None: the root provider)

    # -- generic ------------------------------------------------------------

    def generic_submit(self, request: Request, body: dict, call: Call, now: float, fault: Fault | None) -> Response:
        prompt = _prompt(body)
        mode = body.get("mode") or _mode_from(prompt)
        if mode not in MODES:
            raise ApiError(400, f"mode must be one of {list(MODES)}", param="mode")
        width, height = _size(body.get("resolution", "1280x720"), "resolution")
        reference = _generic_image(body, call)
        spec = _checked(
            VideoSpec(
                prompt,
                mode,
                _number(body, "duration_s", 5.0),
                _number(body, "fps", 24.0),
                width,
                height,
                reference,
            )
        )
        job, created = self._submit(request, "generic", str(body.get("model") or "emulator-video"), spec, body, call, now, fault)
        return _submitted(self.generic_view(job, now), created)

    def generic_status(self, job_id: str, call: Call, now: float) -> Response:
        job = self._job("generic", job_id, call)
        return json_response(self.generic_view(job, now))

    def generic_cancel(self, job_id: str, call: Call, now: float) -> Response:
        job = self._job("generic", job_id, call)
        if job.state(now).status in ("queued", "processing"):
            job.cancelled_at = now
        return json_response(self.generic_view(job, now))

    def generic_download(self, request: Request, job_id: str, call: Call, now: float) -> Response:
        job = self._job("generic", job_id, call)
        if not secrets.compare_digest(request.args.get("token", ""), job.download_token):
            raise ApiError(403, "the download token does not match", type_="permission_error")
        return self._video(job, now)

    def generic_view(self, job: Job, now: float) -> dict:
        state = job.state(now)
        url = f"{self.base_url()}/files/videos/{job.id}.mp4?token={job.download_token}"
        return {
            "id": job.id,
            "object": "video.generation",
            "status": state.status,
            "progress": round(state.progress, 4),
            "eta_seconds": round(state.eta_s, 3),
            "video_url": url if state.status == "completed" else None,
            "error": state.error,
            "error_code": state.error_code,
            "model": job.model,
            "mode": job.spec.mode,
            "duration_s": job.spec.duration_s,
            "fps": job.spec.fps,
            "resolution": f"{job.spec.width}x{job.spec.height}",
            "created_at": job.created_at,
            "completed_at": state.completed_at,
        }

    # -- OpenAI videos API --------------------------------------------------

    def openai_submit(self, request: Request, body: dict, call: Call, now: float, fault: Fault | None) -> Response:
        prompt = _prompt(body)
        width, height = _size(body.get("size", "720x1280"), "size")
        reference = _openai_image(request, call, (width, height))
        spec = _checked(VideoSpec(prompt, _mode_from(prompt), _number(body, "seconds", 4.0), OPENAI_FPS, width, height,
                                  reference))
        job, created = self._submit(request, "openai", str(body.get("model") or "sora-2"), spec, body, call, now, fault)
        return _submitted(openai_view(job, job.state(now)), created)

    def openai_status(self, job_id: str, call: Call, now: float) -> Response:
        job = self._job("openai", job_id, call)
        return json_response(openai_view(job, job.state(now)))

    def openai_delete(self, job_id: str, call: Call, now: float) -> Response:
        job = self._job("openai", job_id, call)
        if job.state(now).status in ("queued", "processing"):
            job.cancelled_at = now  # never completes, so never billed
        self.jobs.delete("openai", job.id)
        return json_response({"id": job.id, "object": "video.deleted", "deleted": True})

    def openai_list(self, request: Request, now: float) -> Response:
        limit = _limit(request.args.get("limit"))
        order = request.args.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"order must be 'asc' or 'desc', not {order!r}", param="order")
        jobs = self.jobs.list("openai")
        if order == "desc":
            jobs.reverse()
        start = 0
        after = request.args.get("after")
        if after:
            ids = [job.id for job in jobs]
            if after not in ids:
                raise ApiError(400, f"after: no video {after!r} to list after", param="after")
            start = ids.index(after) + 1
        page = jobs[start : start + limit]
        return json_response({
            "object": "list",
            "data": [openai_view(job, job.state(now)) for job in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": start + limit < len(jobs),
        })

    def openai_content(self, request: Request, job_id: str, call: Call, now: float) -> Response:
        job = self._job("openai", job_id, call)
        variant = request.args.get("variant", "video")
        if variant not in VARIANTS:
            raise ApiError(400, f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}", param="variant")
        if variant == "video":
            return self._video(job, now)
        _require_completed(job, now)
        image = thumbnail_jpeg(job.spec) if variant == "thumbnail" else spritesheet_jpeg(job.spec)
        return Response(image, mimetype="image/jpeg")

    # -- shared -------------------------------------------------------------

    def _submit(
        self, request: Request, api: str, model: str, spec: VideoSpec, body: dict, call: Call, now: float, fault: Fault | None
    ) -> tuple[Job, bool]:
        raw_eta = request.headers.get("X-Emulator-Eta-S", body.get("x_emulator_eta_s", self.default_eta_s))
        try:
            eta_s = float(raw_eta)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "x_emulator_eta_s must be a number of seconds", param="x_emulator_eta_s") from exc
        if not math.isfinite(eta_s) or eta_s < 0:
            raise ApiError(400, "x_emulator_eta_s must be >= 0", param="x_emulator_eta_s")
        job = Job(new_job_id(api), api, model, spec, created_at=now, eta_s=eta_s)
        if fault is not None:
            job.outcome = "stall" if fault.kind == "job_stall" else "fail"
            job.failure, job.failure_code = fault.message, fault.code
        idempotency_key = request.headers.get("Idempotency-Key")
        job, created = self.jobs.create(job, idempotency_key)
        if created:
            self.bill.watch_job(job, call.client_request_id, idempotency_key or None, self.provider)
        call.model, call.job_id = job.model, job.id
        return job, created

    def _job(self, api: str, job_id: str, call: Call) -> Job:
        call.job_id = job_id
        job = self.jobs.get(api, job_id)
        call.model = job.model
        return job

    @staticmethod
    def _video(job: Job, now: float) -> Response:
        _require_completed(job, now)
        return Response(job.video(), mimetype="video/mp4")


def _require_completed(job: Job, now: float) -> None:
    state = job.state(now)
    if state.status != "completed":
        raise ApiError(409, f"video {job.id} is {state.status}, not completed", code="video_not_ready")


def _limit(raw: str | None) -> int:
    if raw is None:
        return LIST_DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= LIST_MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {LIST_MAX_LIMIT}, not {raw!r}", param="limit")
    return limit


def openai_view(job: Job, state: JobState) -> dict:
    error = None
    if state.error:
        code = "cancelled" if state.error == CANCELLED_ERROR else state.error_code or "video_generation_failed"
        error = {"code": code, "message": state.error}
    seconds = job.spec.duration_s
    return {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": OPENAI_STATUS.get(state.status, state.status),
        "progress": int(state.progress * 100),
        "created_at": int(job.created_at),
        "completed_at": int(state.completed_at) if state.completed_at is not None else None,
        "expires_at": int(state.completed_at) + 86400 if state.completed_at is not None else None,
        "prompt": job.spec.prompt,
        "seconds": str(int(seconds)) if seconds == int(seconds) else str(seconds),
        "size": f"{job.spec.width}x{job.spec.height}",
        "quality": "standard",
        "remixed_from_video_id": None,
        "error": error,
    }


def _submitted(view: dict, created: bool) -> Response:
    response = json_response(view)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "prompt must be a non-empty string", param="prompt")
    return prompt


def _mode_from(prompt: str) -> str:
    return next((mode for mode in MODES[1:] if mentions(prompt, mode)), "normal")


def _number(body: dict, key: str, default: float) -> float:
    try:
        value = float(body.get(key, default))
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"{key} must be a number", param=key) from exc
    if not math.isfinite(value) or value <= 0:
        raise ApiError(400, f"{key} must be positive", param=key)
    return value


def _size(raw: object, key: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", str(raw))
    if not match:
        raise ApiError(400, f"{key} must look like 1280x720", param=key)
    width, height = int(match[1]), int(match[2])
    # H.264 in yuv420p needs even sides.
    if width % 2 or height % 2 or min(width, height) < 16 or width * height > MAX_PIXELS:
        raise ApiError(400, f"{key} {raw} must have even sides, each >= 16, at most 1920x1080 pixels", param=key)
    return width, height


def _generic_image(body: dict, call: Call) -> bytes | None:
    """The generic shape's reference image: ``image`` (base64) and ``image_type``; any size (fitted)."""
    raw = body.get("image")
    if raw is None:
        return None
    try:
        data = base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "image must be base64", param="image") from exc
    _received_image(data, call, "image")
    return data


def _openai_image(request: Request, call: Call, size: tuple[int, int]) -> bytes | None:
    """OpenAI's ``input_reference`` file part; like the API, it must be the video's size."""
    part = request.files.get("input_reference")
    if part is None:
        return None
    data = part.read()
    width, height = _received_image(data, call, "input_reference")
    if (width, height) != size:
        raise ApiError(400, f"input_reference is {width}x{height}; it must match the requested size "
                       f"{size[0]}x{size[1]}", param="input_reference")
    return data


def _received_image(data: bytes, call: Call, param: str) -> tuple[int, int]:
    """Decode the image (400 if it is not one) and record what arrived on the call."""
    try:
        facts = analyze(data)
    except (ImageDecodeError, ValueError, cv2.error) as exc:
        raise ApiError(400, f"{param} is not an image the API can decode", param=param) from exc
    mean_rgb = [round(float(c), 1) for c in reference_rgb(data, 64, 64).reshape(-1, 3).mean(axis=0)]
    call.reference_image = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "width": facts.width,
                            "height": facts.height, "mean_rgb": mean_rgb, "signature": facts.signature}
    return facts.width, facts.height


def _checked(spec: VideoSpec) -> VideoSpec:
    if spec.duration_s > MAX_DURATION_S:
        raise ApiError(400, f"duration must be at most {MAX_DURATION_S:g} s", param="duration_s")
    if spec.fps > MAX_FPS:
        raise ApiError(400, f"fps must be at most {MAX_FPS:g}", param="fps")
    return spec
