"""`vidpipe local up`: serve the local stack on 127.0.0.1 until Ctrl-C.

It publishes its endpoints in a state file per port (vidpipe_local.state) so
the other commands of this checkout find it; its functions log to a file
beside it.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from urllib.parse import urlsplit

from vidpipe_local.cli import add_common_options


def register(sub) -> None:
    parser = sub.add_parser("local", help="the local AWS stack (moto + provider emulator)")
    local_sub = parser.add_subparsers(dest="local_command", required=True)
    up = local_sub.add_parser("up", help="serve the local stack on 127.0.0.1 until Ctrl-C")
    up.add_argument("--port", type=int, default=4566, help="AWS endpoint port (default 4566)")
    up.add_argument("--host", default="127.0.0.1",
                    help="address the AWS endpoint and the provider emulator listen on (default 127.0.0.1; "
                         "for Lambda containers, the docker bridge address, e.g. 172.17.0.1)")
    up.add_argument("--time-scale", type=float, default=30.0,
                    help="provider seconds per real second for ETAs and Wait states (default 30)")
    up.add_argument("--webhooks", action="store_true",
                    help="the emulator sends signed completion webhooks to the stack's function URL; jobs wait "
                         "for them instead of polling (docs/webhooks.md)")
    add_common_options(up, stack=False)
    up.set_defaults(func=run_up)


def local_queue_url(queue_url: str, aws_endpoint_url: str) -> str:
    """moto names queues like AWS (https://sqs.us-east-1.amazonaws.com/123456789012/name);
    the same path on the local endpoint is the URL that answers."""
    return aws_endpoint_url.rstrip("/") + urlsplit(queue_url).path


def run_up(args) -> int:
    import time

    from vidpipe_local.cli import CommandError, stop_on_ctrl_c_or_kill
    from vidpipe_local.clock import ScaledClock
    from vidpipe_local.logs import adopt_terminal_handlers, log_to
    from vidpipe_local.stack import LocalStack
    from vidpipe_local.state import live_states, state_dir, state_file, write_state

    if args.time_scale <= 0:
        raise CommandError("--time-scale must be positive", 2)
    stop_on_ctrl_c_or_kill()  # `kill` stops it as Ctrl-C does: state file removed
    if any(s["aws_endpoint_url"].endswith(f":{args.port}") for s in live_states()):
        raise CommandError(f"a local stack already serves port {args.port} (state files in {state_dir()})", 2)
    log = log_to(state_dir() / f"local-stack-{args.port}.log")
    adopt_terminal_handlers()
    started = time.time()
    stack = LocalStack(clock=ScaledClock(args.time_scale, start=started), server_port=args.port,
                       server_host=args.host, emulator_options={"host": args.host},
                       background_pollers=True, webhooks=getattr(args, "webhooks", False))
    try:
        stack.start()
    except OSError as exc:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    path = state_file(args.port)
    try:
        e = stack.endpoints()
        queue_url = local_queue_url(e.jobs_queue_url, e.aws_endpoint_url)
        write_state(args.port, {**asdict(e), "jobs_queue_url": queue_url, "clock_start": started, "log": str(log)})
        print(f"vidpipe local stack is up (time scale {args.time_scale:g}x)")
        print(f"  AWS endpoint     {e.aws_endpoint_url}")
        print(f"  media bucket     {e.bucket}")
        print(f"  jobs queue       {queue_url}")
        print(f"  jobs table       {e.table}")
        key = stack.emulator.api_key if stack.emulator else ""
        print(f"  emulator         {e.emulator_url}   API key {key} (send 'Authorization: Bearer {key}')")
        print(f"    chat           POST {e.emulator_url}/v1/chat/completions   (OpenAI SDK base_url "
              f"{e.emulator_url}/v1)")
        print(f"    video          POST {e.emulator_url}/v1/videos, POST {e.emulator_url}/v1/video/generate")
        print(f"    control        {e.emulator_url}/_emulator/calls | /bill | /faults | /reset")
        if stack.webhook_secret:
            print(f"  webhooks         {stack.function_url('ProviderWebhookFunction')}/<provider>   "
                  f"(the emulator signs them; mode: POST {e.emulator_url}/_emulator/webhooks)")
        print(f"  state file       {path}")
        print(f"  log              {log}")
        print("Try:")
        print(f"  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --region us-east-1 "
              f"--endpoint-url {e.aws_endpoint_url} s3 cp my.mp4 s3://{e.bucket}/uploads/my.mp4")
        print("  vidpipe analyze my.mp4    vidpipe generate --prompt '...'    vidpipe spend    vidpipe status")
        print("Ctrl-C to stop.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping the local stack")  # Ctrl-C is how it is meant to end: exit 0
    finally:
        path.unlink(missing_ok=True)
        stack.stop()
    return 0
