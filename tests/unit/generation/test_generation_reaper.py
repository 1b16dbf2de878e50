"""The scheduled sweep's two generation duties, on a moto table: reaping jobs whose
execution cannot finish them, and resolving watched provider jobs of terminal jobs."""

import json

import boto3
import pytest
from generation_fakes import FakeAccounting, ScriptedProvider
from moto import mock_aws

import vidpipe.clock
from vidpipe.accounting import reservation_id_for
from vidpipe.errors import ProviderRetryable
from vidpipe.generation.watch import Watch, WatchStore, resolve_watches
from vidpipe.jobs import JobStatus, JobStore
from vidpipe.providers.video import Status
from vidpipe.reaper import Deadlines, reap_jobs

TABLE = "jobs"
T0 = 1_795_305_600.0
ARN = "arn:aws:states:us-east-1:123456789012:execution:vidpipe-generation:job-1"


@pytest.fixture
def jobs(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    vidpipe.clock.use(lambda: T0, lambda _s: None)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}])
        yield JobStore(TABLE, client=ddb)
    vidpipe.clock.reset()


class Settling(FakeAccounting):
    def __init__(self):
        super().__init__()
        self.settled: list[tuple[str, str]] = []

    def settle(self, job_id, reservation_id):
        self.settled.append((job_id, reservation_id))
        return {"cost_usd": 0}


class Executions:
    """DescribeExecution / StopExecution / DescribeStateMachine of one execution."""

    def __init__(self, status: str, timeout_s: int = 10800):
        self.status, self.timeout_s = status, timeout_s
        self.stopped: list[str] = []

    def describe_execution(self, executionArn):
        return {"executionArn": executionArn, "status": self.status, "stateMachineArn": "sm"}

    def stop_execution(self, executionArn, error, cause):
        self.stopped.append(cause)
        self.status = "ABORTED"

    def describe_state_machine(self, stateMachineArn):
        return {"definition": json.dumps({"StartAt": "A", "TimeoutSeconds": self.timeout_s, "States": {}})}


def running_job(jobs: JobStore, job_id: str = "job-1") -> None:
    jobs.create(job_id, "generation", {"prompt": "x"})
    jobs.update(job_id, JobStatus.RUNNING, execution_arn=ARN)


def reap(jobs, sfn, accounting, now=T0 + 60):
    return reap_jobs(jobs, sfn, accounting, now=lambda: now, deadline_for=Deadlines(sfn, fallback_s=900))


def test_given_a_running_job_whose_execution_was_aborted_when_reaped_then_it_fails_and_its_reservation_settles(jobs):
    running_job(jobs)
    accounting = Settling()

    [reaped] = reap(jobs, Executions("ABORTED"), accounting)

    job = jobs.get("job-1")
    assert job["status"] == "FAILED"
    assert job["error"] == {"error": "ExecutionEnded",
                            "reason": "the job's execution ended ABORTED before it finalized the job"}
    assert reaped["job_id"] == "job-1"
    assert accounting.settled == [("job-1", reservation_id_for("job-1"))]
    assert jobs.running() == []


def test_given_a_running_job_within_its_deadline_when_reaped_then_it_is_left_alone(jobs):
    running_job(jobs)
    sfn, accounting = Executions("RUNNING"), Settling()

    assert reap(jobs, sfn, accounting, now=T0 + 10800) == []
    assert jobs.get("job-1")["status"] == "RUNNING" and sfn.stopped == [] and accounting.settled == []


def test_given_a_running_job_past_its_state_machines_timeout_when_reaped_then_it_is_stopped_and_failed(jobs):
    running_job(jobs)
    sfn, accounting = Executions("RUNNING", timeout_s=7200), Settling()

    reap(jobs, sfn, accounting, now=T0 + 7201)

    job = jobs.get("job-1")
    assert job["error"]["error"] == "DeadlineExceeded"
    assert job["error"]["reason"] == ("the job was still running 7201 s after it started, past its state "
                                      "machine's 7200 s deadline; the execution was stopped")
    assert sfn.stopped == [job["error"]["reason"]] and accounting.settled == [("job-1", reservation_id_for("job-1"))]


def test_given_a_job_finalized_normally_when_reaped_then_only_its_index_entry_goes(jobs):
    running_job(jobs)
    jobs.update("job-1", JobStatus.SUCCEEDED)
    assert jobs.running() == []  # a terminal update takes it out of the index

    jobs._index_running("job-1", ARN)  # as if that delete had been lost
    accounting = Settling()
    assert reap(jobs, Executions("SUCCEEDED"), accounting) == []
    assert jobs.get("job-1")["status"] == "SUCCEEDED" and accounting.settled == [] and jobs.running() == []


# ------------------------------------------------------------------ watched provider jobs

def watch(job_id: str = "job-1", submitted_at: float = T0) -> Watch:
    return Watch(job_id=job_id, provider_job_id="pj-1", provider="generic", model="vidgen-1", seconds=4.0,
                 resolution="640x360", fps=24, idempotency_key="key-1", submitted_at=submitted_at)


def resolve(jobs, provider, accounting, now=T0 + 600):
    store = WatchStore(TABLE, jobs.ddb)
    counts = resolve_watches(store, jobs, accounting, lambda _name: provider, now=lambda: now,
                             give_up_after_s=86_400)
    return counts, store


def failed_job_watching(jobs) -> None:
    running_job(jobs)
    jobs.update("job-1", JobStatus.FAILED, error={"error": "GenerationTimedOut", "reason": "timed out"})
    WatchStore(TABLE, jobs.ddb).add(watch())


def test_given_a_failed_job_whose_provider_job_completed_when_resolved_then_the_clip_is_recorded_and_the_job_says_so(
        jobs):
    failed_job_watching(jobs)
    accounting = FakeAccounting()

    counts, store = resolve(jobs, ScriptedProvider([Status("completed", download_url="https://x/v.mp4")]),
                            accounting)

    assert counts["recorded"] == 1 and store.pending() == []
    [call] = accounting.calls
    assert (call.call_key, call.clip_seconds, call.resolution, call.fps, call.confirmed) == \
        ("pj-1", 4.0, "640x360", 24, True)
    job = jobs.get("job-1")
    assert job["status"] == "FAILED" and job["provider_job"]["outcome"] == "recorded"


def test_given_a_job_still_running_when_resolving_then_its_watch_is_left_to_the_state_machine(jobs):
    running_job(jobs)
    WatchStore(TABLE, jobs.ddb).add(watch())
    provider = ScriptedProvider([Status("completed", download_url="https://x/v.mp4")])

    counts, store = resolve(jobs, provider, FakeAccounting())

    assert provider.checks == 0 and len(store.pending()) == 1 and counts["recorded"] == 0


def test_given_a_provider_job_still_processing_when_resolved_then_it_is_cancelled_and_forgotten(jobs):
    failed_job_watching(jobs)
    provider, accounting = ScriptedProvider([Status("processing")]), FakeAccounting()

    counts, store = resolve(jobs, provider, accounting)

    assert provider.cancelled == ["pj-1"] and counts["ended"] == 1
    assert store.pending() == [] and accounting.calls == []


def test_given_a_provider_that_never_says_when_given_up_then_an_unconfirmed_entry_at_the_requested_seconds(jobs):
    failed_job_watching(jobs)
    provider, accounting = ScriptedProvider([ProviderRetryable("HTTP 503")]), FakeAccounting()

    counts, store = resolve(jobs, provider, accounting, now=T0 + 86_401)

    [call] = accounting.calls
    assert counts["given_up"] == 1 and (call.clip_seconds, call.confirmed) == (4.0, False)
    assert store.pending() == []


def test_given_a_watch_whose_job_record_is_gone_when_resolved_then_the_clip_is_recorded_and_nothing_is_annotated(jobs):
    WatchStore(TABLE, jobs.ddb).add(watch())  # no job record: expired, or never written (a sample event's job)
    accounting = FakeAccounting()

    counts, store = resolve(jobs, ScriptedProvider([Status("completed", download_url="https://x/v.mp4")]), accounting)

    assert counts["recorded"] == 1 and store.pending() == [] and len(accounting.calls) == 1
    assert jobs.get("job-1") is None
