"""The CLI as a user runs it: ephemeral in-process stacks, and `vidpipe local up`
serving a stack that other commands then use."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidpipe_local.cli import main
from vidpipe_local.stack.stack import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """No `vidpipe local up` of the developer's may leak into these tests."""
    monkeypatch.setenv("VIDPIPE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="module")
def sample_video(tmp_path_factory) -> Path:
    from vidpipe_local import samples

    path = tmp_path_factory.mktemp("video") / "sample clip.mp4"
    samples.sample_with_cuts_and_fade(path)
    return path


def test_given_a_video_when_analyzed_with_the_cli_then_report_files_land_in_out(sample_video, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["analyze", str(sample_video), "--sampling", "scene", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "SUCCEEDED" and report["sampling"]["strategy"] == "scene"
    assert len(report["scenes"]) >= 3 and report["spend"]["calls"] >= 1
    assert (out / "report.md").read_text().startswith("#")
    assert (out / "contact_sheet.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert "SUCCEEDED" in capsys.readouterr().out


def test_given_a_corrupt_video_when_analyzed_then_exit_1_and_one_readable_line(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(os.urandom(4096))
    assert main(["analyze", str(bad), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vidpipe: job ") and "FAILED" in err and "Traceback" not in err


def test_given_a_prompt_when_generated_with_the_cli_then_video_poster_and_job_json_land_in_out(tmp_path):
    out = tmp_path / "gen"
    assert main(["generate", "--prompt", "a feather falling in a vacuum chamber", "--mode", "slow_motion",
                 "--duration", "2", "--fps", "12", "--resolution", "160x90", "--out", str(out)]) == 0
    job = json.loads((out / "job.json").read_text())
    assert job["status"] == "SUCCEEDED"
    assert (out / "video.mp4").stat().st_size > 0 and (out / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_given_the_sample_job_messages_when_invoked_then_valid_starts_and_invalid_are_rejected(capsys):
    assert main(["invoke", "StartJobsFunction", "--event", str(REPO_ROOT / "events/start_jobs_messages.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}


def test_given_an_unknown_function_when_invoked_then_exit_2_names_the_choices(capsys):
    assert main(["invoke", "NoSuchFunction", "--event", str(REPO_ROOT / "events/finalize_job.json")]) == 2
    assert "StartJobsFunction" in capsys.readouterr().err


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidpipe_local.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_given_local_up_when_other_commands_run_then_they_share_its_stack(sample_video, tmp_path):
    env = {**os.environ, "VIDPIPE_STATE_DIR": str(tmp_path / "state")}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vidpipe_local.cli", "local", "up", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        state = tmp_path / "state" / "local-stack.json"
        deadline = time.monotonic() + 120
        while not state.exists():
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "local up did not come up"
            time.sleep(0.2)
        analyzed = run_cli("analyze", str(sample_video), "--out", str(tmp_path / "r"), env=env)
        assert analyzed.returncode == 0, analyzed.stderr
        spend = run_cli("spend", "--json", "--by", "model", env=env)
        assert spend.returncode == 0, spend.stderr
        rows = json.loads(spend.stdout)["rows"]  # the served stack's ledger, not an empty ephemeral one
        assert [r["key"] for r in rows] == ["gemini-2.5-flash"] and rows[0]["calls"] >= 1
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 0
    assert not (tmp_path / "state" / "local-stack.json").exists()
