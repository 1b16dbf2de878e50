"""`vidpipe demo`: the main jobs end to end on an in-process local stack.

Stands the stack up from template.yaml, shows it alive (resources, an
emulator round trip), analyzes a generated sample video, generates a
slow-motion clip and ends with the spend table of what it ran.
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

from vidpipe_local.cli import add_common_options


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline locally on a sample video")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--time-scale", type=float, default=60.0, help="provider seconds per real second")
    add_common_options(p, stack=False)
    p.set_defaults(func=run)


def show_stack(session) -> None:
    c = session.client
    print("Local stack (built from template.yaml):")
    print(f"  bucket          {session.bucket}")
    for url in c("sqs").list_queues()["QueueUrls"]:
        print(f"  queue           {url.rsplit('/', 1)[1]}")
    for table in c("dynamodb").list_tables()["TableNames"]:
        print(f"  table           {table}")
    for machine in c("stepfunctions").list_state_machines()["stateMachines"]:
        print(f"  state machine   {machine['name']}")
    print(f"  functions       {len(c('lambda').list_functions()['Functions'])} (handlers run in-process)")
    print(f"  emulator        {session.endpoints.emulator_url}")


def emulator_round_trip(session) -> None:
    import cv2
    import httpx
    import numpy as np

    image = np.zeros((360, 640, 3), np.uint8)
    image[:, :320] = (0, 0, 255)  # BGR: left half red
    ok, jpeg = cv2.imencode(".jpg", image)
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()
    response = httpx.post(
        f"{session.endpoints.emulator_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {session.stack.emulator.api_key}"},
        json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this frame?"},
            {"type": "image_url", "image_url": {"url": data_url}}]}]},
        timeout=30)
    response.raise_for_status()
    body = response.json()
    print("Emulator round trip (POST /v1/chat/completions, one 640x360 frame):")
    print(f"  answer          {body['choices'][0]['message']['content'][:100]}")
    print(f"  usage           {body['usage']}")


def command_args(*argv: str) -> argparse.Namespace:
    """A command's arguments as the CLI parses them (every option with its default)."""
    from vidpipe_local.cli import build_parser

    return build_parser().parse_args(list(argv))


def run(args) -> int:
    from vidpipe.spend.ledger import Ledger
    from vidpipe_local import samples
    from vidpipe_local.commands import analyze, generate
    from vidpipe_local.commands.spend import render_spend
    from vidpipe_local.logs import log_to
    from vidpipe_local.stack.session import stack_session

    args.out.mkdir(parents=True, exist_ok=True)
    log = log_to(args.out / "vidpipe.log", pin=True)
    with stack_session(time_scale=args.time_scale) as session:
        session.announce()
        show_stack(session)
        print()
        emulator_round_trip(session)
        print()
        video = args.out / "sample.mp4"
        truth = samples.demo_video(video)
        print(f"Analyzing {video} ({truth.duration_s:.0f} s, {len(truth.shots)} shots) with --sampling scene:")
        analyze.run(command_args("analyze", str(video), "--sampling", "scene", "--out", str(args.out / "analysis"),
                                 "--timeout", "600"))
        print()
        print("Generating a slow-motion clip:")
        generate.run(command_args(
            "generate", "--prompt", "a drop of milk falling into a cup of coffee, splash crown", "--mode",
            "slow_motion", "--duration", "2", "--fps", "24", "--resolution", "320x180", "--enhance",
            "--max-cost-usd", "1", "--out", str(args.out / "generation"), "--timeout", "600"))
        print()
        print("Spend (from the ledger):")
        ledger = Ledger(session.settings.table_name, client=session.client("dynamodb"))
        print(render_spend(ledger, by="model", to_wall=session.real_time))
    if log:
        print(f"\nLog: {log}")
    return 0
