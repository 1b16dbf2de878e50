"""Powertools singletons: one Logger, Metrics and Tracer for the whole package."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="vidpipe")
metrics = Metrics(namespace="vidpipe", service="vidpipe")
tracer = Tracer(service="vidpipe", disabled=None)


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
