"""``vidpipe emulator``: run the provider emulator in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from vidpipe_local.cli import CommandError, stop_on_ctrl_c_or_kill
from vidpipe_local.clock import ScaledClock


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run the AI provider emulator (chat + video generation) until Ctrl-C",
        description="Serve OpenAI-compatible chat completions and async video generation on 127.0.0.1. "
        "Clients authenticate with 'Authorization: Bearer KEY'; the emulator accepts only the key of "
        "--api-key (default local-emulator-key) and answers 401 to any other.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    parser.add_argument("--api-key", default="local-emulator-key",
                        help="the only bearer key the emulator accepts (default local-emulator-key)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="provider seconds per real second (job progress)")
    parser.add_argument("--eta", type=float, default=30.0, help="video job ETA in provider seconds (default 30)")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute per endpoint before 429")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="ENDPOINT:KIND[:key=value,...], e.g. chat:429:times=3,retry_after=2 (repeatable)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="NAME",
        help="also serve a provider NAME under /p/NAME/ with its own faults and jobs (repeatable; "
        "fault it with POST /p/NAME/_emulator/faults); for fallback across providers (docs/routing.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: OpenCV and PyAV load slowly and other subcommands do not need them.
    from vidpipe_local.emulator import Emulator, FaultSpecError

    if args.time_scale <= 0:
        raise CommandError("--time-scale must be positive", exit_code=2)
    stop_on_ctrl_c_or_kill()
    emulator = Emulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        clock=ScaledClock(args.time_scale),
        rpm_limit=args.rpm,
        default_eta_s=args.eta,
    )
    try:
        for name in args.provider:
            emulator.add_provider(name)
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=2) from exc
    try:
        for spec in args.fault:
            emulator.faults.add_spec(spec)
    except FaultSpecError as exc:
        raise CommandError(str(exc), exit_code=2) from exc
    if not args.quiet:  # the request log is this command's output (the CLI routes other logs to a file)
        request_log = logging.StreamHandler(sys.stdout)
        request_log.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logging.getLogger("vidpipe_local.emulator").addHandler(request_log)
    try:
        emulator.start()
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    try:
        print(f"provider emulator on {emulator.url}  (time scale {args.time_scale:g}x)")
        print(f"  api key          {args.api_key}   (the only key accepted: 'Authorization: Bearer {args.api_key}')")
        print(f"  chat base URL    {emulator.chat_base_url}   POST /chat/completions (stream too), GET /models")
        print(f"  OpenAI videos    {emulator.chat_base_url}   POST|GET /videos, GET /videos/ID, "
              "GET /videos/ID/content?variant=video|thumbnail|spritesheet")
        print(f"  video base URL   {emulator.video_base_url}   POST /v1/video/generate, GET /v1/video/generations/ID")
        print(f"  control          {emulator.url}/_emulator/calls | /bill | /faults | /reset")
        for name in args.provider:
            print(f"  provider {name:<8} {emulator.provider_url(name)}   the same APIs; its control under "
                  f"{emulator.provider_url(name)}/_emulator/")
        for fault in emulator.faults.list():
            print(f"  fault            {fault['endpoint']}:{fault['kind']} times={fault['times'] or 'always'}")
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        emulator.stop()
    return 0
