"""Ledger entries for chat calls, including the answers that were rejected."""

from __future__ import annotations

from collections.abc import Callable

from vidpipe.accounting import Accounting, ProviderCall
from vidpipe.analysis.models import AnalyzeSpec
from vidpipe.providers.chat import ChatResult


def call_recorder(accounting: Accounting, job_id: str, step: str, call_key: str, spec: AnalyzeSpec, *,
                  images: int = 0, expected_prompt_tokens: int | None = None
                  ) -> Callable[[ChatResult, bool], None]:
    """``on_result`` for ``ChatClient.complete_structured``.

    The accepted answer is recorded under ``call_key``, the same on every
    retry of the logical call, so the ledger counts it once. A rejected answer
    was a provider call of its own that cost tokens: it gets a key of its own,
    made from the provider's request id.
    """
    rejected = 0

    def record(result: ChatResult, accepted: bool) -> None:
        nonlocal rejected
        key = call_key
        if not accepted:
            rejected += 1
            key = f"{call_key}-rejected-{result.request_id or rejected}"
        accounting.record_call(ProviderCall(
            job_id=job_id, step=step, call_key=key, provider=spec.provider, model=spec.model,
            input_tokens=result.usage.input_tokens, output_tokens=result.usage.output_tokens,
            images=images, latency_ms=result.latency_ms, request_id=result.request_id,
            expected_prompt_tokens=expected_prompt_tokens,
        ))

    return record
