"""A sanity check of the prompt tokens a provider reports against our estimate.

The estimate comes from the documented image-token rules
(``providers/image_tokens.py``) plus the text estimate. Two failures matter:

- images dropped: some gateways strip image parts (or route to a text-only
  model) and still answer, so the "analysis" never saw a frame. The tell is a
  report far below an estimate that images dominate.
- over-counted: the provider bills more than its own rules say (a resize we
  did not expect, a detail level ignored), so estimates and budgets run short.

A flagged call logs a warning and emits a ``UsageAnomaly`` metric; it is not
an error, since the call has been made and paid for either way.
"""

from __future__ import annotations

from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit

from vidpipe.observability import emit_metric, logger


class UsageVerdict(StrEnum):
    OK = "ok"
    IMAGES_DROPPED = "images_dropped"
    OVER_COUNTED = "over_counted"


def usage_verdict(expected_prompt_tokens: int, reported_prompt_tokens: int, images: int,
                  tolerance: float = 0.5) -> UsageVerdict:
    """The verdict of check_usage, without logging it (the report restates it)."""
    if images > 0 and reported_prompt_tokens < expected_prompt_tokens * (1 - tolerance):
        return UsageVerdict.IMAGES_DROPPED
    if reported_prompt_tokens > expected_prompt_tokens * (1 + tolerance):
        return UsageVerdict.OVER_COUNTED
    return UsageVerdict.OK


def check_usage(expected_prompt_tokens: int, reported_prompt_tokens: int, images: int, *,
                model: str, job_id: str | None = None, tolerance: float = 0.5) -> UsageVerdict:
    """Compare the reported prompt tokens with the estimate for a call that sent ``images``.

    Dropped images: a call with images reported less than ``1 - tolerance`` of the
    estimate. Frames dominate an analysis prompt (8 frames ≈ 2,000 tokens against
    ≈ 300 of text), so losing them shows; losing one small image among much
    text would not, and is within the text estimate's error anyway.
    Over-counted: more than ``1 + tolerance`` of the estimate. The text estimate
    (≈ 4 characters a token) is rough, hence the wide margin.
    """
    verdict = usage_verdict(expected_prompt_tokens, reported_prompt_tokens, images, tolerance)
    if verdict is UsageVerdict.OK:
        return verdict
    logger.warning(
        "provider usage disagrees with the image-token rules",
        extra={"verdict": str(verdict), "model": model, "job_id": job_id, "images": images,
               "expected_prompt_tokens": expected_prompt_tokens, "reported_prompt_tokens": reported_prompt_tokens},
    )
    emit_metric("UsageAnomaly", MetricUnit.Count, 1, dimensions={"verdict": str(verdict), "model": model})
    return verdict
