"""Error types that carry a decision: retry it, or record it and stop.

Step Functions Retry/Catch match on the exception's class name (Lambda reports
it as ``errorType``), so these names are part of the state machines' contract.

A reason is redacted when the error is made (see vidpipe.redaction): Lambda
reports ``str(exc)`` as the errorMessage that Step Functions keeps in the
execution history, so no later layer could take a leaked key back.
"""

from vidpipe.redaction import redact, redact_value


class VidpipeError(Exception):
    """Base class. ``reason`` is the one readable line recorded on the job."""

    def __init__(self, reason: str, **details):
        reason = redact(reason)
        super().__init__(reason)
        self.reason = reason
        self.details = redact_value(details)


class InputRejected(VidpipeError):
    """Bad input (corrupt video, malformed message, over a cap). Never retried."""


class BudgetExceeded(VidpipeError):
    """A reservation does not fit a budget scope. Never retried."""


class ProviderError(VidpipeError):
    """A provider answered in a way that retrying will not fix (4xx, bad shape)."""


class ProviderRetryable(VidpipeError):
    """A transient provider failure (429, 5xx, timeout) that outlived local retries."""

    def __init__(self, reason: str, retry_after_s: float | None = None, **details):
        super().__init__(reason, **details)
        self.retry_after_s = retry_after_s


class RateLimited(ProviderRetryable):
    """The shared token bucket is empty for longer than the caller may wait."""


class AwsTransient(VidpipeError):
    """An AWS call failed for a reason that passes (throttled, a 5xx, a transaction cancelled
    by throttling or conflicts) after the SDK's own retries. The state machines retry it."""


class DownloadRefused(VidpipeError):
    """An outbound download pointed somewhere it must not go (SSRF guard)."""


class OutputInvalid(VidpipeError):
    """A produced artifact (video, report) failed verification."""
