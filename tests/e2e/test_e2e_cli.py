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

from cli_process import interrupt

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


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_prompt_when_generated_with_the_cli_then_video_poster_and_job_json_land_in_out(tmp_path):
    out = tmp_path / "gen"
    assert main(["generate", "--prompt", "a feather falling in a vacuum chamber", "--mode", "slow_motion",
                 "--duration", "2", "--fps", "12", "--resolution", "160x90", "--out", str(out)]) == 0
    job = json.loads((out / "job.json").read_text())
    assert job["status"] == "SUCCEEDED"
    assert (out / "video.mp4").stat().st_size > 0 and (out / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_the_sample_job_messages_when_invoked_then_valid_starts_and_invalid_are_rejected(capsys):
    assert main(["invoke", "StartJobsFunction", "--event", str(REPO_ROOT / "events/start_jobs_messages.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}


def test_given_an_unknown_function_when_invoked_then_exit_2_names_the_choices(capsys):
    assert main(["invoke", "NoSuchFunction", "--event", str(REPO_ROOT / "events/finalize_job.json")]) == 2
    assert "StartJobsFunction" in capsys.readouterr().err


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidpipe_local.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_local_up_when_other_commands_run_then_they_share_its_stack(sample_video, tmp_path):
    env = {**os.environ, "VIDPIPE_STATE_DIR": str(tmp_path / "state")}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "vidpipe_local.cli", "local", "up",
                               "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        state = tmp_path / "state" / f"local-stack-{port}.json"
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
    assert not (tmp_path / "state" / f"local-stack-{port}.json").exists()


# ---------------------------------------------------------------- a CLI that speaks plainly


def test_given_no_stack_when_status_or_spend_run_then_they_say_so_without_building_one(tmp_path):
    env = {**os.environ, "VIDPIPE_STATE_DIR": str(tmp_path / "state")}
    for command in (["status"], ["spend"], ["spend", "--job", "an-nope"]):
        started = time.monotonic()
        done = run_cli(*command, env=env)
        elapsed = time.monotonic() - started
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith("vidpipe: no local stack is up") and len(done.stderr.splitlines()) == 1
        # Building a throwaway stack took ~8 s; answering takes well under a second on an idle
        # machine (interpreter start included). The bound leaves room for a loaded CI machine.
        assert elapsed < 4.0, f"{command}: {elapsed:.2f}s"


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_failing_analysis_when_run_then_stderr_is_one_line_naming_the_log(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(os.urandom(4096))
    out = tmp_path / "o"
    env = {**os.environ, "VIDPIPE_STATE_DIR": str(tmp_path / "state")}

    done = run_cli("analyze", str(bad), "--out", str(out), env=env)

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert 1 <= len(lines) <= 3, done.stderr
    assert "Traceback" not in done.stderr and "{" not in done.stderr and "FailureEventException" not in done.stderr
    assert lines[-1].startswith("vidpipe: job an-") and "FAILED: the file is not a readable video" in lines[-1]
    assert f"(log: {out / 'vidpipe.log'})" in lines[-1]
    log = (out / "vidpipe.log").read_text()
    assert '"message":"job failed"' in log  # the handlers' JSON lines are in the log, not the terminal
    assert done.stdout.startswith("stack: in-process")


def test_given_provider_url_without_its_key_when_analyzing_then_it_fails_at_once_naming_the_variable(
        sample_video, monkeypatch, capsys):
    monkeypatch.setenv("VIDPIPE_CHAT_API_KEY", "")

    code = main(["analyze", str(sample_video), "--provider-url", "http://127.0.0.1:9/v1"])

    out, err = capsys.readouterr()
    assert code == 2 and "VIDPIPE_CHAT_API_KEY is empty" in err
    assert "stack:" not in out  # at once: before any stack was started (each command names its stack first)


class UnderReportingGateway:
    """An OpenAI-compatible gateway in front of the emulator that reports 10 prompt tokens
    whatever it was sent (as a gateway that strips the images would)."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        from vidpipe_local.emulator import Emulator

        self.emulator = Emulator(api_key="gw-key").start()
        upstream = self.emulator.url

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type",
                                                                                 "x-client-request-id")}
                answer = httpx.post(upstream + self.path, content=body, headers=headers, timeout=60)
                data = answer.json()
                if answer.status_code == 200:
                    data["usage"]["prompt_tokens"] = 10
                    data["usage"]["total_tokens"] = 10 + data["usage"]["completion_tokens"]
                payload = json.dumps(data).encode()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.emulator.stop()


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_gateway_under_reporting_prompt_tokens_when_analyzed_then_the_report_flags_it(
        sample_video, tmp_path, monkeypatch, capsys):
    gateway = UnderReportingGateway()
    monkeypatch.setenv("VIDPIPE_CHAT_API_KEY", "gw-key")
    out = tmp_path / "r"
    try:
        assert main(["analyze", str(sample_video), "--provider-url", gateway.url, "--out", str(out)]) == 0
    finally:
        gateway.close()

    report = json.loads((out / "report.json").read_text())
    check = report["usage_check"]
    assert check["verdict"] == "images_dropped" and check["calls_checked"] >= 1
    assert {a["reported_prompt_tokens"] for a in check["anomalies"]} == {10}
    assert all(a["expected_prompt_tokens"] > 100 for a in check["anomalies"])
    assert report["emulated"] is False  # a gateway answered, not the stack's own emulator
    assert "Usage anomaly" in (out / "report.md").read_text() and "Usage anomaly" in (out / "report.html").read_text()
    assert "Usage anomaly in segment 1, chunk 1: 10 prompt tokens reported for" in capsys.readouterr().out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`vidpipe local up` in a process of its own, with its own state folder."""
    state_dir = tmp_path_factory.mktemp("served-state")
    env = {**os.environ, "VIDPIPE_STATE_DIR": str(state_dir)}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "vidpipe_local.cli", "local", "up",
                               "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = state_dir / f"local-stack-{port}.json"
    deadline = time.monotonic() + 120
    while not state.exists():
        assert server.poll() is None, server.stderr.read()
        assert time.monotonic() < deadline, "local up did not come up"
        time.sleep(0.2)
    banner = []
    while not banner or not banner[-1].startswith("Ctrl-C"):
        banner.append(server.stdout.readline().rstrip("\n"))
    yield {"env": env, "url": f"http://127.0.0.1:{port}", "banner": banner, "state": state}
    _, err = interrupt(server, timeout_s=30)
    assert err == ""  # nothing reached the terminal but the banner


def test_given_local_up_when_it_starts_then_its_banner_shows_local_urls_and_the_emulator_key(served):
    banner = "\n".join(served["banner"])
    queue = next(line for line in served["banner"] if "jobs queue" in line).split()[-1]
    assert queue.startswith(served["url"] + "/") and "amazonaws.com" not in banner
    assert "local-emulator-key" in banner and "/v1/chat/completions" in banner


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_a_video_analyzed_with_options_when_re_analyzed_then_options_decide_whether_it_is_the_same_job(
        served, sample_video, tmp_path):
    env = served["env"]

    first = run_cli("analyze", str(sample_video), "--sampling", "scene", "--out", str(tmp_path / "a"), env=env)
    other = run_cli("analyze", str(sample_video), "--sampling", "uniform", "--out", str(tmp_path / "b"), env=env)
    again = run_cli("analyze", str(sample_video), "--sampling", "uniform", "--out", str(tmp_path / "c"), env=env)

    for done in (first, other, again):
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert done.stdout.startswith(f"stack: vidpipe local up at {served['url']}")
    scene = json.loads((tmp_path / "a" / "report.json").read_text())
    uniform = json.loads((tmp_path / "b" / "report.json").read_text())
    assert scene["sampling"]["strategy"] == "scene" and uniform["sampling"]["strategy"] == "uniform"
    assert scene["job_id"] != uniform["job_id"]
    assert f"same video and options as job {uniform['job_id']}: showing its report" in again.stdout
    assert "same video and options" not in other.stdout
    assert json.loads((tmp_path / "c" / "report.json").read_text()) == uniform


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_served_stack_when_asking_for_an_unknown_job_then_no_such_job(served):
    for command in (["status", "an-unknown"], ["spend", "--job", "an-unknown"]):
        done = run_cli(*command, env=served["env"])
        assert done.returncode == 1 and done.stderr.splitlines()[-1] == "vidpipe: no such job: an-unknown"
        assert done.stderr.splitlines()[0].startswith(f"stack: vidpipe local up at {served['url']}")


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_stack_url_when_it_names_no_stack_then_the_command_says_so(served):
    done = run_cli("status", "--stack", "http://127.0.0.1:9", env=served["env"])
    assert done.returncode == 2 and "no vidpipe stack answers at http://127.0.0.1:9" in done.stderr

    picked = run_cli("status", "--stack", served["url"], env=served["env"])
    assert picked.returncode == 0 and served["url"] in picked.stderr


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_a_job_on_the_scaled_clock_when_its_spend_is_listed_then_timestamps_are_wall_clock_time(
        served, sample_video, tmp_path):
    from datetime import datetime

    before = datetime.now().astimezone()
    done = run_cli("analyze", str(sample_video), "--sampling", "keyframes", "--out", str(tmp_path / "k"),
                   env=served["env"])
    after = datetime.now().astimezone()
    assert done.returncode == 0, done.stderr
    job_id = json.loads((tmp_path / "k" / "report.json").read_text())["job_id"]

    spend = json.loads(run_cli("spend", "--job", job_id, "--json", env=served["env"]).stdout)

    stamps = [datetime.fromisoformat(row["created_at"]) for row in spend["rows"]]
    assert stamps and all(before <= t <= after for t in stamps), (before, stamps, after)


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_the_demo_when_run_then_the_report_the_clip_and_the_spend_table_land_in_out(tmp_path, capsys):
    out = tmp_path / "demo"

    assert main(["demo", "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    for name in ("analysis/report.json", "analysis/report.html", "generation/video.mp4", "generation/poster.jpg"):
        assert (out / name).stat().st_size > 0, name
    assert "SUCCEEDED" in printed and "TOTAL" in printed.split("Spend (from the ledger):")[1]
