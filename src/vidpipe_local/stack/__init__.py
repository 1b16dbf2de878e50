"""The local AWS stack: moto in-process, built from template.yaml."""

from vidpipe_local.stack.stack import LocalStack, StackEndpoints

__all__ = ["LocalStack", "StackEndpoints"]
