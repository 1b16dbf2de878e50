"""Run moto's Lambda invocations in-process, on the real handler code.

moto can only run Lambda code in Docker. We replace
``moto.awslambda.models.LambdaFunction._invoke_lambda`` (moto 5.2, pinned) so
that an invocation — from Step Functions, from our SQS pollers or from
``vidpipe invoke`` — imports functions/<dir>/app.py and calls its handler.
Errors are reported the way Lambda does (errorType = exception class name),
so the state machines' Retry/Catch behave as deployed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction


@dataclass
class LocalFunction:
    logical_id: str
    function_name: str
    code_dir: Path
    handler: str  # "app.handler"
    memory_mb: int = 512
    timeout_s: int = 60
    _callable: Callable | None = None

    def load(self) -> Callable:
        if self._callable is None:
            module_file, attr = self.handler.rsplit(".", 1)
            path = self.code_dir / f"{module_file.replace('.', '/')}.py"
            name = f"vidpipe_functions.{self.code_dir.name}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            self._callable = getattr(module, attr)
        return self._callable


class LambdaContext:
    """The attributes Powertools and handlers read from a Lambda context."""

    def __init__(self, fn: LocalFunction, arn: str):
        self.function_name = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = fn.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class InProcessLambdas:
    """Registry of local functions and the moto patch that calls them."""

    def __init__(self):
        self.functions: dict[str, LocalFunction] = {}
        self._original = None

    def register(self, fn: LocalFunction) -> None:
        self.functions[fn.function_name] = fn

    def by_logical_id(self, logical_id: str) -> LocalFunction:
        for fn in self.functions.values():
            if fn.logical_id == logical_id:
                return fn
        raise KeyError(f"no function {logical_id!r} in template.yaml")

    def invoke(self, function_name: str, event: Any, arn: str = "") -> tuple[Any, bool]:
        """Call a handler; returns (result or Lambda-style error payload, errored)."""
        fn = self.functions[function_name]
        handler = fn.load()
        try:
            result, errored = handler(event, LambdaContext(fn, arn)), False
        except Exception as exc:  # reported to the caller exactly like Lambda does
            result, errored = {
                "errorType": type(exc).__name__,
                "errorMessage": getattr(exc, "reason", None) or str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
            }, True
        return result, errored

    def patch(self) -> None:
        registry = self
        self._original = LambdaFunction._invoke_lambda

        def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            if self.function_name not in registry.functions:
                return registry._original(self, event)
            payload = json.loads(event) if isinstance(event, (str, bytes)) else (event or {})
            result, errored = registry.invoke(self.function_name, payload, self.function_arn)
            return json.dumps(result, default=str), errored, ""

        LambdaFunction._invoke_lambda = _invoke_lambda

    def unpatch(self) -> None:
        if self._original is not None:
            LambdaFunction._invoke_lambda = self._original
            self._original = None
