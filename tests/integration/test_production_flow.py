"""Productions on the local stack: jobs queue → start_jobs → the real production
ASL (storyboard → approval → reservation → a Map of child Generation executions
via startExecution.sync:2 → AssembleEpisode → finalize) executed by moto, the
handlers in-process, the provider emulator over HTTP, on a VirtualClock."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from spend_invariants import assert_money_invariants
from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe.jobs import JobStore

pytestmark = pytest.mark.integration

SCRIPT = ("Scene 1: Kitchen\nAna pours coffee into a red mug. Steam rises from the cup. She smiles at the window.\n\n"
          "Scene 2: Street\nRain falls on the grey street. Ben runs for the bus. He misses it by a second!\n\n"
          "Scene 3: Office\nAna types fast at her desk. Ben arrives soaked. They laugh together.")
SMALL = {"resolution": "160x96", "fps": 12}
CHARACTERS = [{"name": "Ana", "description": "a woman in a yellow coat"},
              {"name": "Ben", "description": "a tall man with a blue umbrella"}]


def message(**fields) -> str:
    return json.dumps({"type": "produce", "script": SCRIPT, "title": "Rainy Monday", "characters": CHARACTERS,
                       **SMALL, **fields})


def produce(stack, **fields) -> str:
    body = message(**fields)
    stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
    return execution_name(parse_job_message(body))


def video_submits(stack) -> list:
    return [c for c in stack.emulator.calls if c.kind == "video.submit" and c.status == 200]


def storyboard(stack, job_id: str) -> dict:
    key = f"productions/{job_id}/storyboard.json"
    return json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def no_live_reservation(stack) -> None:
    live = stack.ddb.query(TableName=stack.table, KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": "RESERVATIONS#LIVE"}})["Items"]
    assert live == []


def download(stack, uri: str, path: Path) -> Path:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    stack.s3.download_file(bucket, key, str(path))
    return path


def frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        out.append(cv2.resize(frame, (32, 20)).astype(np.int16))
    capture.release()
    return out


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_three_scene_script_when_produced_then_the_episode_is_its_shots_in_storyboard_order(
        local_stack, tmp_path):
    s = local_stack
    job_id = produce(s)

    job = s.wait_for_job(job_id, timeout_s=180)

    assert job["status"] == "SUCCEEDED", job.get("error")
    board = storyboard(s, job_id)
    assert 8 <= len(board["shots"]) <= 12
    assert {shot["scene"] for shot in board["shots"]} == {0, 1, 2}
    jobs = JobStore(s.table, client=s.ddb)
    clips = []
    for shot_id in job["shots"]:
        shot = jobs.get(shot_id)
        assert shot["status"] == "SUCCEEDED" and shot["parent_job_id"] == job_id
        clips.append(frames(download(s, shot["outputs"]["video"]["s3_uri"], tmp_path / f"{shot_id}.mp4")))
    episode = frames(download(s, job["outputs"]["episode"], tmp_path / "episode.mp4"))
    assert abs(len(episode) - sum(map(len, clips))) <= len(clips)
    # Each shot's middle frame in the episode looks most like its own clip's, in storyboard order.
    start = 0
    for index, clip in enumerate(clips):
        middle = episode[min(start + len(clip) // 2, len(episode) - 1)]
        distances = [float(np.abs(middle - other[len(other) // 2]).mean()) for other in clips]
        assert int(np.argmin(distances)) == index, (index, distances)
        start += len(clip)
    # The production's ledger: its storyboard call; each shot's: its clip.
    assert job["spend"]["calls"] == 1 and job["spend"]["storyboard_usd"] > 0
    assert job["spend"]["shots_usd"] > 0
    assert_money_invariants(s)
    no_live_reservation(s)


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_the_same_produce_message_twice_when_delivered_then_one_production_pays_each_shot_once(local_stack):
    s = local_stack
    first = produce(s)
    second = produce(s)

    job = s.wait_for_job(first, timeout_s=180)

    assert first == second
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(s.sfn.list_executions(stateMachineArn=s.production_arn)["executions"]) == 1
    assert len(video_submits(s)) == len(job["shots"])
    assert len([c for c in s.emulator.calls if c.kind == "chat" and c.status == 200]) == 1
    report = assert_money_invariants(s)
    assert len([item for item, _ in report.matched]) == len(job["shots"]) + 1


def test_given_a_budget_below_the_estimate_when_produced_then_it_is_refused_after_the_storyboard_before_any_video(
        make_stack):
    s = make_stack(parameter_overrides={"BudgetDailyUsd": "1"})
    job_id = produce(s)

    job = s.wait_for_job(job_id, timeout_s=120)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "BudgetExceeded"
    reason = job["error"]["reason"]
    assert "production refused before any video call" in reason and "estimate" in reason
    assert "1.00 limit" in reason and "requested" in reason, reason
    assert video_submits(s) == []
    assert storyboard(s, job_id)["shots"]  # the storyboard was made (and paid) first
    assert job["spend"]["calls"] == 1
    assert_money_invariants(s)
    no_live_reservation(s)


@pytest.mark.long  # over ~8 s: make long (CI) runs it
@pytest.mark.parametrize("policy, status", [("skip", "PARTIAL"), ("fail", "FAILED")])
def test_given_one_shot_failing_when_produced_then_skip_ends_partial_with_the_gap_and_fail_ends_failed(
        local_stack, policy, status):
    s = local_stack
    s.emulator.faults.add_spec("video.submit:job_policy:times=1")
    job_id = produce(s, on_shot_failure=policy)

    job = s.wait_for_job(job_id, timeout_s=180)

    assert job["status"] == status, job.get("error")
    jobs = JobStore(s.table, client=s.ddb)
    failed = [shot_id for shot_id in job["shots"] if jobs.get(shot_id)["status"] == "FAILED"]
    assert len(failed) == 1
    if policy == "skip":
        gaps = job["details"]["gaps"]
        assert [gap["job_id"] for gap in gaps] == failed
        assert "content policy" in gaps[0]["reason"]
        assert "1 of" in job["error"]["reason"] and job["outputs"]["episode"]
    else:
        assert job["error"]["error"] == "ShotsFailed"
        assert "on_shot_failure is fail" in job["error"]["reason"]
        assert "content policy" in job["error"]["reason"]
    assert_money_invariants(s)
    no_live_reservation(s)


# ------------------------------------------------------------------ approval


def wait_for_token(stack, job_id: str) -> str:
    from vidpipe_local.stack.stack import wait_until

    item = wait_until(lambda: stack.ddb.get_item(TableName=stack.table, ConsistentRead=True, Key={
        "pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "TOKEN"}}).get("Item") if stack.drain() >= 0 else None,
        bool, 60, lambda _: f"no approval token for {job_id}")
    return item["token"]["S"]


def test_given_an_approval_with_an_edited_storyboard_when_resumed_then_only_its_shots_are_generated(local_stack):
    s = local_stack
    job_id = produce(s, approve_storyboard=True, min_shots=2, max_shots=12)
    token = wait_for_token(s, job_id)
    assert video_submits(s) == []  # waiting: nothing paid but the storyboard
    board = storyboard(s, job_id)
    edited = {**board, "shots": board["shots"][1:4]}

    s.sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True, "storyboard": edited}))
    job = s.wait_for_job(job_id, timeout_s=180)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(job["shots"]) == 3 and len(video_submits(s)) == 3
    assert [shot["action"] for shot in storyboard(s, job_id)["shots"]] == [x["action"] for x in edited["shots"]]
    assert_money_invariants(s)
    no_live_reservation(s)


def test_given_an_invalid_edited_storyboard_when_resumed_then_the_production_fails_saying_why(local_stack):
    s = local_stack
    job_id = produce(s, approve_storyboard=True, min_shots=2, max_shots=12)
    token = wait_for_token(s, job_id)
    board = storyboard(s, job_id)
    edited = {**board, "shots": [{**board["shots"][0], "characters": ["Zed"]}, board["shots"][1]]}

    s.sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True, "storyboard": edited}))
    job = s.wait_for_job(job_id, timeout_s=60)

    assert job["status"] == "FAILED"
    assert "unknown characters Zed" in job["error"]["reason"]
    assert video_submits(s) == []
    no_live_reservation(s)


def test_given_a_rejected_storyboard_when_rejected_then_the_production_ends_with_the_reason(local_stack):
    s = local_stack
    job_id = produce(s, approve_storyboard=True)
    token = wait_for_token(s, job_id)

    s.sfn.send_task_failure(taskToken=token, error="StoryboardRejected", cause="scene 2 is too dark")
    job = s.wait_for_job(job_id, timeout_s=60)

    assert job["status"] == "FAILED"
    assert job["error"] == {"error": "StoryboardRejected", "reason": "scene 2 is too dark"}
    assert video_submits(s) == [] and job["spend"]["calls"] == 1
    assert_money_invariants(s)
    no_live_reservation(s)


def test_given_a_storyboard_nobody_approves_when_its_deadline_passes_then_the_production_ends(local_stack):
    s = local_stack
    job_id = produce(s, approve_storyboard=True, approve_within_s=120)

    job = s.wait_for_job(job_id, timeout_s=60)

    assert job["status"] == "FAILED"
    assert job["error"]["error"] == "StoryboardNotApproved"
    assert job["error"]["reason"] == "the storyboard was not approved within 120 s; only the storyboard call was paid"
    assert video_submits(s) == [] and job["spend"]["calls"] == 1
    assert_money_invariants(s)
    no_live_reservation(s)


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_a_script_dropped_under_scripts_when_notified_then_a_production_starts_from_it(local_stack):
    s = local_stack
    s.s3.put_object(Bucket=s.bucket, Key="scripts/monday.txt", Body=SCRIPT.encode(),
                    Metadata={"vidpipe-options": json.dumps({**SMALL, "min_shots": 8, "max_shots": 9,
                                                             "characters": CHARACTERS})})
    s.drain()

    productions = s.sfn.list_executions(stateMachineArn=s.production_arn)["executions"]
    assert len(productions) == 1
    job = s.wait_for_job(productions[0]["name"], timeout_s=180)
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert job["request"]["script"] == f"s3://{s.bucket}/scripts/monday.txt"
    assert storyboard(s, job["job_id"])["title"] == "monday" and len(job["shots"]) in (8, 9)


# ------------------------------------------------------------------ a 47-shot episode

SUBJECTS = ["Ana", "Ben", "the red mug", "the old clock", "a paper boat", "the city bus", "a grey cat", "the neon sign"]
VERBS = ["turns slowly", "glows brightly", "falls over", "spins once", "rises up", "drifts left", "shakes hard"]


def long_script(shots: int) -> str:
    lines = [f"{SUBJECTS[i % len(SUBJECTS)].capitalize()} {VERBS[i % len(VERBS)]} in take {i + 1}." for i in range(shots)]
    third = shots // 3
    return "\n\n".join(f"Scene {n + 1}: Part {n + 1}\n" + " ".join(part)
                       for n, part in enumerate((lines[:third], lines[third:2 * third], lines[2 * third:])))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(stop, -1) for _, stop in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.long
def test_given_a_47_shot_script_when_produced_then_it_finishes_with_at_most_max_concurrency_shots_in_flight(
        make_stack):
    import time

    s = make_stack(parameter_overrides={"ProductionMaxConcurrency": "4"})
    started, clock_start = time.monotonic(), s.clock.now()
    body = json.dumps({"type": "produce", "script": long_script(47), "title": "Forty-seven", "min_shots": 47,
                       "max_shots": 47, "target_duration_s": 47, **SMALL})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=body)
    job_id = execution_name(parse_job_message(body))

    job = s.wait_for_job(job_id, timeout_s=900)

    wall_s, clock_s = time.monotonic() - started, s.clock.now() - clock_start
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(job["shots"]) == 47
    children = s.sfn.list_executions(stateMachineArn=s.generation_arn, maxResults=1000)["executions"]
    assert len(children) == 47
    in_flight = max_overlap([(c["startDate"].timestamp(), c["stopDate"].timestamp()) for c in children])
    assert in_flight <= 4
    assert len(video_submits(s)) == 47
    assert_money_invariants(s)
    no_live_reservation(s)
    production = s.sfn.list_executions(stateMachineArn=s.production_arn)["executions"][0]["executionArn"]
    histories = [s.history(production)] + [s.history(c["executionArn"]) for c in children]
    transitions = sum(1 for history in histories for event in history if event["type"].endswith("StateEntered"))
    calls: dict[str, int] = {}
    for call in s.emulator.calls:
        calls[call.kind] = calls.get(call.kind, 0) + 1
    figures = {"shots": 47, "max_in_flight": in_flight, "provider_calls": calls,
               "state_transitions": transitions, "history_events_production": len(histories[0]),
               "wall_s": round(wall_s, 1), "clock_s": round(clock_s, 1), "episode_frames": job["details"]["frames"]}
    print("FIGURES", json.dumps(figures, default=str))


def test_given_a_character_image_at_a_private_address_when_sent_then_the_production_is_rejected_at_intake(
        local_stack):
    s = local_stack
    job_id = produce(s, characters=[{"name": "Ana", "reference_image": "https://10.0.0.7/ana.png"}])

    job = s.wait_for_job(job_id, timeout_s=30)

    assert job["status"] == "REJECTED"
    assert job["error"]["reason"].startswith("characters.0.reference_image: ")
    assert s.sfn.list_executions(stateMachineArn=s.production_arn)["executions"] == []
    assert s.emulator.calls == []


def test_given_a_file_under_scripts_that_is_no_script_when_notified_then_it_is_rejected_naming_the_suffixes(
        local_stack):
    from vidpipe.jobs import stable_id

    s = local_stack
    etag = s.s3.put_object(Bucket=s.bucket, Key="scripts/notes.pdf", Body=b"%PDF-1.4")["ETag"]
    s.drain()

    job = JobStore(s.table, client=s.ddb).get(stable_id("pro", s.bucket, "scripts/notes.pdf", etag.strip('"')))
    assert job["status"] == "REJECTED"
    assert job["error"]["reason"] == "key 'scripts/notes.pdf': a script under scripts/ must end in .txt, .md or .json"
    assert s.sfn.list_executions(stateMachineArn=s.production_arn)["executions"] == []
