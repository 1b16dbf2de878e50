"""Powertools singletons: one Logger, Metrics and Tracer for the whole package."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="vidpipe")
metrics = Metrics(namespace="vidpipe", service="vidpipe")
tracer = Tracer(service="vidpipe", disabled=None)
