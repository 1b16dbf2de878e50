"""Make moto 5.2.5 run ``arn:aws:states:::states:startExecution.sync:2`` (a
Task that starts a child execution and waits for it) as Step Functions does.

moto ships LocalStack's StateTaskServiceSfn but not the parameter and
response normalisation around it (``StateTaskService._normalise_parameters``
and ``_normalise_response`` are no-ops in moto), so:

- the ASL's PascalCase parameters (``StateMachineArn``, ``Name``, ``Input``)
  reach boto3's ``start_execution`` unchanged and fail
  (States.Runtime "'StateMachineArn'");
- the responses keep boto3's camelCase (``executionArn``, ``status``,
  ``output``), where the integration's own resolver reads ``ExecutionArn``
  and a state machine reads ``$.Status`` / ``$.Output``.

- its ``_eval_sync`` also starts a task-token listener thread (moto gives
  every Sfn task a callback endpoint), which the local stack's clocked
  task-token wait (callbacks.py) would run for the Task's default
  TimeoutSeconds, advancing a VirtualClock as it goes. A ``.sync:2`` task
  has no task token: ``_eval_sync`` here only polls the child (every 50 ms
  of real time; moto's 0.5 s made a 47-shot production mostly waiting).

- ``SendTaskFailure`` drops its ``cause`` (moto's response handler passes
  only ``error`` to the backend), so a Catch sees an empty Cause: a
  rejected storyboard's reason would be lost. Passed through here.

This patch renames the keys both ways (first letter lowered on the way in,
raised on the way out, top level: what the integration's documented shapes
use). Gap recorded in docs/productions.md ("Local stack gaps").
"""

from __future__ import annotations

import time

from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.responses import StepFunctionResponse

from vidpipe_local.stack.patching import ClassPatches


SYNC_POLL_S = 0.05


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _upper_first(name: str) -> str:
    return name[:1].upper() + name[1:]


class SfnSyncIntegration(ClassPatches):
    def patch(self) -> None:
        owner = StateTaskServiceSfn
        original_params = owner._normalise_parameters
        original_task = owner._eval_service_task

        def _normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
            original_params(self, parameters, boto_service_name, service_action_name)
            for key in [k for k in parameters if k[:1].isupper()]:
                parameters[_lower_first(key)] = parameters.pop(key)

        def _normalise_response(self, response, boto_service_name=None, service_action_name=None):
            if isinstance(response, dict):
                for key in [k for k in response if k[:1].islower()]:
                    response[_upper_first(key)] = response.pop(key)

        def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
            original_task(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            _normalise_response(self, env.stack[-1])

        def _eval_sync(self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint):
            result = None
            while env.is_running():
                result = sync_resolver()
                if result:
                    break
                time.sleep(SYNC_POLL_S)
            return result

        self.replace(owner, "_eval_sync", _eval_sync)
        self.replace(owner, "_normalise_parameters", _normalise_parameters)
        self.replace(owner, "_normalise_response", _normalise_response)
        self.replace(owner, "_eval_service_task", _eval_service_task)

        def send_task_failure(self):
            self.stepfunction_backend.send_task_failure(self._get_param("taskToken"), error=self._get_param("error"),
                                                        cause=self._get_param("cause"))
            return EmptyResult()

        self.replace(StepFunctionResponse, "send_task_failure", send_task_failure)
