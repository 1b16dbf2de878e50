"""Scale runs on the local stack, at the template's defaults and with AWS's limits on
(docs/local-stack-limits.md): a one-hour video, then 50 generation jobs and 5
one-hour analyses submitted at once. A meter counts what each job would cost on
AWS — state transitions, Lambda invocations and their durations, S3 requests and
the bytes read of the upload — for docs/scale.md (bench/scale_costs.py turns the
figures into dollars and a deployment's wall time).

Marked ``scale``: ``make test`` leaves them out, ``make scale`` runs only them.
Set ``VIDPIPE_SCALE_FIGURES=<dir>`` to write each run's figures there as JSON.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest
from botocore.client import BaseClient
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

import vidpipe_local.stack.lambdas as local_lambdas
from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe.start_jobs import upload_job_id
from vidpipe_local import samples
from vidpipe_local.clock import ScaledClock, VirtualClock

pytestmark = [pytest.mark.integration, pytest.mark.scale]

STATE_LIMIT_BYTES = 256 * 1024
HISTORY_LIMIT = 25_000
RPM = 60  # the template's RateLimitRpm default
INTAKE = "(intake)"  # StartJobs invocations: their events name no job yet


# --- the meter ------------------------------------------------------------------------------------


@dataclass
class JobFigures:
    """What one job used, as AWS would bill it."""

    job_id: str
    invocations: Counter = field(default_factory=Counter)  # by function
    # Per invocation, by function: its stopwatch (clock seconds slept + real time here, capped at the
    # timeout: what the local stack enforces), the CPU seconds of the handler's thread, the clock
    # seconds it slept (rate-limit waits, backoff). On this shared machine the stopwatch also holds the
    # time a handler waited for a core, so a deployment's durations are modelled from CPU + sleeps.
    durations_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    slept_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    gb_seconds: float = 0.0  # stopwatch durations × MemorySize
    s3_requests: Counter = field(default_factory=Counter)  # by operation
    s3_bytes_got: int = 0  # every GetObject body, the upload's blocks included
    dynamodb_requests: int = 0
    upload_bytes_read: int = 0  # ProbeVideo's and ExtractFrames' ReadStats
    upload_gets: int = 0
    chunks_per_segment: list[int] = field(default_factory=list)  # ExtractFrames' results, in the order they ended
    frames_per_segment: list[int] = field(default_factory=list)  # the same order
    child_events: Counter = field(default_factory=Counter)  # the Distributed Map's child executions, by type
    largest_state_bytes: int = 0  # the largest state input or output seen (parent and children)
    history: Counter = field(default_factory=Counter)  # the execution's own history, by event type

    @property
    def history_events(self) -> int:
        return sum(self.history.values())

    @property
    def transitions(self) -> int:
        """Billed state transitions: every state entered, plus every retry of a Task."""
        entered = Counter()
        for events in (self.history, self.child_events):
            for kind, count in events.items():
                if kind.endswith("StateEntered"):
                    entered["states"] += count
                    if kind == "TaskStateEntered":
                        entered["tasks"] += count
                elif kind == "LambdaFunctionScheduled":
                    entered["scheduled"] += count
        return entered["states"] + max(0, entered["scheduled"] - entered["tasks"])

    def as_dict(self) -> dict:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        out.update(history_events=self.history_events, child_history_events=sum(self.child_events.values()),
                   transitions=self.transitions)
        return out


_caller = threading.local()  # set by the metered invoke, in the thread that runs the invocation's watch


class _MeteredInvocation(local_lambdas.Invocation):
    """An invocation that knows its job (the handler's thread reads it for S3 and DynamoDB calls)."""

    def __init__(self, fn, stopwatch):
        super().__init__(fn, stopwatch)
        self.job_id = getattr(_caller, "job_id", None) or INTAKE
        self.cpu_s = 0.0
        _caller.invocation = self


def _timed(handler):
    """The handler, charging its thread's CPU time to the invocation."""

    def timed(event, context):
        invocation, started = local_lambdas.current_invocation(), time.thread_time()
        try:
            return handler(event, context)
        finally:
            if isinstance(invocation, _MeteredInvocation):
                invocation.cpu_s = time.thread_time() - started

    return timed


class Meter:
    """Counts each job's AWS usage while the local stack runs it.

    - Lambda: every invocation the stack runs (Step Functions' attempts and the SQS pollers'), with the
      invocation's duration from its own stopwatch — clock seconds it slept (rate-limit waits, backoff)
      plus its real working time — capped at the function's timeout, × the template's MemorySize.
    - S3 and DynamoDB: every API call a handler's thread makes (botocore), by the invocation's job.
    - Step Functions: the execution's history, and the events of its Distributed Map's child
      executions (moto keeps those out of the parent's history: counted as they are added).
    Install after the stack started, uninstall before it stops (the stack patches botocore too).
    """

    def __init__(self, stack):
        self.stack = stack
        self.jobs: dict[str, JobFigures] = {}
        self._lock = threading.Lock()
        self._map_runs: dict[int, str] = {}  # id(event manager of a Distributed Map run) → job
        self._saved: list[tuple[object, str, object]] = []

    def job(self, job_id: str) -> JobFigures:
        with self._lock:
            return self.jobs.setdefault(job_id, JobFigures(job_id))

    def __enter__(self) -> Meter:
        meter, lambdas = self, self.stack.lambdas
        invoke, make_api_call = lambdas.invoke, BaseClient._make_api_call
        map_run, add_event = DistributedIterationComponent._map_run, EventManager.add_event
        load = local_lambdas.LocalFunction.load

        def timed_load(fn):
            return _timed(load(fn))

        def metered_invoke(function_name, event, arn=""):
            fn = lambdas.functions[function_name]
            _caller.job_id = event.get("job_id") if isinstance(event, dict) else None
            _caller.invocation = None
            result, errored = "not run", True
            try:
                result, errored = invoke(function_name, event, arn)
                return result, errored
            finally:
                invocation = _caller.invocation
                if invocation is not None:  # a throttled invocation never ran and is not billed
                    meter._invoked(invocation, min(invocation.stopwatch.elapsed(), fn.timeout_s), result, errored)

        def metered_api_call(client, operation, params):
            invocation = local_lambdas.current_invocation()
            response = make_api_call(client, operation, params)
            if isinstance(invocation, _MeteredInvocation):
                meter._api_call(invocation.job_id, client.meta.service_model.service_name, operation, response)
            return response

        def metered_map_run(component, env, eval_input):
            name = env.states.context_object.context_object_data["Execution"]["Name"]
            with meter._lock:
                meter._map_runs[id(env.event_manager)] = name
            return map_run(component, env, eval_input)

        def metered_add_event(manager, context, event_type, event_details=None, *args, **kwargs):
            job_id = meter._map_runs.get(id(manager))
            if job_id is not None:
                figures = meter.job(job_id)
                with meter._lock:
                    figures.child_events[str(event_type)] += 1
                    figures.largest_state_bytes = max(figures.largest_state_bytes, _state_bytes(event_details))
            return add_event(manager, context, event_type, event_details, *args, **kwargs)

        local_lambdas.Invocation, self._invocation_class = _MeteredInvocation, local_lambdas.Invocation
        lambdas.invoke = metered_invoke
        for owner, name, new in ((BaseClient, "_make_api_call", metered_api_call),
                                 (local_lambdas.LocalFunction, "load", timed_load),
                                 (DistributedIterationComponent, "_map_run", metered_map_run),
                                 (EventManager, "add_event", metered_add_event)):
            self._saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, new)
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()
        local_lambdas.Invocation = self._invocation_class
        del self.stack.lambdas.invoke  # the instance attribute: back to the class's method

    def _invoked(self, invocation, duration_s: float, result, errored: bool) -> None:
        fn, figures = invocation.fn, self.job(invocation.job_id)
        with self._lock:
            figures.invocations[fn.logical_id] += 1
            figures.durations_s[fn.logical_id].append(round(duration_s, 4))
            figures.cpu_s[fn.logical_id].append(round(invocation.cpu_s, 4))
            figures.slept_s[fn.logical_id].append(round(getattr(invocation.stopwatch, "slept", 0.0), 4))
            figures.gb_seconds += duration_s * fn.memory_mb / 1024
            if errored or not isinstance(result, dict):
                return
            read = result.get("read")
            if fn.logical_id in ("ProbeVideoFunction", "ExtractFramesFunction") and isinstance(read, dict):
                figures.upload_bytes_read += read["bytes_read"]
                figures.upload_gets += read["get_requests"]
            if fn.logical_id == "ExtractFramesFunction":
                figures.chunks_per_segment.append(len(result.get("chunks", [])))
                figures.frames_per_segment.append(result.get("frames", 0))

    def _api_call(self, job_id: str, service: str, operation: str, response: dict) -> None:
        figures = self.job(job_id)
        with self._lock:
            if service == "s3":
                figures.s3_requests[operation] += 1
                if operation == "GetObject":
                    figures.s3_bytes_got += int(response.get("ContentLength", 0))
            elif service == "dynamodb":
                figures.dynamodb_requests += 1

    def collect_histories(self, state_machine_arn: str) -> None:
        """Each execution's own history (paginated), under its job (the execution's name)."""
        sfn = self.stack.sfn
        for execution in self.stack.executions(state_machine_arn):
            figures, token = self.job(execution["name"]), None
            while True:
                page = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000,
                                                 **({"nextToken": token} if token else {}))
                for event in page["events"]:
                    figures.history[event["type"]] += 1
                    figures.largest_state_bytes = max(figures.largest_state_bytes, _state_bytes(event))
                token = page.get("nextToken")
                if not token:
                    break

    def write(self, name: str, extra: dict) -> None:
        """The figures as JSON under $VIDPIPE_SCALE_FIGURES (bench/scale_costs.py reads them)."""
        folder = os.environ.get("VIDPIPE_SCALE_FIGURES")
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        memory = {fn.logical_id: fn.memory_mb for fn in self.stack.lambdas.functions.values()}
        document = {"run": name, **extra, "memory_mb": memory,
                    "jobs": {job_id: figures.as_dict() for job_id, figures in self.jobs.items()}}
        (Path(folder) / f"{name}.json").write_text(json.dumps(document, indent=1, default=str))


def _plain(value):
    """Counters and defaultdicts as plain dicts (dataclasses.asdict turns a Counter's items into keys)."""
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, dict) else value


def _state_bytes(details) -> int:
    """The size of a state input or output carried by a history event (0 for other events)."""
    if not isinstance(details, dict):
        return 0
    entered = details.get("stateEnteredEventDetails") or {}
    exited = details.get("stateExitedEventDetails") or {}
    return max(len((entered.get("input") or "").encode()), len((exited.get("output") or "").encode()))


# --- helpers ----------------------------------------------------------------------------------------


def busiest_minute(times: list[float]) -> int:
    """The most requests any closed 60 s window holds."""
    times = sorted(times)
    return max((sum(1 for t in times if start <= t <= start + 60.0) for start in times), default=0)


def upload(stack, key: str, body: bytes) -> str:
    put = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
    return upload_job_id(stack.bucket, key, put["ETag"], {})


def send_generation(stack, index: int) -> str:
    body = json.dumps({"type": "generate", "prompt": f"a paper boat number {index} drifting down a gutter",
                       "duration_s": 1, "fps": 12, "resolution": "160x96"})
    stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
    return execution_name(parse_job_message(body))


def wait_for_jobs(stack, job_ids: list[str], timeout_s: float) -> dict[str, dict]:
    """Drain the queues until every job is terminal; returns the job records."""
    from vidpipe.jobs import TERMINAL, JobStore

    store, deadline, jobs = JobStore(stack.table, client=stack.ddb), time.monotonic() + timeout_s, {}
    while True:
        stack.drain()
        jobs = {job_id: store.get(job_id) for job_id in job_ids}
        waiting = [j for j, job in jobs.items() if not job or job.get("status") not in TERMINAL]
        if not waiting:
            return jobs
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(waiting)} of {len(job_ids)} jobs not done after {timeout_s:.0f}s: {waiting[:3]}")
        time.sleep(0.5)


def report(stack, job_id: str) -> dict:
    return json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=f"reports/{job_id}/report.json")["Body"].read())


def assert_within_aws_limits(stack, figures: JobFigures) -> None:
    assert figures.history_events < HISTORY_LIMIT
    assert sum(figures.child_events.values()) < HISTORY_LIMIT  # all children together: each child is far below
    assert 0 < figures.largest_state_bytes < STATE_LIMIT_BYTES
    assert stack.lambdas.timed_out == []


def assert_every_shot_reported(truth: samples.GroundTruth, found: dict) -> None:
    starts = [scene["start_s"] for scene in found["scenes"]]
    assert len(starts) == len(truth.shots)
    assert max(abs(s - shot.start_s) for s, shot in zip(starts, truth.shots, strict=True)) <= 1 / truth.fps + 1e-6


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hour(tmp_path_factory) -> tuple[samples.GroundTruth, bytes]:
    """One hour, 160×90 at 5 fps, a hard cut at 10 s and every 20 s after: 181 shots (~12 MB, ~20 s to write)."""
    path = tmp_path_factory.mktemp("scale") / "hour.mp4"
    truth = samples.hour_of_shots(path)
    return truth, path.read_bytes()


# --- the runs ---------------------------------------------------------------------------------------


def test_given_a_one_hour_video_at_the_template_defaults_when_analyzed_then_it_succeeds_within_aws_limits_and_reports_every_shot(
        make_stack, hour):
    truth, video = hour
    s = make_stack(clock=VirtualClock())
    started = time.monotonic()
    with Meter(s) as meter:
        job_id = upload(s, "uploads/one hour.mp4", video)
        job = wait_for_jobs(s, [job_id], timeout_s=600)[job_id]
        meter.collect_histories(s.analysis_arn)
    wall_s = time.monotonic() - started
    meter.write("one_hour", {"wall_s": wall_s, "upload_bytes": len(video), "shots": len(truth.shots),
                             "status": {job_id: job["status"]}, "spend": {job_id: job.get("spend")}})

    assert job["status"] == "SUCCEEDED", job.get("error")
    figures = meter.jobs[job_id]
    assert_within_aws_limits(s, figures)
    assert_every_shot_reported(truth, report(s, job_id))
    assert figures.invocations["ExtractFramesFunction"] == 60  # the template's 60 s segments
    assert 0 < figures.upload_bytes_read <= 2 * len(video)  # each byte of the upload read at most twice
    print(f"\none-hour analysis: {wall_s:.0f} s here; {figures.history_events} history events, "
          f"{figures.transitions} transitions, {sum(figures.invocations.values())} invocations, "
          f"{figures.gb_seconds:.0f} GB-s, upload read {figures.upload_bytes_read / len(video):.2f}×, "
          f"largest state {figures.largest_state_bytes} B")


def test_given_50_generations_and_5_one_hour_analyses_at_once_when_they_run_then_all_succeed_within_the_rate_limit(
        make_stack, hour):
    truth, video = hour
    # A ScaledClock: concurrent Lambdas wait side by side, as on AWS (a VirtualClock adds up their
    # waits, which sends requests late and bunches them at the provider). A real second of a handler's
    # work counts 0.1 s against its timeout: here ~100 handlers share one process's GIL and two cores,
    # on AWS each has its own CPU (at 1.0, Submit/CheckGeneration ran past their 120 s on a loaded machine).
    s = make_stack(clock=ScaledClock(10, real_time_scale=0.1))
    started = time.monotonic()
    with Meter(s) as meter:
        analyses = [upload(s, f"uploads/hour {i}.mp4", video) for i in range(5)]
        generations = [send_generation(s, i) for i in range(50)]
        jobs = wait_for_jobs(s, analyses + generations, timeout_s=1200)
        meter.collect_histories(s.analysis_arn)
        meter.collect_histories(s.generation_arn)
    wall_s = time.monotonic() - started
    calls = s.emulator.calls
    chat = [c.timestamp for c in calls if c.kind == "chat"]
    video_calls = [c.timestamp for c in calls if c.kind.startswith("video.")]  # submit, status and download
    busiest = {"chat": busiest_minute(chat), "video": busiest_minute(video_calls)}
    meter.write("concurrent", {
        "wall_s": wall_s, "upload_bytes": len(video), "analyses": analyses, "generations": generations,
        "status": {j: job["status"] for j, job in jobs.items()}, "busiest_minute": busiest,
        "provider_span_s": max(c.timestamp for c in calls) - min(c.timestamp for c in calls),
        "calls": {"chat": len(chat), "video": len(video_calls), "http_429": sum(1 for c in calls if c.status == 429)},
        "spend": {j: job.get("spend") for j, job in jobs.items()}})
    print(f"\n5 analyses + 50 generations: {wall_s:.0f} s here; busiest minute at the emulator: {busiest} "
          f"(limit {RPM} each)")

    assert {j: job.get("error") for j, job in jobs.items() if job["status"] != "SUCCEEDED"} == {}
    assert busiest["chat"] <= RPM and busiest["video"] <= RPM
    for job_id in analyses:
        assert_within_aws_limits(s, meter.jobs[job_id])
        assert_every_shot_reported(truth, report(s, job_id))
        assert meter.jobs[job_id].upload_bytes_read <= 2 * len(video)
    for job_id in generations:
        assert meter.jobs[job_id].history_events < HISTORY_LIMIT
        assert 0 < meter.jobs[job_id].largest_state_bytes < STATE_LIMIT_BYTES
