"""Every function in template.yaml, run by the real `sam local invoke` against `vidpipe local up`.

    invoke_all.py --image IMAGE --host BRIDGE_ADDRESS [--sam .venv-sam/bin/sam]

Starts `vidpipe local up --host BRIDGE_ADDRESS` (containers reach the host there),
writes the --env-vars file from it (env_vars.py), uploads the sample video the
events name, then runs, in template order,

    sam local invoke <Fn> -e events/<file>.json --invoke-image IMAGE --skip-pull-image --env-vars ...

for each function with each of its event files (events/<snake_name>.json or
events/<snake_name>_*.json). `sam local invoke` exits 0 when the handler raised,
so each printed result is read: an `errorType` fails it unless the event is listed
in EXPECTED_ERRORS with that very error. Last, a negative control: a ProbeVideo
event for a missing object must be reported as failed, or the check itself is broken.

Ends with one line, `sam local invoke: N/T functions ran their handler against the
local stack`, and exits non-zero unless N == T.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

REGION = "us-east-1"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "SAM_CLI_TELEMETRY": "0"}
INVOKE_TIMEOUT_S = 600  # a first invocation builds SAM's image (runtime + layers) before it runs
STACK_START_TIMEOUT_S = 120

# Event file -> the errorType its handler is meant to end with.
EXPECTED_ERRORS: dict[str, str] = {
    # The sample names a generation job that no other event starts (its id is not the one
    # StartJobs derives), and a clip for a job that is not RUNNING must not be stored: the
    # handler reads the job from the local table and refuses. (Storing for real needs the
    # provider emulator's download URL, which a checked-in event cannot know.)
    "store_video.json": "JobNotRunning",
}

# Keys other events read the sample video at, besides the probe's upload: the shot that
# events/assemble_episode.json assembles (a production's shots are StoreVideo's outputs).
SAMPLE_COPIES = ("outputs/gen-events-sample-shot-1/video.mp4",)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str


def check_result(stdout: str, returncode: int, expected_error: str | None = None) -> Verdict:
    """Did the handler run and end as the event means it to? ``stdout`` is what
    `sam local invoke` printed: the handler's result as JSON (its logs go to stderr)."""
    if returncode != 0:
        return Verdict(False, f"sam local invoke exited {returncode}")
    result = _last_json(stdout)
    if result is _NOTHING:
        return Verdict(False, "no JSON result printed (did the handler run?)")
    error = result.get("errorType") if isinstance(result, dict) else None
    if error is not None:
        message = str(result.get("errorMessage", ""))[:200]
        if error == expected_error:
            return Verdict(True, f"raised {error} as the event means it to: {message}")
        return Verdict(False, f"raised {error}: {message}")
    if expected_error is not None:
        return Verdict(False, f"returned a result, but the event is meant to raise {expected_error}")
    return Verdict(True, "returned " + _summary(result))


_NOTHING = object()


def _last_json(stdout: str):
    text = stdout.strip()
    if not text:
        return _NOTHING
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):  # a result after other output on stdout
        try:
            return json.loads(line)
        except ValueError:
            continue
    return _NOTHING


def _summary(result) -> str:
    if isinstance(result, dict):
        keys = ", ".join(list(result)[:6])
        return "{" + keys + (", ..." if len(result) > 6 else "") + "}"
    return json.dumps(result)[:80]


def functions_in(template: Path) -> list[str]:
    """The template's functions, in its order."""
    from vidpipe_local.stack.template import load_template

    return [logical_id for logical_id, res in load_template(template)["Resources"].items()
            if res["Type"] == "AWS::Serverless::Function"]


def snake(logical_id: str) -> str:
    name = logical_id.removesuffix("Function")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def events_for(logical_id: str, events_dir: Path) -> list[Path]:
    base = snake(logical_id)
    return sorted(p for p in events_dir.glob("*.json") if p.stem == base or p.stem.startswith(base + "_"))


# ------------------------------------------------------------------ the served stack
class ServedStack:
    """`vidpipe local up --host HOST --port PORT` in a state folder of its own; stopped with Ctrl-C."""

    def __init__(self, host: str, port: int, state_dir: Path, log: Path):
        self.host, self.port, self.state_dir, self.log = host, port, state_dir, log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> dict:
        env = {**os.environ, "VIDPIPE_STATE_DIR": str(self.state_dir)}
        # Started from a script, SIGINT may be ignored, and Python then never raises
        # KeyboardInterrupt: restore the default so Ctrl-C (our stop) shuts it down cleanly.
        self.process = subprocess.Popen(
            # Time scale 1: the containers run on real time, and both sides write time stamps
            # the other reads (rate-limit buckets, deadlines, reservation ages).
            [str(REPO / ".venv/bin/vidpipe"), "local", "up", "--host", self.host, "--port", str(self.port),
             "--time-scale", "1"],
            cwd=REPO, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        state = self.state_dir / f"local-stack-{self.port}.json"
        deadline = time.monotonic() + STACK_START_TIMEOUT_S
        while not state.exists():
            if self.process.poll() is not None:
                raise SystemExit(f"vidpipe local up exited {self.process.returncode}:\n{self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"vidpipe local up did not come up in {STACK_START_TIMEOUT_S}s")
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written in one go, but let the writer finish
        return json.loads(state.read_text())

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def upload_sample(endpoint: str, bucket: str, key: str, workdir: Path) -> None:
    import boto3

    from vidpipe_local.samples import demo_video

    path = workdir / "sample.mp4"
    demo_video(path)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for target in (key, *SAMPLE_COPIES):
        s3.upload_file(str(path), bucket, target)


# ------------------------------------------------------------------ invoking
def sam_invoke(sam: str, template: Path, logical_id: str, event: Path, image: str, env_file: Path) -> tuple[str, str, int]:
    cmd = [sam, "local", "invoke", logical_id, "-e", str(event), "--template", str(template),
           "--invoke-image", image, "--skip-pull-image", "--env-vars", str(env_file), "--region", REGION]
    try:
        done = subprocess.run(cmd, cwd=REPO, env={**os.environ, **FAKE_AWS}, capture_output=True, text=True,
                              timeout=INVOKE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        remove_containers(stderr)
        return "", stderr + f"\nsam local invoke did not end in {INVOKE_TIMEOUT_S}s", 124
    remove_containers(done.stderr)
    return done.stdout, done.stderr, done.returncode


def remove_containers(sam_stderr: str) -> None:
    """SAM removes its container after the invocation; one it left (a timeout, a crash) goes now."""
    for container_id in re.findall(r"SAM_CONTAINER_ID: ([0-9a-f]{12,64})", sam_stderr):
        subprocess.run(["docker", "rm", "-f", container_id], capture_output=True)


def free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_all(functions: list[str], events_dir: Path, invoke, log) -> int:
    """Invoke each function with each of its events, one at a time in template order (the
    analysis events read what the one before wrote: the probe's upload, the frames, the
    chunk result); returns how many functions passed every one of their events."""
    ran = 0
    for logical_id in functions:
        events = events_for(logical_id, events_dir)
        if not events:
            log(f"  FAIL {logical_id}: no event file events/{snake(logical_id)}[_*].json")
            continue
        passed = True
        for event in events:
            started = time.monotonic()
            stdout, stderr, code = invoke(logical_id, event)
            verdict = check_result(stdout, code, EXPECTED_ERRORS.get(event.name))
            log(f"  {'ok  ' if verdict.ok else 'FAIL'} {logical_id} -e events/{event.name} "
                f"({time.monotonic() - started:.0f}s): {verdict.detail}")
            if not verdict.ok:
                passed = False
                log("    " + "\n    ".join(stderr.strip().splitlines()[-25:]))
        ran += passed
    return ran


def negative_control(bucket: str, invoke, workdir: Path, log) -> bool:
    """A handler that raises in the container must be caught by check_result."""
    event = workdir / "probe_video_missing_object.json"
    event.write_text(json.dumps({"job_id": "an-example-job", "bucket": bucket, "key": "uploads/no-such-clip.mp4"}))
    stdout, _, code = invoke("ProbeVideoFunction", event)
    verdict = check_result(stdout, code)
    if verdict.ok:
        log(f"  FAIL negative control: a ProbeVideo of a missing object passed the check ({verdict.detail})")
        return False
    log(f"  ok   negative control: a ProbeVideo of a missing object is caught ({verdict.detail})")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="real `sam local invoke` of every function against the local stack")
    parser.add_argument("--image", required=True, help="the stand-in runtime image (runtime_image.sh)")
    parser.add_argument("--host", required=True, help="address containers reach the host at (docker bridge)")
    parser.add_argument("--port", type=int, default=0, help="AWS endpoint port (default: a free one)")
    parser.add_argument("--started", type=float, help="when the whole step started (epoch seconds), for its time")
    parser.add_argument("--sam", default=str(REPO / ".venv-sam/bin/sam"))
    parser.add_argument("--template", default=str(REPO / ".aws-sam/build/template.yaml"),
                        help="the built template (sam build)")
    parser.add_argument("--events", default=str(REPO / "events"))
    args = parser.parse_args(argv)
    # Stopped from outside: unwind, so that the served stack is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from env_vars import env_vars

    def log(line: str) -> None:
        print(line, flush=True)

    functions = functions_in(REPO / "template.yaml")
    events_dir = Path(args.events)
    port = args.port or free_port(args.host)
    with tempfile.TemporaryDirectory(prefix="vidpipe-sam-local-") as tmp:
        workdir = Path(tmp)
        with ServedStack(args.host, port, workdir / "state", workdir / "local-up.log") as state:
            endpoint, bucket = state["aws_endpoint_url"], state["bucket"]
            log(f"local stack: {endpoint}, emulator {state['emulator_url']}")
            env_file = workdir / "env.json"
            env_file.write_text(json.dumps(env_vars(endpoint, state.get("stack_name", "vidpipe-local")), indent=2))
            probe = json.loads((events_dir / "probe_video.json").read_text())
            if probe["bucket"] != bucket:
                raise SystemExit(f"events name bucket {probe['bucket']!r}, the local stack's is {bucket!r}")
            upload_sample(endpoint, bucket, probe["key"], workdir)
            log(f"uploaded the sample to s3://{bucket}/{probe['key']}")

            def invoke(logical_id: str, event: Path):
                return sam_invoke(args.sam, Path(args.template), logical_id, event, args.image, env_file)

            ran = run_all(functions, events_dir, invoke, log)
            control_ok = negative_control(bucket, invoke, workdir, log)
    if args.started:
        print(f"sam-local step: {time.time() - args.started:.0f} s", flush=True)
    print(f"sam local invoke: {ran}/{len(functions)} functions ran their handler against the local stack", flush=True)
    return 0 if ran == len(functions) and control_ok else 1


if __name__ == "__main__":
    sys.exit(main())
