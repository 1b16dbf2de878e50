"""Step Functions request limits moto 5.2.5 does not check.

- StartExecution ``input``: at most 262,144 bytes (256 KiB) as UTF-8; the API reference gives the
  member's length constraint "Maximum length of 262144 ... expressed as bytes in UTF-8 encoding".
- CreateStateMachine / UpdateStateMachine ``definition``: at most 1,048,576 bytes (1 MB).

Both are refused the way AWS refuses a request member over its length constraint:
``ValidationException`` "1 validation error detected: Value at 'input' failed to satisfy
constraint: Member must have length less than or equal to 262144" (the value is left out:
both members are sensitive). The checks sit on moto's request handlers, so every caller
passes them: boto3, ``vidpipe`` code and the ``startExecution.sync:2`` child start (sfn_sync.py).

A Task whose Step Functions API call fails is reported as ``StepFunctions.<Code>Exception``
by moto, which doubles a code that already ends in "Exception"
(``StepFunctions.ValidationExceptionException``); named once here, as AWS's exception names are.
"""

from __future__ import annotations

from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.responses import StepFunctionResponse

from vidpipe_local.stack.patching import ClassPatches

EXECUTION_INPUT_LIMIT_BYTES = 262_144  # 256 KiB
DEFINITION_LIMIT_BYTES = 1_048_576  # 1 MB


def check_length(member: str, value: str | None, limit: int) -> None:
    if value is not None and len(value.encode("utf-8")) > limit:
        raise ValidationException(f"1 validation error detected: Value at '{member}' failed to satisfy "
                                  f"constraint: Member must have length less than or equal to {limit}")


class StepFunctionsRequestLimits(ClassPatches):
    def patch(self) -> None:
        def checked(action: str, member: str, limit: int):
            original = getattr(StepFunctionResponse, action)

            def handler(response: StepFunctionResponse):
                check_length(member, response._get_param(member), limit)
                return original(response)

            self.replace(StepFunctionResponse, action, handler)

        checked("start_execution", "input", EXECUTION_INPUT_LIMIT_BYTES)
        checked("create_state_machine", "definition", DEFINITION_LIMIT_BYTES)
        checked("update_state_machine", "definition", DEFINITION_LIMIT_BYTES)

        original_from_error = StateTaskServiceSfn._from_error

        def from_error(self, env, ex) -> FailureEvent:
            failure = original_from_error(self, env, ex)
            name = failure.error_name.error_name if failure.error_name else None
            if name and name.endswith("ExceptionException"):
                name = name[: -len("Exception")]
                failure.error_name = CustomErrorName(name)
                failure.event_details["taskFailedEventDetails"]["error"] = name
            return failure

        self.replace(StateTaskServiceSfn, "_from_error", from_error)
