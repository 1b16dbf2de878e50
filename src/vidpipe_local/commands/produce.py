"""`vidpipe produce` / `vidpipe approve` / `vidpipe reject`: productions on the local stack.

    vidpipe produce script.txt [--shots 8-12] [--approve] --out DIR

sends a produce message to the jobs queue (a .json file is sent as the message
itself), prints the storyboard as a table once it exists, then one line per
shot as it ends, then the episode's path. With ``--approve`` the production
waits for `vidpipe approve JOB [--storyboard edited.json]` or `vidpipe reject
JOB --reason ...` (which need a stack that stays up: `vidpipe local up`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from vidpipe_local.cli import add_common_options

MAX_INLINE_CHARS = 20_000
TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "PARTIAL")


def register(sub) -> None:
    p = sub.add_parser("produce", help="turn a script into a storyboard, shots and one episode video")
    p.add_argument("script", type=Path, help="a .txt / .md script, or a .json produce message")
    p.add_argument("--shots", default=None, help="shot count bounds, e.g. 8-12")
    p.add_argument("--title")
    p.add_argument("--style")
    p.add_argument("--resolution", help="WxH, e.g. 1280x720")
    p.add_argument("--fps", type=int)
    p.add_argument("--approve", action="store_true", help="wait for `vidpipe approve` before any video is paid")
    p.add_argument("--on-shot-failure", choices=["skip", "fail"])
    p.add_argument("--max-cost-usd", type=float)
    p.add_argument("--out", type=Path, help="folder for episode.mp4, storyboard.md, production.json, job.json")
    p.add_argument("--timeout", type=float, default=3600.0)
    add_common_options(p)
    p.set_defaults(func=run_produce)

    a = sub.add_parser("approve", help="approve a production's storyboard (optionally an edited one)")
    a.add_argument("job_id")
    a.add_argument("--storyboard", type=Path, help="an edited storyboard.json (validated again)")
    add_common_options(a)
    a.set_defaults(func=run_approve)

    r = sub.add_parser("reject", help="reject a production's storyboard: the production ends")
    r.add_argument("job_id")
    r.add_argument("--reason", required=True)
    add_common_options(r)
    r.set_defaults(func=run_reject)


# ---------------------------------------------------------------- produce
def message_from(args) -> dict:
    from vidpipe_local.cli import CommandError

    try:
        text = args.script.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {args.script}: {exc.strerror}", 2) from None
    if args.script.suffix.lower() == ".json":
        try:
            message = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"{args.script} is not JSON: {exc}", 2) from None
        message.setdefault("type", "produce")
    else:
        message = {"type": "produce", "script": text, "title": args.script.stem}
    if args.shots:
        low, _, high = args.shots.partition("-")
        try:
            message["min_shots"], message["max_shots"] = int(low), int(high or low)
        except ValueError:
            raise CommandError(f"--shots {args.shots}: expected MIN-MAX, e.g. 8-12", 2) from None
    extra = {"title": args.title, "style": args.style, "resolution": args.resolution, "fps": args.fps,
             "on_shot_failure": args.on_shot_failure, "max_cost_usd": args.max_cost_usd}
    message.update({k: v for k, v in extra.items() if v is not None})
    if args.approve:
        message["approve_storyboard"] = True
    return message


def run_produce(args) -> int:
    from vidpipe_local.cli import CommandError
    from vidpipe_local.logs import log_to
    from vidpipe_local.stack.session import NoStack

    message = message_from(args)
    log_to((args.out or Path("out")) / "vidpipe.log")
    try:
        return _produce(args, message)
    except NoStack as exc:
        raise CommandError(str(exc), 2) from None


def _produce(args, message: dict, stream=None) -> int:
    from vidpipe.generation.messages import InvalidJobMessage, execution_name, parse_job_message
    from vidpipe_local.cli import CommandError, fail_with_log
    from vidpipe_local.progress import download_outputs, failure_line, write_job_json
    from vidpipe_local.stack.session import stack_session

    stream = stream or sys.stdout
    with stack_session(stack_url=getattr(args, "stack", None)) as session:
        session.announce()
        if len(message.get("script", "")) > MAX_INLINE_CHARS:
            raise CommandError(f"the script has more than {MAX_INLINE_CHARS} characters: drop it under "
                               f"s3://{session.bucket}/scripts/ instead", 2)
        body = json.dumps(message)
        try:
            job_id = execution_name(parse_job_message(body, session.settings))
        except InvalidJobMessage as exc:
            raise CommandError(f"invalid production: {exc.reason}", 2) from None
        session.client("sqs").send_message(QueueUrl=session.endpoints.jobs_queue_url, MessageBody=body)
        print(f"production {job_id}", file=stream)
        out = args.out or Path("out") / job_id
        deadline = time.monotonic() + args.timeout
        board = None

        def storyboard_or_end(j: dict | None) -> bool:
            nonlocal board
            board = board or _storyboard(session, job_id)
            return board is not None or (bool(j) and j.get("status") in TERMINAL)

        job = _wait(session, job_id, deadline, storyboard_or_end)
        if board:
            print(storyboard_table(board), file=stream)
        if message.get("approve_storyboard") and job.get("status") not in TERMINAL:
            # The storyboard is stored a step before the wait's token: say "waiting" once it is.
            job = _wait(session, job_id, deadline,
                        lambda j: _token_item(session, job_id) is not None or (bool(j) and j.get("status") in TERMINAL))
        if message.get("approve_storyboard") and job.get("status") not in TERMINAL:
            print(f"waiting for approval: vidpipe approve {job_id} [--storyboard edited.json] | "
                  f"vidpipe reject {job_id} --reason ...", file=stream)
            write_job_json(job, out / "job.json")
            return 0  # the stack must stay up for the approval: `vidpipe local up`
        seen: dict[str, str] = {}

        def progress(j: dict | None) -> bool:
            for number, shot_id in enumerate((j or {}).get("shots") or [], 1):
                shot = session.jobs.get(shot_id) or {}
                status = shot.get("status", "PENDING")
                if status in TERMINAL and seen.get(shot_id) != status:
                    seen[shot_id] = status
                    cost = (shot.get("spend") or {}).get("cost_usd")
                    why = (shot.get("error") or {}).get("reason")
                    print(f"shot {number}/{len(j['shots'])} {status}" + (f" {cost} USD" if cost is not None else "")
                          + (f": {why}" if why else ""), file=stream)
            return bool(j) and j.get("status") in TERMINAL

        try:
            job = _wait(session, job_id, deadline, progress)
        except TimeoutError:
            raise fail_with_log(f"production {job_id} did not finish within {args.timeout:g}s") from None
        write_job_json(job, out / "job.json")
        if job["status"] not in ("SUCCEEDED", "PARTIAL"):
            raise fail_with_log(failure_line(job))
        prefix = f"productions/{job_id}/"
        files = download_outputs(session, {name: prefix + name for name in
                                           ("episode.mp4", "poster.jpg", "contact_sheet.jpg", "production.json",
                                            "storyboard.json", "storyboard.md")}, out,
                                 optional=("poster.jpg", "contact_sheet.jpg", "production.json"))
        print(f"production {job_id} {job['status']}" + (f": {job['error']['reason']}"
                                                         if job.get("error") else ""), file=stream)
        print(f"episode: {out / 'episode.mp4'}", file=stream)
        for path in files:
            print(f"  {path}", file=stream)
    return 0


def _wait(session, job_id: str, deadline: float, done) -> dict:
    while True:
        job = session.jobs.get(job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(job_id)
        time.sleep(0.2)


def _storyboard(session, job_id: str) -> dict | None:
    try:
        body = session.client("s3").get_object(Bucket=session.bucket,
                                               Key=f"productions/{job_id}/storyboard.json")["Body"].read()
    except session.client("s3").exceptions.NoSuchKey:  # not there (yet)
        return None
    return json.loads(body)


def storyboard_table(board: dict) -> str:
    rows = [("#", "scene", "s", "camera", "action", "characters")]
    for shot in board["shots"]:
        rows.append((str(shot["index"] + 1), str(shot["scene"] + 1), f"{shot['duration_s']:g}",
                     f"{shot['camera_angle']}, {shot['camera_movement']}"[:32], shot["action"][:60],
                     ", ".join(shot["characters"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"storyboard: {board['title']} ({len(board['shots'])} shots)"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += [f"clamp: {c}" for c in board.get("clamps") or []]
    return "\n".join(lines)


# ---------------------------------------------------------------- approve / reject
def _token_item(session, job_id: str) -> dict | None:
    """The item the approval wait stores its task token in (absent: not waiting)."""
    return session.client("dynamodb").get_item(TableName=session.table, ConsistentRead=True, Key={
        "pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "TOKEN"}}).get("Item")


def approval_token(session, job_id: str) -> str:
    from vidpipe_local.cli import CommandError

    item = _token_item(session, job_id)
    job = session.jobs.get(job_id)
    # A finished production may still hold its token item for a moment: it is not waiting either.
    if not item or job is None or job.get("status") in TERMINAL:
        state = "does not exist" if job is None else f"is {job.get('status')} and not waiting for approval"
        raise CommandError(f"production {job_id} {state}", 2)
    return item["token"]["S"]


def approval_payload(storyboard: dict | None) -> dict:
    """SendTaskSuccess output (docs/productions.md): {"approved": true, "storyboard": <storyboard.json> | null}."""
    return {"approved": True, "storyboard": storyboard}


def run_approve(args) -> int:
    from vidpipe_local.cli import CommandError
    from vidpipe_local.stack.session import stack_session

    edited = None
    if args.storyboard:
        try:
            edited = json.loads(args.storyboard.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the storyboard {args.storyboard}: {exc}", 2) from None
    with stack_session(stack_url=getattr(args, "stack", None)) as session:
        token = approval_token(session, args.job_id)
        if edited is not None:
            _check_edited(session, args.job_id, edited)
        session.client("stepfunctions").send_task_success(taskToken=token,
                                                          output=json.dumps(approval_payload(edited)))
    print(f"production {args.job_id} approved" + (" with the edited storyboard" if edited else ""))
    return 0


def _check_edited(session, job_id: str, edited: dict) -> None:
    """Fail fast here; ReserveProduction validates it again (the authority)."""
    from vidpipe.errors import InputRejected
    from vidpipe.generation.messages import ProduceJob
    from vidpipe.production.storyboard import validate_edited
    from vidpipe_local.cli import CommandError

    job = session.jobs.get(job_id) or {}
    try:
        validate_edited(edited, ProduceJob.model_validate(job["request"]))
    except InputRejected as exc:
        raise CommandError(exc.reason, 2) from None


def run_reject(args) -> int:
    from vidpipe_local.stack.session import stack_session

    with stack_session(stack_url=getattr(args, "stack", None)) as session:
        token = approval_token(session, args.job_id)
        session.client("stepfunctions").send_task_failure(taskToken=token, error="StoryboardRejected",
                                                          cause=args.reason[:1000])
    print(f"production {args.job_id} rejected")
    return 0
