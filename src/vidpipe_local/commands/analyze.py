"""`vidpipe analyze VIDEO`: upload to the local media bucket and let the real
flow run (notification → ingest queue → start_jobs → Analysis state machine).

The same bytes with the same options are the same job (vidpipe.start_jobs.
upload_job_id): analyzing them again shows that job's report, and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vidpipe_local.cli import add_common_options

REPORT_FILES = ("report.json", "report.md", "report.html", "contact_sheet.jpg")


def register(sub) -> None:
    p = sub.add_parser("analyze", help="analyze a video on the local stack")
    p.add_argument("video", type=Path)
    p.add_argument("--sampling", choices=["uniform", "scene", "keyframes"])
    p.add_argument("--fps", type=float, help="frames per second for uniform sampling")
    p.add_argument("--model", help="chat model (default: the template's ChatModel)")
    p.add_argument("--budget-usd", type=float, help="the most this job may spend")
    p.add_argument("--out", type=Path, help="where to copy the report files and write vidpipe.log "
                                            "(default: out/<job id>)")
    p.add_argument("--provider-url", help="a real OpenAI-compatible gateway (AWS stays local)")
    p.add_argument("--api-key-env", default="VIDPIPE_CHAT_API_KEY",
                   help="environment variable holding the gateway's API key (default VIDPIPE_CHAT_API_KEY)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the job")
    add_common_options(p)
    p.set_defaults(func=run)


def stack_options(args) -> dict:
    if not args.provider_url:
        return {}
    return {"parameter_overrides": {"ChatBaseUrl": args.provider_url},
            "provider_keys": {"chat_api_key": os.environ.get(args.api_key_env, "")}}


def chosen_options(args) -> dict:
    return {k: v for k, v in {"sampling": args.sampling, "fps": args.fps, "model": args.model,
                              "budget_usd": args.budget_usd}.items() if v is not None}


def run(args) -> int:
    from pydantic import ValidationError

    from vidpipe.analysis.models import AnalysisOptions
    from vidpipe.jobs import TERMINAL
    from vidpipe.start_jobs import OPTIONS_METADATA_KEY, upload_job_id
    from vidpipe_local.cli import CommandError, fail_with_log
    from vidpipe_local.logs import log_to
    from vidpipe_local.progress import Progress, download_outputs, failure_line
    from vidpipe_local.stack.session import NoStack, stack_session

    if not args.video.is_file():
        raise CommandError(f"{args.video}: no such file", 2)
    if args.provider_url and not os.environ.get(args.api_key_env, "").strip():
        raise CommandError(f"--provider-url needs an API key: the variable {args.api_key_env} is empty "
                           "(set it, or name another with --api-key-env)", 2)
    options = chosen_options(args)
    try:
        validated = AnalysisOptions.model_validate(options)
    except ValidationError as exc:
        raise CommandError(f"invalid option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", 2) from None
    if args.out:
        log_to(args.out / "vidpipe.log")
    body = args.video.read_bytes()
    try:
        with stack_session(stack_url=getattr(args, "stack", None), **stack_options(args)) as session:
            session.announce()
            key = f"uploads/{args.video.name}"
            job_id = upload_job_id(session.bucket, key, hashlib.md5(body).hexdigest(), validated)
            out = args.out or Path("out") / job_id
            log = log_to(out / "vidpipe.log")
            existing = session.jobs.get(job_id)
            if existing:
                print(f"same video and options as job {job_id}: showing its report")
            else:
                put = session.client("s3").put_object(
                    Bucket=session.bucket, Key=key, Body=body,
                    Metadata={OPTIONS_METADATA_KEY: json.dumps(options)} if options else {})
                job_id = upload_job_id(session.bucket, key, put["ETag"], validated)
            job = existing
            if not job or job.get("status") not in TERMINAL:
                with Progress(session, "analysis", job_id) as progress:
                    try:
                        job = session.wait_for_job(job_id, args.timeout, on_progress=progress)
                    except TimeoutError:
                        raise fail_with_log(f"job {job_id} did not finish within {args.timeout:g}s") from None
            if job["status"] != "SUCCEEDED":
                raise fail_with_log(failure_line(job))
            files = download_outputs(session, {name: f"reports/{job_id}/{name}" for name in REPORT_FILES}, out,
                                     optional=("report.html", "contact_sheet.jpg"))
    except NoStack as exc:
        raise CommandError(str(exc), 2) from None
    report = json.loads(files[0].read_text())
    print(summary_line(report))
    for line in report_notes(report):
        print(f"  {line}")
    for path in files:
        print(f"  {path}")
    if log:
        print(f"  {log} (log)")
    return 0


def summary_line(report: dict) -> str:
    from vidpipe.analysis.report_html import plural

    spend, sampling = report.get("spend", {}), report.get("sampling", {})
    return (f"analysis {report['job_id']} SUCCEEDED: {plural(len(report.get('scenes', [])), 'scene')}, "
            f"{plural(sampling.get('frames_analyzed', 0), 'frame')} analyzed by {report.get('model')} "
            f"({sampling.get('strategy')} sampling), {plural(spend.get('calls', 0), 'call')}, "
            f"{spend.get('input_tokens', 0):,} input tokens, ${spend.get('cost_usd', 0)}")


def report_notes(report: dict) -> list[str]:
    from vidpipe.analysis.report_html import anomaly_notes

    notes = ["answers from the provider emulator (not a model)"] if report.get("emulated") else []
    return notes + anomaly_notes(report)
