"""``vidpipe emulator`` runs the server in the foreground until Ctrl-C; its banner and
``--help`` say which key it accepts and where its endpoints are."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx

from cli_process import interrupt


def test_given_cli_with_fault_and_time_scale_when_run_then_serves_until_ctrl_c():
    command = [sys.executable, "-X", "faulthandler", "-m", "vidpipe_local.cli", "emulator", "--port", "0",
               "--api-key", "k", "--quiet", "--time-scale", "100", "--fault", "chat:429:times=1,retry_after=3"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [process.stdout.readline()]
        url = re.search(r"http://127\.0\.0\.1:\d+", banner[0])[0]
        while "Ctrl-C" not in banner[-1]:
            banner.append(process.stdout.readline())
        chat = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer k"}) as client:
            limited = client.post("/v1/chat/completions", json=chat)
            served = client.post("/v1/chat/completions", json=chat)
            job = client.post("/v1/video/generate", json={"prompt": "waves", "duration_s": 1, "fps": 4,
                                                           "resolution": "64x64"}).json()
            time.sleep(0.4)  # 40 provider seconds at 100x; the ETA is 30
            status = client.get(f"/v1/video/generations/{job['id']}").json()
    finally:
        out, err = interrupt(process, timeout_s=30)

    assert (limited.status_code, limited.headers["Retry-After"], served.status_code) == (429, "3", 200)
    assert status["status"] == "completed"
    assert process.returncode == 0, err
    assert "stopped" in out
    text = "".join(banner)
    assert "api key          k " in text and "Bearer k'" in text  # the key the user chose, not the default
    assert f"{url}/v1   POST /chat/completions" in text and "GET /models" in text
    assert "POST|GET /videos" in text and "variant=video|thumbnail|spritesheet" in text


def test_given_emulator_help_when_read_then_it_names_the_only_key_accepted():
    out = subprocess.run([sys.executable, "-m", "vidpipe_local.cli", "emulator", "--help"], capture_output=True,
                         text=True, timeout=60, check=True).stdout

    assert "accepts only the key of --api-key (default local-emulator-key)" in " ".join(out.split())
