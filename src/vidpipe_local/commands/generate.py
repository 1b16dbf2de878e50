"""`vidpipe generate`: send job messages to the local jobs queue and let the
real path run (queue → start_jobs → Generation state machine → emulator)."""

from __future__ import annotations

import json
from pathlib import Path

from vidpipe_local.cli import add_common_options


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate videos on the local stack")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="what to generate")
    source.add_argument("--file", type=Path, help="a JSONL file of job messages (a batch)")
    p.add_argument("--mode", choices=["normal", "slow_motion", "time_lapse", "hyperlapse"], default="normal")
    p.add_argument("--duration", type=float, help="seconds")
    p.add_argument("--fps", type=int)
    p.add_argument("--resolution", help="WxH, e.g. 1280x720")
    p.add_argument("--enhance", action="store_true", help="rewrite the prompt with a cheap chat model first")
    p.add_argument("--max-cost-usd", type=float)
    p.add_argument("--tier", help="routing tier (docs/routing.md), e.g. draft, standard, premium")
    p.add_argument("--image", type=Path, help="a reference image (local file, uploaded under references/) the clip "
                   "starts from; with --file, the default for lines without reference_image")
    p.add_argument("--out", type=Path, help="folder for video.mp4, poster.jpg, job.json and vidpipe.log")
    p.add_argument("--timeout", type=float, default=900.0)
    add_common_options(p)
    p.set_defaults(func=run)


def messages_from(args) -> list[dict]:
    image = str(args.image) if getattr(args, "image", None) else None
    if args.file:
        lines = [line for line in args.file.read_text().splitlines() if line.strip()]
        messages = [json.loads(line) for line in lines]
        for message in messages:
            if isinstance(message, dict) and image and not message.get("reference_image"):
                message["reference_image"] = image
        return messages
    message = {"type": "generate", "prompt": args.prompt, "mode": args.mode, "enhance_prompt": args.enhance,
               "duration_s": args.duration, "fps": args.fps, "resolution": args.resolution,
               "max_cost_usd": args.max_cost_usd, "reference_image": image, "tier": args.tier}
    return [{k: v for k, v in message.items() if v is not None}]


def is_local_reference(value: object) -> bool:
    return isinstance(value, str) and not value.startswith(("s3://", "https://", "http://"))


def upload_references(session, messages: list[dict], base: Path) -> list[str | None]:
    """Upload each message's local ``reference_image`` (relative to ``base``) under references/
    (a content-addressed key: vidpipe.reference_image.reference_key) and put its s3:// URI in
    its place. Returns, per message, why its image cannot be used (None: fine)."""
    from vidpipe.errors import InputRejected
    from vidpipe.reference_image import check, reference_key

    problems: list[str | None] = []
    uploaded: dict[Path, str] = {}
    for message in messages:
        value = message.get("reference_image") if isinstance(message, dict) else None
        if not is_local_reference(value):
            problems.append(None)
            continue
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base / path
        if path not in uploaded:
            try:
                data = path.read_bytes()
                check(str(path), data)
            except OSError as exc:
                problems.append(f"reference_image: cannot read {path}: {exc.strerror}")
                continue
            except InputRejected as exc:
                problems.append(f"{exc.reason} ({path})")
                continue
            key = reference_key(data, path.name)
            session.client("s3").put_object(Bucket=session.bucket, Key=key, Body=data)
            uploaded[path] = f"s3://{session.bucket}/{key}"
        message["reference_image"] = uploaded[path]
        problems.append(None)
    return problems


def run(args) -> int:
    from vidpipe_local.cli import CommandError
    from vidpipe_local.logs import log_to
    from vidpipe_local.stack.session import NoStack

    messages = messages_from(args)
    log_to((args.out or Path("out")) / "vidpipe.log")
    try:
        return _generate(args, messages)
    except NoStack as exc:
        raise CommandError(str(exc), 2) from None


def _generate(args, messages: list[dict]) -> int:
    from vidpipe.generation.messages import InvalidJobMessage, execution_name, parse_job_message
    from vidpipe_local.cli import CommandError, fail_with_log
    from vidpipe_local.progress import Progress, download_outputs, failure_line, write_job_json
    from vidpipe_local.stack.session import stack_session

    with stack_session(stack_url=getattr(args, "stack", None)) as session:
        session.announce()
        base = args.file.parent if args.file else Path.cwd()
        problems = upload_references(session, messages, base)
        if len(messages) == 1 and problems[0]:
            raise CommandError(f"invalid job: {problems[0]}", 2)
        job_ids = []
        for message, problem in zip(messages, problems, strict=True):
            if problem:
                print(f"vidpipe: a message was not sent: {problem}")
                job_ids.append("")  # not sent: counted as a failure below
                continue
            body = json.dumps(message)
            try:
                job_ids.append(execution_name(parse_job_message(body)))
            except InvalidJobMessage as exc:
                if len(messages) == 1:
                    raise CommandError(f"invalid job: {exc.reason}", 2) from None
                job_ids.append(None)  # start_jobs records it as REJECTED; reported below
            session.client("sqs").send_message(QueueUrl=session.endpoints.jobs_queue_url, MessageBody=body)
        failures = 0
        for job_id in job_ids:
            if job_id == "":
                failures += 1
                continue
            if job_id is None:
                failures += 1
                print("a message was rejected: see `vidpipe status` for its reason")
                continue
            with Progress(session, "generation", job_id) as progress:
                try:
                    job = session.wait_for_job(job_id, args.timeout, on_progress=progress)
                except TimeoutError:
                    raise fail_with_log(f"job {job_id} did not finish within {args.timeout:g}s") from None
            out = (args.out or Path("out")) / job_id if len(job_ids) > 1 or not args.out else args.out
            write_job_json(job, out / "job.json")
            if job["status"] != "SUCCEEDED":
                if len(job_ids) == 1:
                    raise fail_with_log(failure_line(job))
                failures += 1
                print(f"vidpipe: {failure_line(job)}")
                continue
            files = download_outputs(session, {"video.mp4": f"outputs/{job_id}/video.mp4",
                                               "poster.jpg": f"outputs/{job_id}/poster.jpg"}, out)
            print(f"generation {job_id} SUCCEEDED")
            for path in [*files, out / "job.json"]:
                print(f"  {path}")
    return 1 if failures else 0
