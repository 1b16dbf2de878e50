"""CompactError: a Catch's {"Error", "Cause"} cut to {error, reason} for a fan-out result.

A Cause holds a whole Lambda error document (stack trace included); a segment
that hands it back to the Map multiplies it by the number of segments and the
state outgrows Step Functions' 256 KiB. The reason is the error's one readable
line (redacted, as FinalizeJob reports it), cut to REASON_CHARS.
"""

from vidpipe.finalize import explain
from vidpipe.observability import lambda_handler

REASON_CHARS = 300
ERROR_CHARS = 100


def compact(error: dict | None) -> dict:
    explained = explain(error)
    reason = explained["reason"]
    if len(reason) > REASON_CHARS:
        reason = reason[:REASON_CHARS - 1] + "…"
    return {"error": explained["error"][:ERROR_CHARS], "reason": reason}


@lambda_handler
def handler(event, context):
    return compact(event.get("error"))
