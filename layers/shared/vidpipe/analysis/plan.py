"""Plan an analysis: segments, a frame budget, the frame size that is cheapest
in tokens, an upper-bound cost estimate, and the budget reservation for it.

The estimate is an upper bound on purpose: extraction never keeps more than
a segment's ``max_frames``, so what gets reserved covers what can be spent,
and settling at the end gives back the difference.

[ROUTING] With a ``tier`` the models come from the routing table (analysis,
summary, and the escalation model a chunk may be retried on once); the estimate
is the dearest of them, plus every chunk once more on the escalation model.
Without one, ``CHAT_MODEL`` analyses and summarises, as before tiers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal

from vidpipe.accounting import Accounting
from vidpipe.analysis.analyze import CHUNK_PROMPT, FRAME_LABEL_TOKENS, OUTPUT_TOKENS_PER_FRAME
from vidpipe.analysis.models import (
    AnalysisOptions,
    AnalyzeSpec,
    ChunkAnswer,
    Estimate,
    ExtractSpec,
    Plan,
    Segment,
    SummaryAnswer,
    VideoInfo,
)
from vidpipe.analysis.summarize import REDUCE_PROMPT, reduce_cost
from vidpipe.config import Settings
from vidpipe.providers.chat import strict_schema
from vidpipe.providers.image_tokens import cheapest_frame_size, family_of, image_tokens, text_tokens
from vidpipe.routing import chat_model, escalation_model

# (model, input_tokens, output_tokens) -> USD, from the spend price table.
PriceFn = Callable[[str, int, int], Decimal]

# A last segment shorter than this share of segment_seconds joins the one before.
MIN_TAIL_SHARE = 0.25


def split_segments(duration_s: float, segment_s: float, fps: float, max_frames: int) -> list[Segment]:
    """Consecutive [start, end) segments covering the video, each with its frame cap."""
    if duration_s <= 0:
        raise ValueError("duration must be positive")
    bounds = [0.0]
    while duration_s - bounds[-1] > segment_s:
        bounds.append(bounds[-1] + segment_s)
    if len(bounds) > 1 and duration_s - bounds[-1] < segment_s * MIN_TAIL_SHARE:
        bounds.pop()
    bounds.append(duration_s)
    return [
        Segment(index=i, start_s=round(start, 3), end_s=round(end, 3),
                max_frames=max(1, min(max_frames, math.ceil((end - start) * fps))))
        for i, (start, end) in enumerate(zip(bounds, bounds[1:]))
    ]


def estimate(segments: list[Segment], model: str, frame_size: tuple[int, int], detail: str,
             frames_per_chunk: int, price: PriceFn) -> Estimate:
    """Upper-bound tokens and cost: every planned frame analyzed, plus the reduce call."""
    family = family_of(model)
    frames = sum(s.max_frames for s in segments)
    chunks = sum(math.ceil(s.max_frames / frames_per_chunk) for s in segments)
    chunk_overhead = text_tokens(CHUNK_PROMPT) + text_tokens(json.dumps(strict_schema(ChunkAnswer)))
    analyze_in = (frames * (image_tokens(family, *frame_size, detail) + FRAME_LABEL_TOKENS)
                  + chunks * chunk_overhead)
    # At most one scene per analyzed frame.
    reduce_calls, reduce_in, reduce_out = reduce_cost(
        frames, text_tokens(REDUCE_PROMPT) + text_tokens(json.dumps(strict_schema(SummaryAnswer))))
    input_tokens = analyze_in + reduce_in
    output_tokens = frames * OUTPUT_TOKENS_PER_FRAME + reduce_out
    return Estimate(frames=frames, requests=chunks + reduce_calls, input_tokens=input_tokens,
                    output_tokens=output_tokens, cost_usd=price(model, input_tokens, output_tokens))


def plan_analysis(job_id: str, video: VideoInfo, options: AnalysisOptions, settings: Settings,
                  accounting: Accounting, price: PriceFn) -> Plan:
    """Choose segments and frames, estimate, and reserve (raises BudgetExceeded)."""
    model = options.model or chat_model(options.tier, "analysis", settings)
    summary_model = chat_model(options.tier, "summary", settings) if options.tier else model
    escalation = escalation_model(options.tier, settings)
    escalation = escalation if escalation != model else None
    fps = options.fps or settings.default_fps
    frames_per_chunk = options.frames_per_chunk or settings.frames_per_chunk
    frame_size, detail = cheapest_frame_size(family_of(model), video.width, video.height)
    segments = split_segments(video.duration_s, settings.segment_seconds, fps, settings.max_frames_per_segment)
    cost = estimate(segments, model, frame_size, detail, frames_per_chunk, price)
    if summary_model != model:  # the dearest of the two, for all of it: an upper bound
        other = estimate(segments, summary_model, frame_size, detail, frames_per_chunk, price)
        cost = cost if cost.cost_usd >= other.cost_usd else other
    if escalation:  # every chunk asked once more on the escalation model, at most
        again = estimate(segments, escalation, frame_size, detail, frames_per_chunk, price)
        cost = cost.model_copy(update={"cost_usd": cost.cost_usd + again.cost_usd,
                                       "requests": cost.requests + again.requests})
    reservation_id = accounting.reserve(job_id, cost.cost_usd, model, options.budget_usd)
    return Plan(
        reservation_id=reservation_id,
        extract=ExtractSpec(strategy=options.sampling or settings.default_sampling, fps=fps,
                            model_family=str(family_of(model)), frame_width=frame_size[0], frame_height=frame_size[1],
                            frames_per_chunk=frames_per_chunk),
        analyze=AnalyzeSpec(model=model, provider=str(family_of(model)), detail=detail,
                            summary_model=summary_model if summary_model != model else None,
                            escalation_model=escalation),
        segments=segments,
        estimate=cost,
    )
