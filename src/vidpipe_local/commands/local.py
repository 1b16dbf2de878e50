"""`vidpipe local up`: serve the local stack on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import threading


def register(sub) -> None:
    parser = sub.add_parser("local", help="the local AWS stack (moto + provider emulator)")
    local_sub = parser.add_subparsers(dest="local_command", required=True)
    up = local_sub.add_parser("up", help="serve the local stack on 127.0.0.1 until Ctrl-C")
    up.add_argument("--port", type=int, default=4566, help="AWS endpoint port (default 4566)")
    up.add_argument("--time-scale", type=float, default=30.0,
                    help="provider seconds per real second for ETAs and Wait states (default 30)")
    up.set_defaults(func=run_up)


def run_up(args) -> int:
    from vidpipe_local.clock import ScaledClock
    from vidpipe_local.stack import LocalStack
    from vidpipe_local.stack.session import state_file

    stack = LocalStack(clock=ScaledClock(args.time_scale), server_port=args.port, background_pollers=True)
    with stack:
        path = state_file()
        stack.save_endpoints(path)
        e = stack.endpoints()
        print(f"vidpipe local stack is up (time scale {args.time_scale:g}x)")
        print(f"  AWS endpoint     {e.aws_endpoint_url}")
        print(f"  emulator         {e.emulator_url}  (chat: {e.emulator_url}/v1/chat/completions)")
        print(f"  media bucket     {e.bucket}")
        print(f"  jobs queue       {e.jobs_queue_url}")
        print(f"  jobs table       {e.table}")
        print("Try:")
        print(f"  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --region us-east-1 "
              f"--endpoint-url {e.aws_endpoint_url} s3 cp my.mp4 s3://{e.bucket}/uploads/my.mp4")
        print("  vidpipe analyze my.mp4    vidpipe generate --prompt '...'    vidpipe spend")
        print("Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping the local stack")  # Ctrl-C is how it is meant to end: exit 0
        finally:
            path.unlink(missing_ok=True)
    return 0
