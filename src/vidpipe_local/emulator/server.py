"""The provider emulator: a threaded HTTP server on 127.0.0.1 that speaks the
AI providers' own wire shapes: chat completions, streamed or not (chat.py,
chat_stream.py), the model list (model_catalog.py) and the two video APIs
(video_api.py).

Every provider request goes through the same gate, in this order: bearer
key check (401; every /v1 path), a configured fault (faults.py), the
requests-per-minute limit (429 + Retry-After), then the endpoint itself.
Control endpoints (no key, not recorded)::

    GET  /_emulator/calls          {"calls": [...]}
    GET  /_emulator/bill           {"items": [...], "totals": {...}}: what a provider would charge (bill.py)
    GET  /_emulator/faults         {"faults": [...]}
    POST /_emulator/faults         {"spec": "chat:429:times=3"} | a fault object | a list of either
    DELETE /_emulator/faults       remove all faults
    POST /_emulator/reset          forget calls, faults, jobs, rate windows and the bill

Billing rules (what is charged under each fault): bill.py and docs/emulator-bill.md.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import struct
import threading

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from vidpipe_local.clock import Clock, ScaledClock
from vidpipe_local.emulator import chat, model_catalog
from vidpipe_local.emulator.bill import Bill, ChatCharge
from vidpipe_local.emulator.calls import CLIENT_REQUEST_ID_HEADER, Call, CallLog
from vidpipe_local.emulator.chat_stream import sse_response
from vidpipe_local.emulator.errors import ApiError
from vidpipe_local.emulator.faults import JOB_KINDS, Fault, Faults, FaultSpecError
from vidpipe_local.emulator.rate_limit import RateLimiter
from vidpipe_local.emulator.responses import error_response, json_response, malformed, truncated
from vidpipe_local.emulator.video_api import VideoApi
from vidpipe_local.emulator.video_jobs import JobStore

log = logging.getLogger("vidpipe_local.emulator")

# route name -> (endpoint kind used by faults, rate limits and call records)
_ROUTES = {
    "chat": ("/v1/chat/completions", ["POST"], "chat"),
    "models.list": ("/v1/models", ["GET"], "models"),
    "models.retrieve": ("/v1/models/<path:model_id>", ["GET"], "models"),
    "generic.submit": ("/v1/video/generate", ["POST"], "video.submit"),
    "generic.status": ("/v1/video/generations/<job_id>", ["GET"], "video.status"),
    "generic.cancel": ("/v1/video/generations/<job_id>/cancel", ["POST"], "video.cancel"),
    "generic.delete": ("/v1/video/generations/<job_id>", ["DELETE"], "video.cancel"),
    "generic.download": ("/files/videos/<job_id>.mp4", ["GET"], "video.download"),
    "openai.submit": ("/v1/videos", ["POST"], "video.submit"),
    "openai.list": ("/v1/videos", ["GET"], "video.list"),
    "openai.status": ("/v1/videos/<job_id>", ["GET"], "video.status"),
    "openai.delete": ("/v1/videos/<job_id>", ["DELETE"], "video.cancel"),
    "openai.content": ("/v1/videos/<job_id>/content", ["GET"], "video.download"),
    "control.calls": ("/_emulator/calls", ["GET"], None),
    "control.bill": ("/_emulator/bill", ["GET"], None),
    "control.faults": ("/_emulator/faults", ["GET", "POST", "DELETE"], None),
    "control.reset": ("/_emulator/reset", ["POST"], None),
}
_URL_MAP = Map([Rule(path, methods=methods, endpoint=name) for name, (path, methods, _) in _ROUTES.items()])


class ResetConnection(ConnectionResetError):
    """Raised by the app to make the server drop the connection with a TCP RST."""


class Emulator:
    """``with Emulator(clock=VirtualClock()) as emu:`` serves on a free port.

    ``api_key=None`` turns the key check off; ``rpm_limit`` applies per
    endpoint kind on the emulator clock; ``default_eta_s`` is a video job's
    ETA in emulator seconds unless the request picks one. Job progress,
    call timestamps and rate windows all read ``clock.now()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = "local-emulator-key",
        clock: Clock | None = None,
        rpm_limit: int | None = None,
        default_eta_s: float = 30.0,
    ):
        self.host = host
        self.api_key = api_key  # None: no key check
        self.clock = clock or ScaledClock(1.0)
        self.rpm_limit = rpm_limit  # per endpoint kind; None: unlimited
        self.faults = Faults()
        self.jobs = JobStore()
        self._port = port
        self._calls = CallLog()
        self._rate = RateLimiter()
        self._bill = Bill()
        self._video = VideoApi(self.jobs, self._bill, default_eta_s, lambda: self.url)
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server(self.host, self._port, self._wsgi, threaded=True, request_handler=_RequestHandler)
        # A short poll interval keeps stop() fast (tests start one emulator each).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="provider-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # releases requests held by latency/timeout faults
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- public state -------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def chat_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def video_base_url(self) -> str:
        return self.url

    @property
    def calls(self) -> list[Call]:
        return self._calls.snapshot()

    def bill(self) -> dict:
        """What a real provider would charge so far, read on the emulator clock (bill.py)."""
        return self._bill.read(self.clock.now())

    def reset(self) -> None:
        self._calls.clear()
        self.faults.clear()
        self.jobs.clear()
        self._rate.clear()
        self._bill.clear()

    # -- request handling ---------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            name, args = _URL_MAP.bind_to_environ(environ).match()
        except NotFound:
            response = error_response(ApiError(404, f"no route {request.method} {request.path}", code="not_found"))
        except MethodNotAllowed:
            response = error_response(ApiError(405, f"{request.method} not allowed on {request.path}"))
        else:
            response = self._control(name, request) if name.startswith("control.") else self._provider(name, args, request)
        return response(environ, start_response)

    def _provider(self, name: str, args: dict, request: Request) -> Response:
        now = self.clock.now()
        call = Call(kind=_ROUTES[name][2], method=request.method, path=request.path, timestamp=now,
                    client_request_id=request.headers.get(CLIENT_REQUEST_ID_HEADER))
        try:
            response = self._gated(name, args, request, call, now)
        except ApiError as exc:
            response = error_response(exc)
        except ResetConnection:
            self._calls.append(call)
            raise
        except Exception as exc:  # an emulator bug: answer like a provider would, keep the traceback
            log.exception("emulator error on %s %s", request.method, request.path)
            response = error_response(ApiError(500, f"emulator error: {type(exc).__name__}", type_="server_error"))
        call.status = response.status_code
        self._calls.append(call)
        return response

    def _gated(self, name: str, args: dict, request: Request, call: Call, now: float) -> Response:
        if request.path.startswith("/v1/"):
            self._check_key(request)
        fault = self.faults.take(call.kind)
        if fault is not None:
            call.fault = fault.kind
            self._fire_before(fault)
        if self.rpm_limit:
            retry_after = self._rate.admit(call.kind, now, self.rpm_limit)
            if retry_after is not None:
                raise ApiError(
                    429,
                    f"Rate limit reached: {self.rpm_limit} requests per minute on {call.kind}",
                    type_="requests",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(retry_after)},
                )
        job_fault = fault if fault is not None and fault.kind in JOB_KINDS else None
        response = self._route(name, args, request, call, now, job_fault)
        if fault is not None and fault.kind == "malformed":
            return malformed(response)
        if fault is not None and fault.kind == "truncate":
            return truncated(response)
        return response

    def _check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise ApiError(
                401,
                "Incorrect or missing API key; send 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _fire_before(self, fault: Fault) -> None:
        """The part of a fault that replaces or delays the answer."""
        if fault.is_status:
            status = int(fault.kind)
            headers = {"Retry-After": f"{fault.retry_after:g}"} if status in (429, 503) else {}
            type_ = "requests" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
            code = "rate_limit_exceeded" if status == 429 else None
            raise ApiError(status, f"injected fault: HTTP {status}", type_=type_, code=code, headers=headers)
        if fault.kind == "reset":
            raise ResetConnection("injected fault: connection reset")
        if fault.kind == "latency":
            self._stopping.wait(fault.delay_s)
        elif fault.kind == "timeout":
            self._stopping.wait(fault.hold_s)

    def _route(self, name: str, args: dict, request: Request, call: Call, now: float, job_fault: Fault | None) -> Response:
        video = self._video
        job_id = args.get("job_id", "")
        if name == "chat":
            body = _json_body(request)
            call.model = body.get("model") if isinstance(body.get("model"), str) else None
            result = chat.complete(body, now)
            call.image_signatures = result.signatures
            call.prompt_tokens, call.completion_tokens = result.prompt_tokens, result.completion_tokens
            # Generated, so billed: whatever a fault does to the body from here on.
            self._bill.charge_chat(ChatCharge(result.id, call.client_request_id, result.model,
                                              result.prompt_tokens, result.completion_tokens, now))
            if result.streamed:
                return sse_response(result.body, result.include_usage)
            return json_response(result.body)
        if name == "models.list":
            return json_response(model_catalog.model_list())
        if name == "models.retrieve":
            return json_response(model_catalog.model_object(args["model_id"]))
        if name == "openai.list":
            return video.openai_list(request, now)
        if name == "generic.submit":
            return video.generic_submit(request, _json_body(request), call, now, job_fault)
        if name == "openai.submit":
            return video.openai_submit(request, _form_or_json_body(request), call, now, job_fault)
        if name == "generic.status":
            return video.generic_status(job_id, call, now)
        if name in ("generic.cancel", "generic.delete"):
            return video.generic_cancel(job_id, call, now)
        if name == "generic.download":
            return video.generic_download(request, job_id, call, now)
        if name == "openai.status":
            return video.openai_status(job_id, call, now)
        if name == "openai.delete":
            return video.openai_delete(job_id, call, now)
        return video.openai_content(request, job_id, call, now)

    def _control(self, name: str, request: Request) -> Response:
        if name == "control.calls":
            return json_response({"calls": [c.to_dict() for c in self.calls]})
        if name == "control.bill":
            return json_response(self.bill())
        if name == "control.reset":
            self.reset()
            return json_response({"reset": True})
        if request.method == "POST":
            try:
                self._add_faults(json.loads(request.get_data() or b"null"))
            except (ValueError, TypeError) as exc:  # FaultSpecError is a ValueError
                return error_response(ApiError(400, f"bad fault: {exc}"))
            return json_response({"faults": self.faults.list()}, status=201)
        if request.method == "DELETE":
            self.faults.clear()
        return json_response({"faults": self.faults.list()})

    def _add_faults(self, body: object) -> None:
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, str):
                self.faults.add_spec(item)
            elif isinstance(item, dict) and set(item) == {"spec"}:
                self.faults.add_spec(str(item["spec"]))
            elif isinstance(item, dict):
                self.faults.add(**item)
            else:
                raise FaultSpecError("send a spec string, {'spec': ...}, a fault object or a list of them")


class _RequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path only: generic download URLs carry a token in the query.
        log.info("%s %s %s", self.command, self.path.split("?", 1)[0], code)

    def log(self, type: str, message: str, *args) -> None:
        log.log(logging.ERROR if type == "error" else logging.INFO, message.rstrip(), *args)

    def connection_dropped(self, error: BaseException, environ=None) -> None:
        if isinstance(error, ResetConnection):
            # Linger 0 turns close() into an abortive close: the client gets a RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()


def _json_body(request: Request) -> dict:
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError as exc:
        raise ApiError(400, "We could not parse the JSON body of your request.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _form_or_json_body(request: Request) -> dict:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return request.form.to_dict()
    return _json_body(request)
