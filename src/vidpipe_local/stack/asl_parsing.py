"""Each state machine definition is parsed once per process.

moto 5.2.5 parses the whole ASL with ANTLR on every CreateStateMachine
(``StepFunctionsParserBackend._validate_definition``) and again at the start of
every execution (``ExecutionWorker._get_evaluation_entrypoint``): ~0.3 s of CPU
each for our state machines, paid hundreds of times in a test run. The parsed
program is reused instead. That is safe because moto's evaluation components
keep no per-execution state of their own: what an execution accumulates (retry
attempts, Map iterations, variables) lives in its ``Environment`` (for example
``MaxAttemptsDecl`` counts attempts in ``env.heap``). A definition that does not
parse raises as before and is not cached.
"""

from __future__ import annotations

import hashlib
import threading

from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from vidpipe_local.stack.patching import ClassPatches


class ParsedDefinitions(ClassPatches):
    _programs: dict[str, object] = {}  # sha256 of a definition → its parsed program (per process)
    _lock = threading.Lock()

    @classmethod
    def program(cls, definition: str):
        digest = hashlib.sha256(definition.encode()).hexdigest()
        with cls._lock:
            program = cls._programs.get(digest)
        if program is None:
            program = AmazonStateLanguageParser.parse(definition)[0]  # raises for a bad definition
            with cls._lock:
                cls._programs[digest] = program
        return program

    def patch(self) -> None:
        validate = StepFunctionsParserBackend.__dict__["_validate_definition"]
        original_validate = validate.__func__

        def validate_once(definition: str) -> None:
            # moto's validation is this parse; the parsed program is kept for the executions.
            try:
                ParsedDefinitions.program(definition)
            except Exception:
                original_validate(definition)  # raises InvalidDefinition, as moto words it
                raise

        def entrypoint(worker):
            return ParsedDefinitions.program(worker._evaluation_details.state_machine_details.definition)

        self.replace(StepFunctionsParserBackend, "_validate_definition", staticmethod(validate_once))
        self.replace(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)
