"""The ledger meter for the analysis flow's chat calls (chunks and summaries)."""

from __future__ import annotations

from vidpipe.accounting import Accounting, ChatCallMeter
from vidpipe.analysis.models import AnalyzeSpec


def chat_meter(accounting: Accounting, job_id: str, step: str, spec: AnalyzeSpec, *, input_tokens: int,
               max_tokens: int, images: int = 0) -> ChatCallMeter:
    """Meters every HTTP attempt of one chat call under its own client request id, so a
    retried step, a re-POST and a rejected answer each get an entry of their own.

    ``input_tokens`` is the prompt estimate (image and text rules): an attempt whose
    usage could not be read is recorded at it plus ``max_tokens``, unconfirmed.
    """
    return ChatCallMeter(accounting, job_id, step, spec.provider, spec.model, input_tokens=input_tokens,
                         max_tokens=max_tokens, images=images, expected_prompt_tokens=input_tokens)
