"""What a step hands back to Step Functions when it cannot finish now.

Every handler runs its step ``handing_back(context)``: within the context's
deadline (``vidpipe.deadline``), and with its errors put in the form the
state machines act on.

- ``ProviderRetryable`` / ``RateLimited``: the error message starts with
  ``retry after <N> s: `` (N whole seconds, at least 1), the one place the
  state machine can read the wait from. Lambda reports only the error's class
  and message; a come-back loop splits the message of the Catch's Cause and
  waits N seconds before running the step again (docs/analysis.md,
  docs/generation.md). The class is kept, so Retry/Catch still match.
- A transient AWS failure that outlived botocore's retries (throttling, a 5xx,
  a transaction cancelled only by throttles or conflicts, a dropped
  connection) becomes ``AwsTransient``, which every Task's Retry names. Any
  other AWS error stays what it was (a permissions or validation problem is
  not fixed by retrying).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from vidpipe import deadline
from vidpipe.errors import AwsTransient, ProviderRetryable
from vidpipe.spend.ddb import error_code, transient_cancellation

RETRY_AFTER_PREFIX = "retry after {seconds} s: "
TRANSIENT_AWS_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "RequestThrottled", "SlowDown",
    "InternalServerError", "InternalError", "InternalFailure", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})
TRANSIENT_CONNECTION_ERRORS = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


def is_transient_aws_error(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_CONNECTION_ERRORS):
        return True
    if not isinstance(exc, ClientError):
        return False
    return error_code(exc) in TRANSIENT_AWS_CODES or transient_cancellation(exc)


def with_retry_after(exc: ProviderRetryable) -> ProviderRetryable:
    """The same error, its message prefixed with the whole seconds to wait (idempotent)."""
    seconds = deadline.retry_after_whole_s(exc.retry_after_s)
    if not exc.reason.startswith("retry after "):
        exc.reason = RETRY_AFTER_PREFIX.format(seconds=seconds) + exc.reason
        exc.args = (exc.reason, *exc.args[1:])
    exc.retry_after_s = float(seconds)
    return exc


def aws_transient(exc: BaseException) -> AwsTransient:
    if isinstance(exc, ClientError):
        operation = getattr(exc, "operation_name", "an AWS call")
        reasons = sorted({r.get("Code") for r in exc.response.get("CancellationReasons", [])} - {"None", None})
        why = f" ({', '.join(reasons)})" if reasons else ""
        return AwsTransient(f"{operation} failed: {error_code(exc)}{why}", code=error_code(exc))
    return AwsTransient(f"AWS call failed: {type(exc).__name__}")


@contextmanager
def handing_back(context: Any) -> Iterator[deadline.Deadline]:
    with deadline.within(context) as limit:
        try:
            yield limit
        except ProviderRetryable as exc:
            raise with_retry_after(exc)
        except (ClientError, *TRANSIENT_CONNECTION_ERRORS) as exc:
            if is_transient_aws_error(exc):
                raise aws_transient(exc) from exc
            raise
