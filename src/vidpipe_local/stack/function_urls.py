"""Lambda function URLs on 127.0.0.1: every function with ``FunctionUrlConfig`` in
template.yaml gets a small threaded HTTP server whose requests become function URL events
(payload format 2.0) for the in-process handler, through the same invocation path as
every other local invocation (timeout, concurrency, payload limits: lambdas.py).

The handler's answer maps back as Lambda does it for function URLs: a dict with
``statusCode`` gives the status, ``headers``, ``body`` (base64-decoded when
``isBase64Encoded``) and ``cookies``; any other value is a 200 with it as JSON. A function
error is a 502, a refused invocation (throttled) a 429, as a function URL answers.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from vidpipe_local.stack.lambdas import InProcessLambdas, RequestTooLarge, Throttled

_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded", "application/xml")


def function_url_event(method: str, target: str, headers: dict[str, str], body: bytes, *, source_ip: str,
                       domain: str, now_ms: int) -> dict:
    """The event a function URL hands its function (payload format version 2.0)."""
    parts = urlsplit(target)
    lower = {k.lower(): v for k, v in headers.items()}
    textual = any(lower.get("content-type", "").startswith(t) for t in _TEXT_TYPES)
    try:
        text, encoded = (body.decode(), False) if textual or not body else (base64.b64encode(body).decode(), True)
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    query: dict[str, str] = {}
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        query[key] = f"{query[key]},{value}" if key in query else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lower,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain.split(".", 1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {"method": method, "path": parts.path or "/", "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": lower.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now_ms / 1000)),
            "timeEpoch": now_ms,
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = query
    if text:
        event["body"] = text
    return event


def http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """How a function URL turns a handler's return value into the HTTP answer."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return int(result["statusCode"]), headers, data
    return 200, {"content-type": "application/json"}, json.dumps(result).encode()


class FunctionUrlServer:
    """One function's URL: ``http://127.0.0.1:<port>/``."""

    def __init__(self, lambdas: InProcessLambdas, function_name: str, arn: str, now_ms: Callable[[], int],
                 host: str = "127.0.0.1", port: int = 0):
        self.lambdas, self.function_name, self.arn, self.now_ms = lambdas, function_name, arn, now_ms
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = server.call(self.command, self.path, dict(self.headers.items()), body,
                                                    self.client_address[0])
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
                return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def call(self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
             ) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        host = headers.get("Host") or headers.get("host") or "localhost"
        event = function_url_event(method, target, headers, body, source_ip=source_ip, domain=host,
                                   now_ms=self.now_ms())
        try:
            result, errored = self.lambdas.invoke(self.function_name, event, self.arn)
        except Throttled:
            return 429, {"content-type": "application/json"}, b'{"Message": "Rate Exceeded."}'
        except RequestTooLarge:
            return 413, {"content-type": "application/json"}, b'{"Message": "Request Entity Too Large"}'
        if errored:
            return 502, {"content-type": "application/json"}, b'{"Message": "Internal Server Error"}'
        return http_response(result)

    def start(self) -> FunctionUrlServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"function-url-{self.function_name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
