"""Building answers: JSON, errors, and the two broken-body faults."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

from vidpipe_local.emulator.errors import ApiError


def json_response(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def error_response(exc: ApiError) -> Response:
    response = json_response(exc.body(), status=exc.status)
    response.headers.update(exc.headers)
    return response


def malformed(response: Response) -> Response:
    """The same status and headers, half the body: broken JSON, an MP4 that does not decode."""
    body = response.get_data()
    broken = Response(body[: len(body) // 2], status=response.status_code, mimetype=response.mimetype)
    broken.headers.update({k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")})
    return broken


def truncated(response: Response) -> Response:
    """Content-Length promises the whole body; half is sent, then the connection closes
    (the server closes every connection after one answer)."""
    body = response.get_data()
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    cut = Response(iter([body[: len(body) // 2]]), status=response.status_code, headers=headers, direct_passthrough=True)
    cut.headers["Content-Length"] = str(len(body))
    return cut
