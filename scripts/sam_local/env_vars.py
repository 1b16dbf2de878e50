"""Write `sam local invoke --env-vars` JSON for the stack `vidpipe local up` serves.

    python scripts/sam_local/env_vars.py http://172.17.0.1:4566 > env.local.json

Each function's variables are the ones the local stack gave it (it resolved the
template's Refs to its own table, bucket, queues, state machines, secret and the
provider emulator's URLs), read back from the stack's Lambda API, plus
AWS_ENDPOINT_URL, the stack's AWS endpoint. SAM passes on only the variables a
function declares in template.yaml (AWS_ENDPOINT_URL is declared in Globals, empty
on AWS); the rest of what the local stack sets in-process (vidpipe_local.stack.
LOCAL_FUNCTION_ENV) does not reach a container.

The stack must listen where containers reach it: `vidpipe local up --host` the
docker bridge address.
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def env_vars(aws_endpoint_url: str, stack_name: str = "vidpipe-local") -> dict[str, dict[str, str]]:
    """{LogicalId: {NAME: value}} for every function of the served stack."""
    client = boto3.client("lambda", region_name=REGION, endpoint_url=aws_endpoint_url, **CREDENTIALS)
    out: dict[str, dict[str, str]] = {}
    for page in client.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            logical_id = fn["FunctionName"].removeprefix(f"{stack_name}-")
            variables = dict(fn.get("Environment", {}).get("Variables", {}))
            variables["AWS_ENDPOINT_URL"] = aws_endpoint_url
            out[logical_id] = variables
    if not out:
        raise SystemExit(f"env_vars: the stack at {aws_endpoint_url} has no functions")
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("aws_endpoint_url", help="the AWS endpoint `vidpipe local up` printed")
    parser.add_argument("--stack-name", default="vidpipe-local")
    args = parser.parse_args(argv)
    json.dump(env_vars(args.aws_endpoint_url, args.stack_name), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
