"""The Generation flow on the local stack: jobs queue → start_jobs → the real
generation ASL executed by moto → handlers in-process → the provider emulator
over HTTP, on a VirtualClock (provider minutes pass in milliseconds)."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from vidpipe.config import Settings
from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe.jobs import JobStore
from vidpipe_local.clock import VirtualClock

pytestmark = pytest.mark.integration

# Small clips keep the emulator's rendering fast.
CLIP = {"duration_s": 1, "fps": 12, "resolution": "160x96"}


def send(stack, **fields) -> str:
    body = json.dumps({"type": "generate", "prompt": "a glass marble bouncing on a wooden floor", **CLIP, **fields})
    stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
    return execution_name(parse_job_message(body))


def keys(stack, job_id: str) -> list[str]:
    listing = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"outputs/{job_id}/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def provider_jobs(stack) -> set[str]:
    """Provider jobs created: an idempotent replay answers with the job it already made."""
    return {call.job_id for call in stack.emulator.calls if call.kind == "video.submit" and call.status == 200}


@pytest.mark.parametrize("mode", ["normal", "slow_motion", "time_lapse", "hyperlapse"])
def test_given_a_message_per_mode_when_it_runs_then_a_verified_video_and_poster_are_stored(local_stack, mode):
    s = local_stack
    job_id = send(s, mode=mode, enhance_prompt=(mode == "slow_motion"), max_cost_usd=1)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert keys(s, job_id) == [f"outputs/{job_id}/poster.jpg", f"outputs/{job_id}/video.mp4"]
    assert job["outputs"]["verification"]["mismatches"] == []
    details = job["details"]
    assert details["polls"] >= 1 and details["provider_job_id"]
    assert details["enhancement"]["enhanced"] is (mode == "slow_motion")
    assert job["spend"]["clip_seconds"] == 1


def test_given_a_malformed_enhancement_when_it_runs_then_the_original_prompt_is_used_and_recorded(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("chat:malformed:times=always")
    job_id = send(s, enhance_prompt=True)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    enhancement = job["details"]["enhancement"]
    assert enhancement["enhanced"] is False
    assert enhancement["prompt"] == "a glass marble bouncing on a wooden floor"
    assert "malformed" in enhancement["fallback_reason"]


def test_given_the_chat_provider_is_down_when_enhancing_then_the_flow_falls_back_after_retries(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("chat:503:times=always,retry_after=1")
    job_id = send(s, enhance_prompt=True)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    enhancement = job["details"]["enhancement"]
    assert enhancement["enhanced"] is False
    assert enhancement["fallback_reason"] == ("prompt enhancement failed (ProviderRetryable); "
                                              "the original prompt was used")


def test_given_the_provider_fails_the_job_when_it_runs_then_the_job_fails_with_the_providers_reason(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:job_fail:message=content policy violation")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "ProviderError"
    assert "content policy violation" in job["error"]["reason"]
    assert keys(s, job_id) == []


def test_given_a_job_that_never_finishes_when_it_runs_then_the_deadline_cancels_and_times_out(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:job_stall")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "GenerationTimedOut"
    assert job["error"]["reason"].startswith("timed out")
    assert "cancelled at the provider" in job["error"]["reason"]
    assert any(call.kind == "video.cancel" for call in s.emulator.calls)
    checks = sum(1 for call in s.emulator.calls if call.kind == "video.status")
    assert 1 < checks <= Settings().poll_max_attempts


def test_given_a_429_storm_on_submit_and_status_when_it_runs_then_it_still_succeeds_once(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:429:times=3,retry_after=2")
    s.emulator.faults.add_spec("video.status:429:times=4,retry_after=20")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(provider_jobs(s)) == 1
    assert job["details"]["status_errors"] >= 1


def test_given_a_truncated_download_when_it_runs_then_no_object_is_left_in_s3(local_stack):
    s = local_stack
    s.emulator.faults.add_spec("video.download:truncate:times=always")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert "truncated" in job["error"]["reason"] or "interrupted" in job["error"]["reason"]
    assert keys(s, job_id) == []
    assert s.s3.list_multipart_uploads(Bucket=s.bucket).get("Uploads", []) == []


def test_given_a_download_url_on_a_private_address_when_it_runs_then_it_is_refused(local_stack, monkeypatch):
    import vidpipe.runtime

    s = local_stack
    monkeypatch.setenv("DOWNLOAD_ALLOW_HOSTS", "")  # the deployed configuration: 127.0.0.1 is private
    vidpipe.runtime.reset()
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "DownloadRefused"
    assert "127.0.0.1" in job["error"]["reason"]
    assert keys(s, job_id) == []


def test_given_a_duplicate_message_when_delivered_twice_then_one_provider_submission(local_stack):
    s = local_stack
    first = send(s, client_token="catalogue-1/item-1")
    second = send(s, client_token="catalogue-1/item-1")
    assert first == second

    job = s.wait_for_job(first)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(s.executions(s.generation_arn)) == 1
    assert len(provider_jobs(s)) == 1


def test_given_a_batch_with_one_poison_message_when_delivered_then_the_rest_succeed(local_stack):
    s = local_stack
    good = [send(s, prompt=f"scene {n}") for n in range(3)]
    poison = json.dumps({"type": "generate", "prompt": "x", "fps": 0, "physics": {"gravity_mps2": 99}})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=poison)

    jobs = [s.wait_for_job(job_id) for job_id in good]

    assert [job["status"] for job in jobs] == ["SUCCEEDED"] * 3
    rejected = [item for item in JobStore(s.table, client=s.ddb).ddb.scan(TableName=s.table)["Items"]
                if item.get("status", {}).get("S") == "REJECTED"]
    assert len(rejected) == 1
    reason = rejected[0]["error"]["M"]["reason"]["S"]
    assert "fps: Input should be greater than or equal to 1" in reason
    assert "physics.gravity_mps2: 99 is outside 0–30 m/s²" in reason


# ------------------------------------------------------------------ every cent recorded, every cap held

SWEEP_EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "sweep_reservations.json").read_text())
MIDNIGHT = 1_795_305_600.0  # 2026-11-22T00:00:00Z: a whole test fits in one budget day


def sweep(stack) -> dict:
    result, errored = stack.invoke("SweepReservationsFunction", SWEEP_EVENT)
    assert not errored, result
    return result


def ledger(stack, job_id: str):
    from vidpipe.spend.ledger import Ledger

    return Ledger(stack.table, stack.ddb).entries(job_id)


def all_entries(stack) -> list:
    items = stack.ddb.scan(TableName=stack.table)["Items"]
    jobs = {item["pk"]["S"].removeprefix("JOB#") for item in items
            if item["pk"]["S"].startswith("JOB#") and item["sk"]["S"].startswith("LEDGER#")}
    return [entry for job_id in sorted(jobs) for entry in ledger(stack, job_id)]


def spent_by_day(stack) -> dict[str, Decimal]:
    items = stack.ddb.query(TableName=stack.table, KeyConditionExpression="pk = :pk",
                            ExpressionAttributeValues={":pk": {"S": "BUDGET#global"}})["Items"]
    return {item["sk"]["S"]: Decimal(item["spent"]["N"]) for item in items if item["sk"]["S"].startswith("day:")}


def assert_ledger_is_the_bill(stack) -> list:
    """Every billed item has exactly one ledger entry (keyed by its id or the id we sent);
    confirmed entries match it exactly, unconfirmed ones never under it; and budget spent
    equals the ledger."""
    entries, bill = all_entries(stack), stack.emulator.bill()
    for item in bill["items"]:
        names = {item["id"], item["client_request_id"], item["idempotency_key"]} - {None}
        [entry] = [e for e in entries if e.call_key in names]
        if item["kind"] == "video":
            seconds = Decimal(str(item["seconds"]))
            assert entry.clip_seconds == seconds if entry.confirmed else entry.clip_seconds >= seconds
        else:
            billed = (entry.input_tokens, entry.output_tokens)
            expected = (item["input_tokens"], item["output_tokens"])
            assert billed == expected if entry.confirmed else all(a >= b for a, b in zip(billed, expected))
    assert sum(spent_by_day(stack).values()) == sum(e.cost_usd for e in entries)
    return entries


def reservation_state(stack, job_id: str) -> str:
    from vidpipe.accounting import reservation_id_for

    item = stack.ddb.get_item(TableName=stack.table, Key={"pk": {"S": f"RESERVATION#{reservation_id_for(job_id)}"},
                                                         "sk": {"S": "RESERVATION"}})["Item"]
    return item["state"]["S"]


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_20_enhanced_jobs_and_a_small_daily_budget_when_they_run_then_spent_stays_under_it_and_equals_the_ledger(
        make_stack):
    s = make_stack(clock=VirtualClock(MIDNIGHT), parameter_overrides={"BudgetDailyUsd": "0.30"})
    job_ids = [send(s, prompt=f"a marble rolling down ramp {n}", enhance_prompt=True) for n in range(20)]

    jobs = [s.wait_for_job(job_id, timeout_s=300) for job_id in job_ids]

    succeeded = [job for job in jobs if job["status"] == "SUCCEEDED"]
    refused = [job for job in jobs if job["status"] == "FAILED"]
    assert len(succeeded) + len(refused) == 20 and succeeded and refused
    assert {job["error"]["error"] for job in refused} == {"BudgetExceeded"}
    [spent] = spent_by_day(s).values()
    assert spent <= Decimal("0.30")
    entries = assert_ledger_is_the_bill(s)
    # A refused job paid for nothing: no enhancement, no clip.
    assert all(ledger(s, job["job_id"]) == [] for job in refused)
    assert sum(1 for call in s.emulator.calls if call.kind == "chat") == len(succeeded)
    assert len(entries) == 2 * len(succeeded)


@pytest.mark.parametrize("status", ["401", "404"])
def test_given_a_status_check_that_errs_once_when_it_runs_then_the_job_succeeds_and_its_clip_is_recorded(
        local_stack, status):
    s = local_stack
    s.emulator.faults.add_spec(f"video.status:{status}:times=1")
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert job["details"]["status_errors"] == 1
    [entry] = assert_ledger_is_the_bill(s)
    assert (entry.call_key, entry.confirmed) == (job["details"]["provider_job_id"], True)


@pytest.mark.parametrize("kind", ["malformed", "truncate"])
def test_given_a_submit_answer_lost_every_time_when_it_runs_then_the_job_it_created_is_charged_unconfirmed(
        local_stack, kind):
    from vidpipe.generation.submit import idempotency_key

    s = local_stack
    s.emulator.faults.add_spec(f"video.submit:{kind}:times=always")
    job_id = send(s)

    job = s.wait_for_job(job_id)
    s.clock.advance(120)  # the provider job it created completes, and is billed

    assert job["status"] == "FAILED"
    assert "may have created the job" in job["error"]["reason"]
    [entry] = assert_ledger_is_the_bill(s)
    assert (entry.call_key, entry.confirmed, entry.clip_seconds) == (idempotency_key(job_id), False, 1)
    assert s.emulator.bill()["totals"]["video"] == {"jobs": 1, "seconds": 1.0}
    assert reservation_state(s, job_id) != "LIVE"


@pytest.mark.parametrize("kind", ["500", "malformed", "truncate"])
def test_given_status_checks_that_always_fail_when_the_cap_is_reached_then_the_completed_clip_is_recorded_and_stored(
        local_stack, kind):
    s = local_stack
    s.emulator.faults.add_spec(f"video.status:{kind}:times=always")
    job_id = send(s)

    job = s.wait_for_job(job_id, timeout_s=300)

    # The cancel's answer says the clip had completed: it is paid for, so it is kept.
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert job["details"]["status_errors"] == job["details"]["polls"] > 1
    assert keys(s, job_id) == [f"outputs/{job_id}/poster.jpg", f"outputs/{job_id}/video.mp4"]
    [entry] = assert_ledger_is_the_bill(s)
    assert entry.confirmed and s.emulator.bill()["totals"]["video"]["jobs"] == 1


def test_given_a_job_that_failed_while_its_provider_job_ran_when_the_sweep_runs_then_the_clip_is_recorded(
        make_stack, monkeypatch):
    import vidpipe.runtime

    s = make_stack()
    monkeypatch.setenv("POLL_MAX_ATTEMPTS", "3")
    vidpipe.runtime.reset()
    s.emulator.faults.add_spec("video.status:401:times=3")  # every check of the job fails...
    s.emulator.faults.add_spec("video.cancel:500:times=always")  # ...and it cannot be cancelled
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED" and job["error"]["error"] == "GenerationTimedOut"
    assert "watched until it ends" in job["error"]["reason"]
    assert all_entries(s) == [] and s.emulator.bill()["totals"]["video"]["jobs"] == 1  # billed, not yet recorded

    assert sweep(s)["watches"]["recorded"] == 1

    [entry] = assert_ledger_is_the_bill(s)
    [billed] = s.emulator.bill()["items"]
    assert (entry.call_key, entry.confirmed) == (billed["id"], True)  # keyed by the provider's job id
    record = JobStore(s.table, client=s.ddb).get(job_id)
    assert record["status"] == "FAILED" and record["provider_job"]["outcome"] == "recorded"
    assert sweep(s)["watches"] == {"recorded": 0, "ended": 0, "watching": 0, "given_up": 0}


class HeldDownload:
    """Wraps StoreVideo's handler: tells when it starts, and how it ended."""

    def __init__(self, stack):
        self.fn = stack.lambdas.by_logical_id("StoreVideoFunction")
        self.original = self.fn.load()
        self.started, self.finished = threading.Event(), threading.Event()
        self.error: Exception | None = None
        self.fn._callable = self

    def __call__(self, event, context):
        self.started.set()
        try:
            return self.original(event, context)
        except Exception as exc:
            self.error = exc
            raise
        finally:
            self.finished.set()


def start_held_job(stack) -> tuple[str, HeldDownload, str]:
    held = HeldDownload(stack)
    stack.emulator.faults.add_spec("video.download:latency:delay_s=4")
    job_id = send(stack)
    stack.drain()
    assert held.started.wait(60), "StoreVideo never started"
    arn = JobStore(stack.table, client=stack.ddb).get(job_id)["execution_arn"]
    return job_id, held, arn


def test_given_stop_execution_during_a_hanging_download_when_the_sweep_runs_then_the_job_fails_and_no_video_is_written(
        local_stack):
    s = local_stack
    job_id, held, arn = start_held_job(s)

    s.sfn.stop_execution(executionArn=arn, cause="operator stopped it")
    [reaped] = sweep(s)["reaped"]
    assert held.finished.wait(60)

    job = JobStore(s.table, client=s.ddb).get(job_id)
    assert reaped["job_id"] == job_id and job["status"] == "FAILED"
    assert job["error"]["error"] == "ExecutionEnded" and "ABORTED" in job["error"]["reason"]
    assert type(held.error).__name__ == "JobNotRunning"
    assert keys(s, job_id) == [] and s.s3.list_multipart_uploads(Bucket=s.bucket).get("Uploads", []) == []
    assert reservation_state(s, job_id) == "SETTLED"
    [entry] = assert_ledger_is_the_bill(s)  # the clip completed, so it stays charged
    assert entry.confirmed


def test_given_a_job_running_past_its_state_machines_deadline_when_the_sweep_runs_then_it_is_stopped_and_failed(
        local_stack):
    s = local_stack
    job_id, held, arn = start_held_job(s)
    timeout = json.loads(s.sfn.describe_state_machine(stateMachineArn=s.generation_arn)["definition"])["TimeoutSeconds"]

    assert sweep(s)["reaped"] == []  # within the deadline: left alone
    s.clock.advance(timeout + 1)
    [reaped] = sweep(s)["reaped"]
    assert held.finished.wait(60)

    job = JobStore(s.table, client=s.ddb).get(job_id)
    # The local stack times executions out on its clock too (TIMED_OUT, never finalized):
    # whichever saw the deadline first, the reaper finalizes the job.
    assert job["status"] == "FAILED", job
    assert (job["error"]["error"], job["error"]["reason"]) in [
        ("DeadlineExceeded", reaped["reason"]), ("ExecutionEnded", reaped["reason"])]
    assert f"past its state machine's {timeout} s deadline" in reaped["reason"] or "TIMED_OUT" in reaped["reason"]
    assert s.sfn.describe_execution(executionArn=arn)["status"] in ("ABORTED", "TIMED_OUT")
    assert keys(s, job_id) == []
    assert reservation_state(s, job_id) == "SETTLED"
    assert_ledger_is_the_bill(s)
