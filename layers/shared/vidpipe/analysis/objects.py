"""Whole-object JSON reads and writes in S3.

Every object is written with one put_object of its complete bytes, so a
reader sees either nothing or the whole document, never half of it.
"""

from __future__ import annotations

import json
from typing import TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from vidpipe.s3_errors import check_access, is_missing

M = TypeVar("M", bound=BaseModel)


def put_bytes(s3, bucket: str, key: str, body: bytes, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def put_json(s3, bucket: str, key: str, document: BaseModel | dict) -> None:
    if isinstance(document, BaseModel):
        body = document.model_dump_json().encode()
    else:
        body = json.dumps(document, ensure_ascii=False, indent=2).encode()
    put_bytes(s3, bucket, key, body, "application/json")


def get_bytes(s3, bucket: str, key: str) -> bytes:
    """The object's bytes; ``S3AccessDenied`` naming s3:GetObject and the object on a 403."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        # 403 is a permission the role lacks (s3:GetObject, or the s3:ListBucket that makes a missing
        # key a 404): reported as such, never taken for "not there" (vidpipe.s3_errors).
        check_access(exc, "s3:GetObject", bucket, key)
        raise


def get_model(s3, bucket: str, key: str, model: type[M]) -> M:
    return model.model_validate_json(get_bytes(s3, bucket, key))


def get_model_if_exists(s3, bucket: str, key: str, model: type[M]) -> M | None:
    try:
        return get_model(s3, bucket, key, model)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
