"""`vidpipe status [JOB]`: one job's record, or the latest jobs."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("status", help="show a job (or the most recent jobs) on the local stack")
    p.add_argument("job_id", nargs="?")
    p.set_defaults(func=run)


def run(args) -> int:
    from vidpipe.jobs import from_item, json_safe
    from vidpipe_local.cli import CommandError
    from vidpipe_local.stack.session import stack_session

    with stack_session() as session:
        if args.job_id:
            job = session.jobs.get(args.job_id)
            if not job:
                raise CommandError(f"no job {args.job_id}")
            print(json.dumps(json_safe(job), indent=2, sort_keys=True))
            return 0
        # A local stack holds few items; a real account would use a GSI on status.
        items = session.client("dynamodb").scan(TableName=session.table, FilterExpression="sk = :j",
                                                ExpressionAttributeValues={":j": {"S": "JOB"}})["Items"]
        jobs = sorted((from_item(i) for i in items), key=lambda j: j.get("created_at", ""), reverse=True)
        for job in jobs[:20]:
            reason = (job.get("error") or {}).get("reason", "")
            print(f"{job['job_id']:<50} {job.get('kind', ''):<11} {job['status']:<10} {reason[:80]}")
    return 0
