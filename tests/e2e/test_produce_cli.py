"""`vidpipe produce` / `approve` / `reject` as a user runs them, on a local stack
the commands share (as with `vidpipe local up`)."""

from __future__ import annotations

import json

import pytest

from vidpipe_local.cli import main

pytestmark = pytest.mark.e2e

SCRIPT = ("Scene 1: Kitchen\nAna pours coffee into a red mug. Steam rises from the cup. She smiles.\n\n"
          "Scene 2: Street\nRain falls on the street. Ben runs for the bus. He misses it!\n\n"
          "Scene 3: Office\nAna types fast. Ben arrives soaked. They laugh together.")


@pytest.fixture
def shared(make_stack, monkeypatch, tmp_path):
    """A stack with background pollers, used by every command of the test (vidpipe_local.stack.session)."""
    from vidpipe_local.stack import session

    monkeypatch.setenv("VIDPIPE_STATE_DIR", str(tmp_path / "state"))
    stack = make_stack(background_pollers=True)
    monkeypatch.setattr(session, "_current", session.Session(stack.endpoints(), stack))
    return stack


def script_file(tmp_path, **options):
    path = tmp_path / "monday.json"
    path.write_text(json.dumps({"type": "produce", "script": SCRIPT, "resolution": "160x96", "fps": 12,
                                "characters": [{"name": "Ana"}, {"name": "Ben"}], **options}))
    return path


def production_id(printed: str) -> str:
    return next(line.split()[1] for line in printed.splitlines() if line.startswith("production pro-"))


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_a_script_when_produced_with_the_cli_then_it_prints_the_storyboard_each_shot_and_the_episode(
        shared, tmp_path, capsys):
    out = tmp_path / "episode"

    assert main(["produce", str(script_file(tmp_path)), "--shots", "8-10", "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "storyboard: " in printed and "#  scene  s" in printed
    shots = [line for line in printed.splitlines() if line.startswith("shot ")]
    assert 8 <= len(shots) <= 10 and all("SUCCEEDED" in line for line in shots)
    assert f"episode: {out / 'episode.mp4'}" in printed
    assert (out / "episode.mp4").stat().st_size > 0 and (out / "storyboard.md").exists()
    assert json.loads((out / "job.json").read_text())["status"] == "SUCCEEDED"


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_production_awaiting_approval_when_approved_with_an_edit_then_only_the_edited_shots_run(
        shared, tmp_path, capsys):
    from vidpipe.jobs import JobStore

    assert main(["produce", str(script_file(tmp_path, min_shots=2)), "--approve", "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "waiting for approval: vidpipe approve pro-" in printed
    job_id = production_id(printed)
    board = json.loads(shared.s3.get_object(Bucket=shared.bucket,
                                            Key=f"productions/{job_id}/storyboard.json")["Body"].read())
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**board, "shots": board["shots"][:2]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**board, "shots": board["shots"][:1]}))

    assert main(["approve", job_id, "--storyboard", str(bad)]) == 2  # 1 shot < min_shots 2: refused here
    assert main(["approve", job_id, "--storyboard", str(edited)]) == 0

    job = shared.wait_for_job(job_id, timeout_s=120)
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert len(JobStore(shared.table, client=shared.ddb).get(job_id)["shots"]) == 2
    assert "1 shots, outside 2–12" in capsys.readouterr().err


def test_given_a_production_awaiting_approval_when_rejected_then_it_ends_with_the_reason(shared, tmp_path, capsys):
    assert main(["produce", str(script_file(tmp_path)), "--approve", "--out", str(tmp_path / "o")]) == 0
    job_id = production_id(capsys.readouterr().out)

    assert main(["reject", job_id, "--reason", "too dark"]) == 0
    job = shared.wait_for_job(job_id, timeout_s=60)

    assert job["status"] == "FAILED" and job["error"]["reason"] == "too dark"
    assert main(["reject", job_id, "--reason", "again"]) == 2
    assert "not waiting for approval" in capsys.readouterr().err
