"""Whole-object JSON reads and writes in S3.

Every object is written with one put_object of its complete bytes, so a
reader sees either nothing or the whole document, never half of it.
"""

from __future__ import annotations

import json
from typing import TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

# Without s3:ListBucket, S3 answers a GetObject for a missing key with 403
# rather than 404; the steps only read keys under prefixes they may read.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "AccessDenied", "403"})


def put_bytes(s3, bucket: str, key: str, body: bytes, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def put_json(s3, bucket: str, key: str, document: BaseModel | dict) -> None:
    if isinstance(document, BaseModel):
        body = document.model_dump_json().encode()
    else:
        body = json.dumps(document, ensure_ascii=False, indent=2).encode()
    put_bytes(s3, bucket, key, body, "application/json")


def get_bytes(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def get_model(s3, bucket: str, key: str, model: type[M]) -> M:
    return model.model_validate_json(get_bytes(s3, bucket, key))


def get_model_if_exists(s3, bucket: str, key: str, model: type[M]) -> M | None:
    try:
        return get_model(s3, bucket, key, model)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
