"""Analyze one chunk of frames with the multimodal chat model.

One request carries K frames (each labelled with its index and timestamp)
and asks for strict JSON: one object per frame. Every HTTP attempt is
metered into the ledger under its own client request id, rejected answers
and lost ones included, since the provider bills them too. A chunk already
analyzed (its result is in S3) is not sent again, so a retried or redriven
execution pays twice only for a chunk whose result was never saved, and then
the ledger shows both calls.

Escalation [ROUTING]: when the job's tier names an ``analysis_escalation``
model, a chunk whose answers all failed validation on the (cheap) analysis
model is asked once more on that model; its result says so
(``escalated_from``). The plan reserved for it (plan.py).
"""

from __future__ import annotations

from vidpipe.accounting import Accounting
from vidpipe.errors import ProviderError
from vidpipe.analysis import keys
from vidpipe.analysis.models import (
    AnalyzedFrame,
    AnalyzeEvent,
    AnalyzeResult,
    ChunkAnswer,
    ChunkResult,
    FrameRef,
    Manifest,
)
from vidpipe.analysis.ledger import chat_meter
from vidpipe.analysis.objects import get_bytes, get_model, get_model_if_exists, put_json
from vidpipe.providers.chat import ChatClient, image_part, text_part
from vidpipe.providers.image_tokens import family_of, image_tokens, text_tokens

CHUNK_PROMPT = (
    "These are frames sampled from one video, in time order. Each image follows its label "
    "'Frame <index> at <seconds>s'. For every frame give: index (as labelled), a one or two "
    "sentence description of what it shows, the subjects in focus, the actions under way, the "
    "setting, any legible text on screen (empty if none) and a few short lowercase tags. "
    "Describe what is visible; do not guess beyond it. Answer with JSON only."
)
FRAME_LABEL_TOKENS = 8  # "Frame 12 at 123.45s" plus the part's framing
OUTPUT_TOKENS_PER_FRAME = 120  # a typical answer object; used for estimates and max_tokens
STRUCTURED_ATTEMPTS = 3  # answers asked for in all before a malformed one becomes ProviderError
ESCALATION_ATTEMPTS = 1  # [ROUTING] a chunk escalated to the tier's next model is asked once


def frame_label(index: int, frame: FrameRef) -> str:
    return f"Frame {index} at {frame.timestamp_s:.2f}s"


def build_messages(frames: list[FrameRef], images: list[bytes], detail: str) -> list[dict]:
    content = [text_part(CHUNK_PROMPT)]
    for index, (frame, jpeg) in enumerate(zip(frames, images, strict=True)):
        content += [text_part(frame_label(index, frame)), image_part(jpeg, detail)]
    return [{"role": "user", "content": content}]


def expected_prompt_tokens(model: str, frames: list[FrameRef], detail: str) -> int:
    family = family_of(model)
    images = sum(image_tokens(family, f.width, f.height, detail) for f in frames)
    return images + len(frames) * FRAME_LABEL_TOKENS + text_tokens(CHUNK_PROMPT)


def require_every_frame(count: int):
    """The answer must describe each labelled frame exactly once."""

    def check(answer: ChunkAnswer) -> None:
        indices = sorted(f.index for f in answer.frames)
        if indices != list(range(count)):
            raise ValueError(f"expected frame indices 0..{count - 1}, got {indices}")

    return check


def analyze_chunk(event: AnalyzeEvent, s3, bucket: str, chat: ChatClient, accounting: Accounting) -> AnalyzeResult:
    manifest = get_model(s3, bucket, event.manifest_key, Manifest)
    segment = manifest.segment.index
    result_key = keys.chunk_key(event.job_id, segment, event.chunk)
    done = get_model_if_exists(s3, bucket, result_key, ChunkResult)
    if done is not None:
        return AnalyzeResult(chunk_key=result_key, frames=len(done.frames), input_tokens=done.input_tokens,
                             output_tokens=done.output_tokens, reused=True)

    spec = event.analyze
    frames = manifest.chunk(event.chunk)
    images = [get_bytes(s3, bucket, f.key) for f in frames]  # K small JPEGs: a few hundred KB at most
    messages = build_messages(frames, images, spec.detail)

    def ask(spec, attempts: int):
        expected = expected_prompt_tokens(spec.model, frames, spec.detail)
        max_tokens = 2 * OUTPUT_TOKENS_PER_FRAME * len(frames)
        meter = chat_meter(accounting, event.job_id, "analyze", spec, input_tokens=expected, max_tokens=max_tokens,
                           images=len(frames))
        return chat.complete_structured(
            spec.model, messages, ChunkAnswer, name="frame_analysis",
            max_attempts=attempts, max_tokens=max_tokens, meter=meter,
            on_attempt=lambda _attempt: accounting.acquire(spec.provider, expected + max_tokens),
            check=require_every_frame(len(frames)),
        )

    escalated_from = None
    try:
        answer, result = ask(spec, STRUCTURED_ATTEMPTS)
    except ProviderError as exc:
        if not (exc.details.get("invalid_answer") and spec.escalation_model
                and spec.escalation_model != spec.model):
            raise
        escalated_from, spec = spec.model, spec.using(spec.escalation_model)
        answer, result = ask(spec, ESCALATION_ATTEMPTS)
    by_index = {f.index: f for f in answer.frames}
    chunk = ChunkResult(
        job_id=event.job_id, segment=segment, chunk=event.chunk, model=spec.model, escalated_from=escalated_from,
        frames=[AnalyzedFrame(**by_index[i].model_dump(), segment=segment, n=f.n,
                              timestamp_s=f.timestamp_s, key=f.key)
                for i, f in enumerate(frames)],
        input_tokens=result.usage.input_tokens, output_tokens=result.usage.output_tokens,
        request_id=result.request_id,
    )
    put_json(s3, bucket, result_key, chunk)
    return AnalyzeResult(chunk_key=result_key, frames=len(frames), input_tokens=chunk.input_tokens,
                         output_tokens=chunk.output_tokens, reused=False)
