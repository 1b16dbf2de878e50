"""`vidpipe analyze VIDEO`: upload to the local media bucket and let the real
flow run (notification → ingest queue → start_jobs → Analysis state machine)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("analyze", help="analyze a video on the local stack")
    p.add_argument("video", type=Path)
    p.add_argument("--sampling", choices=["uniform", "scene", "keyframes"])
    p.add_argument("--fps", type=float, help="frames per second for uniform sampling")
    p.add_argument("--model", help="chat model (default: the template's ChatModel)")
    p.add_argument("--budget-usd", type=float, help="the most this job may spend")
    p.add_argument("--out", type=Path, help="where to copy report.json, report.md, contact_sheet.jpg")
    p.add_argument("--provider-url", help="a real OpenAI-compatible gateway (AWS stays local)")
    p.add_argument("--api-key-env", default="VIDPIPE_CHAT_API_KEY",
                   help="environment variable holding the gateway's API key (default VIDPIPE_CHAT_API_KEY)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the job")
    p.set_defaults(func=run)


def stack_options(args) -> dict:
    if not args.provider_url:
        return {}
    return {"parameter_overrides": {"ChatBaseUrl": args.provider_url},
            "provider_keys": {"chat_api_key": os.environ.get(args.api_key_env, "")}}


def run(args) -> int:
    from vidpipe.start_jobs import OPTIONS_METADATA_KEY, upload_job_id
    from vidpipe_local.cli import CommandError
    from vidpipe_local.progress import Progress, download_outputs, failure_line
    from vidpipe_local.stack.session import running_stack, stack_session

    if not args.video.is_file():
        raise CommandError(f"{args.video}: no such file", 2)
    if args.provider_url and running_stack():
        raise CommandError("--provider-url needs its own stack: stop `vidpipe local up` first", 2)
    options = {k: v for k, v in {"sampling": args.sampling, "fps": args.fps, "model": args.model,
                                 "budget_usd": args.budget_usd}.items() if v is not None}
    with stack_session(**stack_options(args)) as session:
        key = f"uploads/{args.video.name}"
        put = session.client("s3").put_object(
            Bucket=session.bucket, Key=key, Body=args.video.read_bytes(),
            Metadata={OPTIONS_METADATA_KEY: json.dumps(options)} if options else {})
        job_id = upload_job_id(session.bucket, key, put["ETag"])
        job = session.wait_for_job(job_id, args.timeout, on_progress=Progress(session, f"analysis {job_id}"))
        if job["status"] != "SUCCEEDED":
            raise CommandError(failure_line(job))
        out = args.out or Path("out") / job_id
        files = download_outputs(session, {name: f"reports/{job_id}/{name}"
                                           for name in ("report.json", "report.md", "contact_sheet.jpg")}, out)
    report = json.loads(files[0].read_text())
    print(f"analysis {job_id} SUCCEEDED: {len(report.get('scenes', []))} scenes, "
          f"{report.get('spend', {}).get('input_tokens', 0)} input tokens, ${report.get('spend', {}).get('cost_usd', 0)}")
    for path in files:
        print(f"  {path}")
    return 0
