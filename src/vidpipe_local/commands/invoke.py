"""`vidpipe invoke FUNCTION --event FILE`: the Docker-free `sam local invoke`.

Takes the same logical IDs (StartJobsFunction, ...) and the event files in
events/, and runs the function's handler on the local stack.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vidpipe_local.cli import add_common_options


def register(sub) -> None:
    parser = sub.add_parser("invoke", help="run one function with an event file (like sam local invoke)")
    parser.add_argument("function", help="logical ID from template.yaml, e.g. StartJobsFunction")
    parser.add_argument("--event", "-e", required=True, help="event JSON file, e.g. events/start_jobs_upload.json")
    add_common_options(parser)
    parser.set_defaults(func=run)


def render_event(text: str, session) -> dict:
    """Event files use the local stack's names through placeholders."""
    for placeholder, value in {"{{MEDIA_BUCKET}}": session.bucket, "{{JOBS_TABLE}}": session.table}.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def run(args) -> int:
    from vidpipe_local.cli import CommandError
    from vidpipe_local.logs import log_to
    from vidpipe_local.stack.session import NoStack, stack_session
    from vidpipe_local.state import log_file

    event_text = Path(args.event).read_text()
    log_to(log_file("vidpipe.log"))
    try:
        return _invoke(args, event_text)
    except NoStack as exc:
        raise CommandError(str(exc), 2) from None


def _invoke(args, event_text: str) -> int:
    from vidpipe_local.cli import CommandError
    from vidpipe_local.stack.session import stack_session

    with stack_session(stack_url=getattr(args, "stack", None)) as session:
        session.announce(sys.stderr)
        functions = {f["FunctionName"].removeprefix(f"{session.endpoints.stack_name}-"): f["FunctionName"]
                     for f in session.client("lambda").list_functions()["Functions"]}
        if args.function not in functions:
            raise CommandError(f"no function {args.function!r}; one of: {', '.join(sorted(functions))}", 2)
        response = session.client("lambda").invoke(FunctionName=functions[args.function],
                                                   Payload=json.dumps(render_event(event_text, session)))
        payload = json.loads(response["Payload"].read() or b"null")
    json.dump(payload, sys.stdout, indent=2, default=str)
    print()
    return 1 if "FunctionError" in response else 0
