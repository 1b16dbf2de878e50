"""Amazon Bedrock async invoke (Nova Reel, Luma Ray): the clip is written to
S3 by Bedrock itself, at ``<output_s3_uri>/<invocation id>/output.mp4``.

The API reports no progress, no ETA and has no cancel. ``clientRequestToken``
makes a repeated submit return the first invocation instead of a second one.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from vidpipe import aws
from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.providers.video.base import Status, Submitted, VideoProvider, VideoRequest, estimated_eta_s

RETRYABLE_CODES = frozenset({"ThrottlingException", "ServiceUnavailableException", "InternalServerException",
                             "ModelNotReadyException", "ServiceQuotaExceededException"})
STATES = {"InProgress": "processing", "Completed": "completed", "Failed": "failed"}
NOVA_REEL, LUMA_RAY = "amazon.nova-reel", "luma.ray"
NOVA_SHOT_S = 6  # Nova Reel renders 6 s shots; longer clips are multi-shot, in whole shots
LUMA_ASPECTS = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4, "21:9": 21 / 9,
                "9:21": 9 / 21}


def model_input(request: VideoRequest) -> dict[str, Any]:
    """The model-specific modelInput document."""
    seconds = BedrockVideoProvider.billed_seconds(request.model, request.duration_s)
    if request.model.startswith(NOVA_REEL):
        config = {"durationSeconds": int(seconds), "fps": request.fps, "dimension": request.resolution}
        image = _nova_image(request)
        if seconds == NOVA_SHOT_S:
            params: dict[str, Any] = {"text": request.prompt}
            if image:
                params["images"] = [image]  # Nova Reel takes one, 1280x720, as the starting keyframe
            return {"taskType": "TEXT_VIDEO", "textToVideoParams": params, "videoGenerationConfig": config}
        if image:  # automated multi-shot takes no image: manual shots, the first starting from it
            shots = [{"text": request.prompt} for _ in range(int(seconds) // NOVA_SHOT_S)]
            shots[0]["image"] = image
            return {"taskType": "MULTI_SHOT_MANUAL", "multiShotManualParams": {"shots": shots},
                    "videoGenerationConfig": {k: v for k, v in config.items() if k != "durationSeconds"}}
        return {"taskType": "MULTI_SHOT_AUTOMATED", "multiShotAutomatedParams": {"text": request.prompt},
                "videoGenerationConfig": config}
    if request.reference_image is not None:
        raise ProviderError(f"bedrock: {request.model} takes no reference image here (Nova Reel does)")
    if request.model.startswith(LUMA_RAY):
        width, height = (int(side) for side in request.resolution.split("x"))
        aspect = min(LUMA_ASPECTS, key=lambda name: abs(LUMA_ASPECTS[name] - width / height))
        return {"prompt": request.prompt, "aspect_ratio": aspect, "loop": False,
                "duration": f"{seconds:.0f}s",
                "resolution": "540p" if min(width, height) <= 540 else "720p"}
    raise ProviderError(f"bedrock: no request shape for model {request.model!r} (Nova Reel or Luma Ray)")


def _nova_image(request: VideoRequest) -> dict[str, Any] | None:
    """Nova Reel's image shape: {format: png|jpeg, source: {bytes: base64}}."""
    if request.reference_image is None:
        return None
    fmt = "jpeg" if request.reference_image_type == "image/jpeg" else "png"
    return {"format": fmt, "source": {"bytes": base64.b64encode(request.reference_image).decode("ascii")}}


class BedrockVideoProvider(VideoProvider):
    name = "bedrock"

    @classmethod
    def billed_seconds(cls, model: str, duration_s: float) -> float:
        if model.startswith(NOVA_REEL):
            return float(max(1, math.ceil(duration_s / NOVA_SHOT_S)) * NOVA_SHOT_S)
        if model.startswith(LUMA_RAY):
            return 5.0 if duration_s <= 5 else 9.0  # Ray 2 renders 5 s or 9 s clips
        return duration_s

    def __init__(self, client=None, on_attempt: Callable[[int], None] | None = None):
        self.client = client or aws.client("bedrock-runtime")
        self.on_attempt = on_attempt

    def submit(self, request: VideoRequest, idempotency_key: str) -> Submitted:
        if not request.output_s3_uri:
            raise ProviderError("bedrock: the request has no output S3 location")
        answer = self._invoke(self.client.start_async_invoke, modelId=request.model,
                              modelInput=model_input(request), clientRequestToken=idempotency_key,
                              outputDataConfig={"s3OutputDataConfig": {"s3Uri": request.output_s3_uri}})
        return Submitted(answer["invocationArn"], estimated_eta_s(request.duration_s))

    def status(self, provider_job_id: str) -> Status:
        answer = self._invoke(self.client.get_async_invoke, invocationArn=provider_job_id)
        state = STATES.get(answer.get("status", ""), "processing")  # unknown: still under way
        if state == "failed":
            return Status("failed", error=answer.get("failureMessage") or "no reason given")
        if state == "completed":
            folder = answer["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"].rstrip("/")
            return Status("completed", progress=1.0, s3_uri=f"{folder}/output.mp4")
        return Status("processing")

    def cancel(self, provider_job_id: str) -> None:
        return None

    def _invoke(self, operation: Callable[..., dict], **params) -> dict:
        if self.on_attempt:
            self.on_attempt(0)
        try:
            return operation(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            reason = f"bedrock {exc.operation_name}: {code}: {exc.response.get('Error', {}).get('Message', '')}"
            # botocore already retried throttling and 5xx in standard mode: what reaches here outlived that.
            if code in RETRYABLE_CODES:
                raise ProviderRetryable(reason.strip()) from exc
            raise ProviderError(reason.strip()) from exc
        except EndpointConnectionError as exc:
            raise ProviderRetryable(f"bedrock: {type(exc).__name__}") from exc
        except BotoCoreError as exc:  # sent, but the answer never arrived whole
            raise ProviderRetryable(f"bedrock: {type(exc).__name__}", answer_lost=True) from exc
