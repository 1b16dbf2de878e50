"""CreateStateMachine validates a definition once per process.

moto 5.2.5 parses the whole ASL to validate it on every CreateStateMachine
(``StepFunctionsParserBackend._validate_definition``, ~0.3 s for each of our
state machines), and every test starts a stack that creates the same three.
A definition that validated once is valid again; anything else is validated
as before. Executions still parse their definition afresh (nothing shared
between them).
"""

from __future__ import annotations

import hashlib
import threading

from moto.stepfunctions.parser.models import StepFunctionsParserBackend


class ValidatedDefinitions:
    _valid: set[str] = set()  # sha256 of definitions that validated (per process)
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._original = None

    def patch(self) -> None:
        original = StepFunctionsParserBackend.__dict__["_validate_definition"].__func__
        self._original = original
        valid, lock = self._valid, self._lock

        def validate(definition: str) -> None:
            digest = hashlib.sha256(definition.encode()).hexdigest()
            with lock:
                if digest in valid:
                    return
            original(definition)  # raises InvalidDefinition, as moto does
            with lock:
                valid.add(digest)

        StepFunctionsParserBackend._validate_definition = staticmethod(validate)

    def unpatch(self) -> None:
        if self._original is not None:
            StepFunctionsParserBackend._validate_definition = staticmethod(self._original)
            self._original = None
