"""LocalStack: the whole of vidpipe on one laptop, no AWS account, no API key.

    with LocalStack() as stack:
        stack.s3.put_object(Bucket=stack.bucket, Key="uploads/a.mp4", Body=data)
        job = stack.wait_for_job(stack.job_id_for_upload("uploads/a.mp4"))

moto runs in-process with Step Functions executing the real ASL; every
resource comes from template.yaml; Lambda invocations run the handlers
in-process; SQS pollers mirror Lambda's event source mapping; the provider
emulator serves real HTTP on 127.0.0.1; one clock drives the emulator's jobs
and the Wait states.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import boto3

from vidpipe_local.clock import Clock, ScaledClock
from vidpipe_local.stack.dynamodb_atomic import AtomicDynamoDB
from vidpipe_local.stack.lambdas import ACCOUNT_CONCURRENCY, InProcessLambdas
from vidpipe_local.stack.pollers import SqsPollers
from vidpipe_local.stack.resources import BuiltStack, ResourceBuilder
from vidpipe_local.stack.sfn_limits import StepFunctionsLimits
from vidpipe_local.stack.sfn_requests import StepFunctionsRequestLimits
from vidpipe_local.stack.sfn_sync import SfnSyncIntegration
from vidpipe_local.stack.stop_execution import AbortOnStop
from vidpipe_local.stack.task_timeouts import LambdaTaskTimeouts
from vidpipe_local.stack.asl_parsing import ParsedDefinitions
from vidpipe_local.stack.template import REGION, Resolver, load_template
from vidpipe_local.stack.waits import ClockedWaits
from vidpipe_local.stack.callbacks import ClockedCallbacks
from vidpipe_local.stack.function_urls import FunctionUrlServer

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("s3", "sqs", "dynamodb", "stepfunctions", "lambda", "iam", "sns", "secretsmanager", "events")
TERMINAL_EXECUTION = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")

# Environment the local profile adds to every function (never set in the template).
LOCAL_FUNCTION_ENV = {
    "DOWNLOAD_ALLOW_HOSTS": "127.0.0.1",
    "DOWNLOAD_REQUIRE_HTTPS": "false",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_IDEMPOTENCY_DISABLED": "false",
}
# The local stack's callback signing secret (Standard Webhooks: whsec_ + base64). Local only:
# a deployment sets its own in the ProviderSecret.
LOCAL_CALLBACK_SIGNING_SECRET = "whsec_dmlkcGlwZS1sb2NhbC1jYWxsYmFjay1zZWNyZXQ="
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
}


@dataclass
class StackEndpoints:
    """What `vidpipe local up` publishes for other commands (and the user)."""

    aws_endpoint_url: str
    emulator_url: str
    stack_name: str
    bucket: str
    table: str
    jobs_queue_url: str
    analysis_state_machine_arn: str
    generation_state_machine_arn: str
    time_scale: float
    pid: int


def wait_until(check: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float,
               describe: Callable[[Any], str], first_s: float = 0.01, cap_s: float = 0.25) -> Any:
    """Call ``check`` until ``done(result)``; returns that result or raises TimeoutError
    with ``describe(last result)``.

    Pauses start short and grow, so a waiting test does not starve the
    execution threads it waits for.
    """
    deadline, pause = time.monotonic() + timeout_s, first_s
    while True:
        result = check()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{describe(result)} after {timeout_s:.0f}s")
        time.sleep(pause)
        pause = min(cap_s, pause * 1.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalStack:
    def __init__(
        self,
        root: Path = REPO_ROOT,
        stack_name: str = "vidpipe-local",
        clock: Clock | None = None,
        parameter_overrides: dict[str, Any] | None = None,
        emulator_options: dict[str, Any] | None = None,
        server_port: int | None = None,
        server_host: str = "127.0.0.1",  # where the AWS endpoint listens (docker: the bridge address)
        background_pollers: bool = False,
        quiet: bool = True,
        with_emulator: bool = True,
        provider_keys: dict[str, str] | None = None,
        account_concurrency: int = ACCOUNT_CONCURRENCY,
        webhooks: bool = False,  # [WEBHOOKS] a webhook secret for vidpipe and the emulator (docs/webhooks.md)
    ):
        self.root = Path(root)
        self.stack_name = stack_name
        self.clock = clock or ScaledClock(1.0)
        self.parameter_overrides = parameter_overrides or {}
        self.emulator_options = emulator_options or {}
        self.server_port = server_port
        self.server_host = server_host
        self.background_pollers = background_pollers
        self.quiet = quiet
        self.with_emulator = with_emulator
        self.provider_keys = provider_keys or {}
        self.lambdas = InProcessLambdas(self.clock, account_concurrency)
        self.sfn_limits = StepFunctionsLimits(self.clock)
        self.waits = ClockedWaits(self.clock, self.sfn_limits.execution_remaining)
        # [WEBHOOKS] task-token waits on the clock; virtual time stands still while anything is under way
        self.callbacks = ClockedCallbacks(self.clock, busy=self._busy)
        self.webhooks = webhooks
        self.webhook_secret: str | None = None
        self.function_urls: dict[str, FunctionUrlServer] = {}
        self.atomic_dynamodb = AtomicDynamoDB()
        self.abort_on_stop = AbortOnStop()
        self.parsed_definitions = ParsedDefinitions()
        self.sfn_sync = SfnSyncIntegration()  # startExecution.sync:2 (productions' shots)
        self.sfn_requests = StepFunctionsRequestLimits()  # StartExecution input, definition size
        self.task_timeouts = LambdaTaskTimeouts()  # a Lambda Task's TimeoutSeconds on the clock
        self._saved_env: dict[str, str | None] = {}
        self._mock = None
        self._server = None
        self.emulator = None
        self.built: BuiltStack | None = None
        self.pollers: SqsPollers | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        from moto import mock_aws

        self._set_env(FAKE_CREDENTIALS)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        try:
            self.parsed_definitions.patch()
            self.sfn_requests.patch()  # before the template's state machines are created
            self.clients = {s: boto3.client(s, region_name=REGION) for s in SERVICES}
            template = load_template(self.root / "template.yaml")
            params = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
            secret = "{}"
            if self.with_emulator:
                from vidpipe_local.emulator import Emulator

                self.emulator = Emulator(clock=self.clock, **self.emulator_options).start()
                params.update({"ChatBaseUrl": self.emulator.chat_base_url,
                               "VideoBaseUrl": self.emulator.video_base_url})
                secret = json.dumps({"chat_api_key": self.emulator.api_key, "video_api_key": self.emulator.api_key})
            params.update(self.parameter_overrides)
            # Callbacks are signed locally too (docs/completion-events.md): a fixed local-only secret.
            secret = json.dumps({"callback_signing_secret": LOCAL_CALLBACK_SIGNING_SECRET, **json.loads(secret)})
            if self.webhooks and self.emulator is not None:  # [WEBHOOKS] the providers' webhook signing secret
                from vidpipe_local.emulator.webhooks import new_secret

                self.webhook_secret = new_secret()
                secret = json.dumps({**json.loads(secret), "webhook_secret": self.webhook_secret})
            if self.provider_keys:
                secret = json.dumps({**json.loads(secret), **self.provider_keys})
            resolver = Resolver(stack_name=self.stack_name, parameters=params)
            self.built = ResourceBuilder(template, resolver, self.root, self.clients, self.lambdas).build(secret)
            self._set_env(self._function_environment())
            emulated = self.emulator is not None and params.get("ChatBaseUrl") == self.emulator.chat_base_url
            self._set_env({"CHAT_EMULATED": "true" if emulated else "false"})  # Settings.chat_emulated
            self.lambdas.patch()
            self.waits.patch()
            self.callbacks.patch()
            self.sfn_limits.patch()
            self.atomic_dynamodb.patch()
            self.abort_on_stop.patch()
            self.sfn_sync.patch()
            self.task_timeouts.patch()
            self._use_clock_in_handlers()
            self._serve_function_urls()
            self.pollers = SqsPollers(self.clients["sqs"], self.lambdas, self.built.sqs_mappings)
            if self.server_port is not None:
                from moto.server import ThreadedMotoServer

                logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per AWS call
                self._server = ThreadedMotoServer(ip_address=self.server_host, port=self.server_port, verbose=False)
                self._server.start()
            if self.background_pollers:
                self.pollers.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.pollers:
            self.pollers.stop()
        if self.built and self._mock:
            self._stop_running_executions()
        if self._server:
            self._server.stop()
            self._server = None
        for server in self.function_urls.values():
            server.stop()
        self.function_urls.clear()
        self.lambdas.unpatch()
        self.waits.unpatch()
        self.callbacks.unpatch()
        self.sfn_limits.unpatch()
        self.atomic_dynamodb.unpatch()
        self.abort_on_stop.unpatch()
        self.parsed_definitions.unpatch()
        self.sfn_sync.unpatch()
        self.sfn_requests.unpatch()
        self.task_timeouts.unpatch()
        if self.emulator:
            self.emulator.stop()
            self.emulator = None
        if self._mock:
            self._mock.stop()
            self._mock = None
        self._restore_env()
        import vidpipe.clock
        import vidpipe.runtime

        vidpipe.clock.reset()
        vidpipe.runtime.reset()

    def _stop_running_executions(self, grace_s: float = 5.0) -> None:
        """Executions run on moto's threads: let them end (briefly), then stop the
        rest before the mock goes away."""
        try:
            running = wait_until(self._running_executions, lambda arns: not arns, grace_s,
                                 lambda arns: f"{len(arns)} executions still running",
                                 first_s=0.05, cap_s=0.05)
        except TimeoutError:
            running = self._running_executions()
        for arn in running:
            try:
                self.sfn.stop_execution(executionArn=arn, cause="local stack stopped")
            except AttributeError:
                # moto race: the execution's worker has no environment yet; it
                # cannot outlive the mock anyway, since every call it makes fails.
                continue

    def _running_executions(self) -> list[str]:
        return [e["executionArn"] for m in self.sfn.list_state_machines()["stateMachines"]
                for e in self.sfn.list_executions(stateMachineArn=m["stateMachineArn"],
                                                  statusFilter="RUNNING")["executions"]]

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def _function_environment(self) -> dict[str, str]:
        """All functions share one process, so their environments are merged;
        a variable set to different values by two functions is a template bug."""
        merged: dict[str, str] = dict(LOCAL_FUNCTION_ENV)
        origin: dict[str, str] = {}
        for logical_id, env in self.built.function_env.items():
            for key, value in env.items():
                if key in origin and merged[key] != value:
                    raise ValueError(f"{key} differs between {origin[key]} and {logical_id} in template.yaml")
                merged[key], origin[key] = value, logical_id
        return merged

    def _serve_function_urls(self) -> None:
        """[WEBHOOKS] Every function with FunctionUrlConfig on 127.0.0.1 (function_urls.py); the
        emulator gets ProviderWebhookFunction's URL (one path per provider API) and the secret."""
        for logical_id in self.built.url_functions:
            fn = self.built.functions[logical_id]
            self.function_urls[logical_id] = FunctionUrlServer(
                self.lambdas, fn.function_name, self.built.att(logical_id, "Arn"),
                now_ms=lambda: int(self.clock.now() * 1000)).start()
        if self.webhook_secret and "ProviderWebhookFunction" in self.function_urls:
            url = self.function_url("ProviderWebhookFunction")
            self.emulator.webhooks.configure(urls={api: f"{url}/{api}" for api in ("openai", "generic")},
                                             secret=self.webhook_secret)

    def _busy(self) -> bool:
        """A Lambda invocation running or a webhook in flight (callbacks.py)."""
        emulator = self.emulator
        return self.lambdas.concurrency.running_total() > 0 or bool(emulator and emulator.webhooks.in_flight)

    def function_url(self, logical_id: str) -> str:
        """The local URL of a function with FunctionUrlConfig (``http://127.0.0.1:<port>``)."""
        return self.function_urls[logical_id].url

    def _use_clock_in_handlers(self) -> None:
        import vidpipe.clock
        import vidpipe.runtime
        from vidpipe.observability import logger

        # A handler's sleep counts against its invocation's timeout (lambdas.py).
        vidpipe.clock.use(self.clock.now, self.lambdas.sleep_for_handlers(self.clock.sleep),
                          real_time_scale=self.clock.real_time_scale)
        vidpipe.runtime.reset()
        logger.setLevel("WARNING" if self.quiet else "INFO")

    # ------------------------------------------------------------ names
    @property
    def s3(self):
        return self.clients["s3"]

    @property
    def sqs(self):
        return self.clients["sqs"]

    @property
    def ddb(self):
        return self.clients["dynamodb"]

    @property
    def sfn(self):
        return self.clients["stepfunctions"]

    @property
    def bucket(self) -> str:
        return self.built.ref("MediaBucket")

    @property
    def table(self) -> str:
        return self.built.ref("JobsTable")

    @property
    def jobs_queue_url(self) -> str:
        return self.built.ref("JobsQueue")

    @property
    def ingest_queue_url(self) -> str:
        return self.built.ref("IngestQueue")

    @property
    def analysis_arn(self) -> str:
        return self.built.ref("AnalysisStateMachine")

    @property
    def generation_arn(self) -> str:
        return self.built.ref("GenerationStateMachine")

    @property
    def production_arn(self) -> str:  # [PRODUCTION]
        return self.built.ref("ProductionStateMachine")

    def endpoints(self) -> StackEndpoints:
        return StackEndpoints(
            aws_endpoint_url=f"http://{self.server_host}:{self.server_port}" if self.server_port else "",
            emulator_url=self.emulator.url if self.emulator else "", stack_name=self.stack_name, bucket=self.bucket, table=self.table,
            jobs_queue_url=self.jobs_queue_url, analysis_state_machine_arn=self.analysis_arn,
            generation_state_machine_arn=self.generation_arn,
            time_scale=getattr(self.clock, "scale", 0.0), pid=os.getpid(),
        )

    # ------------------------------------------------------------ driving it
    def drain(self) -> int:
        """Deliver every queued message to its function (deterministic, no threads)."""
        return self.pollers.drain()

    def invoke(self, logical_id: str, event: Any) -> tuple[Any, bool]:
        """Invoke one function through moto's Lambda API (as `sam local invoke` would)."""
        fn = self.built.functions[logical_id]
        response = self.clients["lambda"].invoke(FunctionName=fn.function_name, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        return payload, "FunctionError" in response

    def executions(self, state_machine_arn: str | None = None) -> list[dict]:
        arns = [state_machine_arn] if state_machine_arn else [self.analysis_arn, self.generation_arn]
        out = []
        for arn in arns:
            out += self.sfn.list_executions(stateMachineArn=arn)["executions"]
        return out

    def wait_for_execution(self, execution_arn: str, timeout_s: float = 120.0) -> dict:
        """Block until a Step Functions execution ends (moto runs it on a thread)."""
        return wait_until(lambda: self.sfn.describe_execution(executionArn=execution_arn),
                          lambda desc: desc["status"] in TERMINAL_EXECUTION, timeout_s,
                          lambda desc: f"execution {execution_arn} still {desc['status']}")

    def wait_for_job(self, job_id: str, timeout_s: float = 120.0) -> dict:
        """Drain the queues, then wait for the job's execution and return the job record."""
        from vidpipe.jobs import TERMINAL, JobStore

        store = JobStore(self.table, client=self.ddb)

        def check() -> dict | None:
            if not self.background_pollers:
                self.drain()
            return store.get(job_id)

        return wait_until(check, lambda job: bool(job) and job.get("status") in TERMINAL, timeout_s,
                          lambda job: f"job {job_id} is {job and job.get('status')}")

    def history(self, execution_arn: str) -> list[dict]:
        return self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def save_endpoints(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self.endpoints()), indent=2))
