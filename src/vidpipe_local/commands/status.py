"""`vidpipe status [JOB]`: one job's record, or the latest jobs, on the stack
`vidpipe local up` serves (with none up it says so at once)."""

from __future__ import annotations

import json
import sys

from vidpipe_local.cli import add_common_options


def register(sub) -> None:
    p = sub.add_parser("status", help="show a job (or the most recent jobs) on the local stack")
    p.add_argument("job_id", nargs="?")
    add_common_options(p)
    p.set_defaults(func=run)


def require_served_stack(stack_url: str | None) -> None:
    """Fail fast (no stack is built) when no `vidpipe local up` is there to ask."""
    from vidpipe_local.cli import CommandError
    from vidpipe_local.state import live_states, state_dir

    if stack_url and not live_states(stack_url):
        raise CommandError(f"no vidpipe stack answers at {stack_url} (state files in {state_dir()})", 2)
    if not stack_url and not live_states():
        raise CommandError(f"no local stack is up, so there is nothing to show (`vidpipe local up` starts one; "
                           f"state files in {state_dir()})")


def run(args) -> int:
    require_served_stack(args.stack)
    from vidpipe.jobs import from_item, json_safe
    from vidpipe_local.cli import CommandError
    from vidpipe_local.stack.session import NoStack, stack_session

    try:
        with stack_session(stack_url=args.stack) as session:
            session.announce(sys.stderr)
            if args.job_id:
                job = session.jobs.get(args.job_id)
                if not job:
                    raise CommandError(f"no such job: {args.job_id}")
                print(json.dumps(json_safe(job), indent=2, sort_keys=True))
                return 0
            # A local stack holds few items; a real account would use a GSI on status.
            items = session.client("dynamodb").scan(TableName=session.table, FilterExpression="sk = :j",
                                                    ExpressionAttributeValues={":j": {"S": "JOB"}})["Items"]
    except NoStack as exc:
        raise CommandError(str(exc), 2) from None
    jobs = sorted((from_item(i) for i in items), key=lambda j: j.get("created_at", ""), reverse=True)
    if not jobs:
        print("no jobs yet")
    for job in jobs[:20]:
        reason = (job.get("error") or {}).get("reason", "")
        print(f"{job['job_id']:<50} {job.get('kind', ''):<11} {job['status']:<10} {reason[:80]}")
    return 0
