"""Powertools singletons: one Logger, Metrics and Tracer for the whole package.

The logger never writes a secret (vidpipe.redaction):
- ``RedactingFilter`` on the ``vidpipe`` logger rewrites each record before any
  handler sees it (message, ``extra`` fields, exception text), so captured or
  propagated records are clean too;
- ``RedactingFormatter`` redacts the finished JSON line, including the keys
  Powertools appends (correlation id, Lambda context) and the stack trace;
- ``inject_lambda_context`` redacts an exception escaping a handler before
  Lambda turns it into ``errorMessage`` (class kept, so Retry/Catch still match).

Every handler is wrapped by ``lambda_handler``: logger context, the X-Ray
tracer (cold-start annotation, job id annotation via ``annotate_job``, no
response bodies in traces), Powertools metrics flushed after each invocation
(and ColdStart), and the count of user errors a handler raised (``UserErrors``),
which the template's per-function error alarms subtract from Lambda's Errors.
Job outcomes are counted by failure class (``emit_job_outcome``): only
``failure_class=system`` is alarmed, so a rejected upload or an exceeded
budget never pages anyone (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import warnings
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from vidpipe.redaction import redact, redact_exception, redact_value

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Rewrites a record in place: message (with its args), extra fields, exception text."""

    def filter(self, record: logging.LogRecord) -> bool:  # idempotent: a record may pass two filters
        if isinstance(record.msg, str) or record.args:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # args that do not fit the format: keep both, never raise here
                message = f"{record.msg} {record.args!r}"
            record.msg, record.args = redact(message), ()
        else:  # Powertools logs dicts as structured messages
            record.msg = redact_value(record.msg)
        for name in [n for n in vars(record) if n not in _RECORD_ATTRIBUTES]:
            setattr(record, name, redact_value(getattr(record, name)))
        if record.exc_info and record.exc_info[1] is not None:
            redact_exception(record.exc_info[1])
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingFormatter(LambdaPowertoolsFormatter):
    def format(self, record: logging.LogRecord) -> str:  # noqa: A003
        return redact(super().format(record))

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return redact(super().formatException(ei))


class RedactingLogger(Logger):
    def inject_lambda_context(self, lambda_handler=None, **options):
        if lambda_handler is None:
            return functools.partial(self.inject_lambda_context, **options)

        @functools.wraps(lambda_handler)
        def redacting_handler(event, context, *args, **kwargs):
            try:
                return lambda_handler(event, context, *args, **kwargs)
            except Exception as exc:
                redact_exception(exc)  # the same object and traceback, without the secret in its text
                raise

        return super().inject_lambda_context(redacting_handler, **options)


_redacting_filter = RedactingFilter()

logger = RedactingLogger(service="vidpipe", logger_formatter=RedactingFormatter())
logger.addFilter(_redacting_filter)
# Records from other libraries (httpx, botocore) reach Lambda's own handler on the root logger.
for _handler in logging.getLogger().handlers:
    _handler.addFilter(_redacting_filter)
metrics = Metrics(namespace="vidpipe", service="vidpipe")
# Only botocore is patched (every AWS call a subsegment); provider calls get subsegments of
# their own (``provider_call``). patch_all would import every library the X-Ray SDK
# knows how to patch into every cold start.
tracer = Tracer(service="vidpipe", disabled=None, patch_modules=("botocore",))
# A warm invocation that emitted nothing through ``metrics`` is normal here (EMF metrics go
# out through ``emit_metric`` as they happen).
warnings.filterwarnings("ignore", message="No application metrics to publish")

# Errors the user caused: never a system failure, never paging.
USER_ERRORS = frozenset({"InputRejected", "BudgetExceeded"})


def emit_metric(name: str, unit, value: float, dimensions: dict | None = None, metadata: dict | None = None) -> None:
    """One EMF metric now (no handler decorator needed); silent when metrics are disabled,
    which Powertools' single_metric is not."""
    from aws_lambda_powertools.metrics import single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():
        return
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace,
                       default_dimensions={"service": metrics.service}) as metric:
        for key, val in (dimensions or {}).items():
            metric.add_dimension(name=key, value=val)
        for key, val in (metadata or {}).items():
            metric.add_metadata(key=key, value=val)


def failure_class(error: str | None) -> str:
    """``user`` for an error the user caused (bad input, a budget too small), else ``system``."""
    return "user" if error in USER_ERRORS else "system"


def emit_job_outcome(kind: str, status: str, error: str | None = None) -> None:
    """JobsSucceeded{kind} or JobsFailed{kind, failure_class}: what the dashboard and
    SystemFailuresAlarm (failure_class=system only) read."""
    if status == "SUCCEEDED":
        emit_metric("JobsSucceeded", MetricUnit.Count, 1, dimensions={"kind": kind})
    elif status == "PARTIAL":  # delivered with gaps (a production's failed shots): not a job failure
        emit_metric("JobsPartial", MetricUnit.Count, 1, dimensions={"kind": kind})
    else:
        emit_metric("JobsFailed", MetricUnit.Count, 1, dimensions={"kind": kind, "failure_class": failure_class(error)},
                    metadata={"error": error or "Unknown"})


def annotate_job(job_id: str | None) -> None:
    """The job id on every log line (correlation id) and on the trace (searchable annotation)."""
    logger.set_correlation_id(job_id)
    if job_id:
        tracer.put_annotation(key="job_id", value=job_id)


def lambda_handler(handler):
    """The one decorator of every handler (see the module docstring)."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    @functools.wraps(handler)
    def counting_user_errors(event, context, *args, **kwargs):
        try:
            return handler(event, context, *args, **kwargs)
        except Exception as exc:
            if type(exc).__name__ in USER_ERRORS:
                emit_metric("UserErrors", MetricUnit.Count, 1,
                            dimensions={"FunctionName": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")},
                            metadata={"error": type(exc).__name__})
            raise

    # single_metric (the ColdStart metric) prints even when metrics are disabled (local stack).
    measured = metrics.log_metrics(counting_user_errors, capture_cold_start_metric=not is_metrics_disabled())
    return logger.inject_lambda_context(tracer.capture_lambda_handler(measured))


@contextlib.contextmanager
def provider_call(method: str, url: str, model: str | None = None):
    """One provider HTTP attempt (vidpipe.providers.http): an X-Ray subsegment annotated with
    the provider host, model and status, and the ProviderLatency / ProviderThrottled (429)
    metrics the dashboard shows. The caller reports the HTTP status through the function
    this yields; an attempt that raised is annotated ``status=error``."""
    host = urlsplit(url).hostname or "unknown"
    outcome: dict = {"status": "error"}
    started = time.perf_counter()
    segment = contextlib.nullcontext() if tracer.disabled else tracer.provider.in_subsegment(f"## provider {host}")
    with segment as subsegment:
        try:
            yield lambda status: outcome.update(status=status)
        finally:
            latency_ms = (time.perf_counter() - started) * 1000
            if subsegment is not None:
                for key, value in (("provider_host", host), ("model", model or "unknown"), ("method", method),
                                   ("status", str(outcome["status"]))):
                    subsegment.put_annotation(key, value)
            emit_metric("ProviderLatency", MetricUnit.Milliseconds, latency_ms, dimensions={"host": host},
                        metadata={"model": model, "status": outcome["status"]})
            if outcome["status"] == 429:
                emit_metric("ProviderThrottled", MetricUnit.Count, 1, dimensions={"host": host},
                            metadata={"model": model})
