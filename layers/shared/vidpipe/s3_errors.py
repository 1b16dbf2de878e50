"""What an S3 ClientError means for a step: a missing object, or a refused action.

S3 answers a request for a missing key with 404 only when the caller may
``s3:ListBucket``; otherwise it says 403, exactly as for a permission that is
not granted. The functions that read S3 are granted ListBucket (template.yaml),
so here 403 is a permissions problem, reported naming the action and the
object, never taken for "not found".
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from vidpipe.errors import VidpipeError

MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})


class S3AccessDenied(VidpipeError):
    """S3 refused an action: the function's role lacks a permission. Never retried."""


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_missing(exc: ClientError) -> bool:
    return error_code(exc) in MISSING_CODES


def check_access(exc: ClientError, action: str, bucket: str, key: str) -> None:
    """Raise ``S3AccessDenied`` naming ``action`` on the object when ``exc`` is a 403."""
    if error_code(exc) in DENIED_CODES:
        raise S3AccessDenied(
            f"{action} on s3://{bucket}/{key} was denied ({error_code(exc)}): the function's role lacks "
            f"{action} there (or s3:ListBucket, without which S3 reports a missing object as denied)",
            action=action, bucket=bucket, key=key) from exc
