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
    GET  /_emulator/webhooks       {"settings": {mode, delay_s, urls, ...}, "deliveries": [...]} (webhooks.py)
    POST /_emulator/webhooks       {"mode": "on|off|delayed|duplicated|forged", "delay_s": 60, "urls": {...}, "secret": ...}

Several providers on one server: ``Emulator(providers=("alpha", "beta"))``
also serves each named provider under ``/p/<name>/`` (the same API:
``/p/alpha/v1/video/generate``, ``/p/alpha/v1/videos``, ...), each with its
own faults and jobs (a job id of one is unknown to another), its calls and
bill items tagged ``provider: <name>``. Its control endpoints
``/p/<name>/_emulator/{calls,bill,faults}`` show and configure that provider
alone; ``emulator.provider(name)`` is the same in Python, and
``emulator.provider_url(name)`` its base URL. The root ``/_emulator/bill``
and ``/_emulator/calls`` list every provider's items.

Billing rules (what is charged under each fault): bill.py and docs/emulator-bill.md.
"""

from __future__ import annotations

import json
import logging
import re
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
from vidpipe_local.emulator.webhooks import WebhookSender

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
    "control.webhooks": ("/_emulator/webhooks", ["GET", "POST"], None),
}
_URL_MAP = Map([Rule(path, methods=methods, endpoint=name) for name, (path, methods, _) in _ROUTES.items()])


class ProviderSite:
    """One provider the server plays: its faults, its jobs and its video API (root: name None)."""

    def __init__(self, name: str | None, bill: Bill, default_eta_s: float, base_url, emulator: Emulator):
        self.name = name
        self.faults = Faults()
        self.jobs = JobStore()
        self.video = VideoApi(self.jobs, bill, default_eta_s, base_url, provider=name)
        self._emulator = emulator

    @property
    def calls(self) -> list[Call]:
        return [call for call in self._emulator.calls if call.provider == self.name]

    def bill(self) -> dict:
        return self._emulator.bill(provider=self.name)

    def reset(self) -> None:
        self.faults.clear()
        self.jobs.clear()


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
        providers: tuple[str, ...] | list[str] = (),
        # [WEBHOOKS] completion webhooks (webhooks.py): the URL registered per API, the signing secret, the mode
        webhook_urls: dict[str, str] | None = None,
        webhook_secret: str | None = None,
        webhook_mode: str = "on",
        webhook_delay_s: float = 60.0,
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
        self._root = ProviderSite(None, self._bill, default_eta_s, lambda: self.url, self)
        self._root.faults, self._root.jobs, self._root.video = self.faults, self.jobs, self._video
        self._sites: dict[str, ProviderSite] = {}
        self._default_eta_s = default_eta_s
        for name in providers:
            self.add_provider(name)
        self.webhooks = WebhookSender(self.clock, lambda: [self._root, *self._sites.values()], urls=webhook_urls,
                                      secret=webhook_secret, mode=webhook_mode, delay_s=webhook_delay_s)
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
        self.webhooks.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # releases requests held by latency/timeout faults
        self.webhooks.stop()
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

    def bill(self, provider: str | None = "*") -> dict:
        """What a real provider would charge so far, read on the emulator clock (bill.py);
        ``provider``: one named provider's items (None: the root provider's), default all."""
        return self._bill.read(self.clock.now(), provider)

    def add_provider(self, name: str) -> ProviderSite:
        """Serve another provider under ``/p/<name>/`` (its own faults and jobs)."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
            raise ValueError(f"provider name {name!r}: lowercase letters, digits, - and _")
        if name not in self._sites:
            self._sites[name] = ProviderSite(name, self._bill, self._default_eta_s,
                                             lambda: self.provider_url(name), self)
        return self._sites[name]

    def provider(self, name: str) -> ProviderSite:
        try:
            return self._sites[name]
        except KeyError:
            raise KeyError(f"no provider {name!r}; serving {sorted(self._sites)}") from None

    def provider_url(self, name: str) -> str:
        """The base URL of a named provider (video base URL; chat: + ``/v1``)."""
        return f"{self.url}/p/{name}"

    def reset(self) -> None:
        self._calls.clear()
        self.faults.clear()
        self.jobs.clear()
        self._rate.clear()
        self._bill.clear()
        self.webhooks.clear()
        for site in self._sites.values():
            site.reset()

    # -- request handling ---------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        site, path = self._root, request.path
        prefixed = re.match(r"^/p/([^/]+)(/.*)$", request.path)
        try:
            if prefixed:
                if prefixed[1] not in self._sites:
                    raise NotFound()
                site, path = self._sites[prefixed[1]], prefixed[2]
            name, args = _URL_MAP.bind_to_environ(environ).match(path_info=path)
        except NotFound:
            response = error_response(ApiError(404, f"no route {request.method} {request.path}", code="not_found"))
        except MethodNotAllowed:
            response = error_response(ApiError(405, f"{request.method} not allowed on {request.path}"))
        else:
            if name.startswith("control."):
                response = self._control(name, request, site)
            else:
                response = self._provider(name, args, request, site, path)
        return response(environ, start_response)

    def _provider(self, name: str, args: dict, request: Request, site: ProviderSite, path: str) -> Response:
        now = self.clock.now()
        call = Call(kind=_ROUTES[name][2], method=request.method, path=request.path, timestamp=now,
                    client_request_id=request.headers.get(CLIENT_REQUEST_ID_HEADER), provider=site.name)
        try:
            response = self._gated(name, args, request, call, now, site, path)
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

    def _gated(self, name: str, args: dict, request: Request, call: Call, now: float, site: ProviderSite,
               path: str) -> Response:
        if path.startswith("/v1/"):
            self._check_key(request)
        fault = site.faults.take(call.kind)
        if fault is not None:
            call.fault = fault.kind
            self._fire_before(fault)
        if self.rpm_limit:
            window = call.kind if site.name is None else f"{site.name}:{call.kind}"
            retry_after = self._rate.admit(window, now, self.rpm_limit)
            if retry_after is not None:
                raise ApiError(
                    429,
                    f"Rate limit reached: {self.rpm_limit} requests per minute on {call.kind}",
                    type_="requests",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(retry_after)},
                )
        job_fault = fault if fault is not None and fault.kind in JOB_KINDS else None
        response = self._route(name, args, request, call, now, job_fault, site)
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

    def _route(self, name: str, args: dict, request: Request, call: Call, now: float, job_fault: Fault | None,
               site: ProviderSite) -> Response:
        video = site.video
        job_id = args.get("job_id", "")
        if name == "chat":
            body = _json_body(request)
            call.model = body.get("model") if isinstance(body.get("model"), str) else None
            result = chat.complete(body, now)
            call.image_signatures = result.signatures
            call.prompt_tokens, call.completion_tokens = result.prompt_tokens, result.completion_tokens
            # Generated, so billed: whatever a fault does to the body from here on.
            self._bill.charge_chat(ChatCharge(result.id, call.client_request_id, result.model,
                                              result.prompt_tokens, result.completion_tokens, now, site.name))
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

    def _control(self, name: str, request: Request, site: ProviderSite) -> Response:
        named = site.name is not None
        if name == "control.calls":
            calls = site.calls if named else self.calls
            return json_response({"calls": [c.to_dict() for c in calls]})
        if name == "control.bill":
            return json_response(site.bill() if named else self.bill())
        if name == "control.reset":
            if named:
                site.reset()
            else:
                self.reset()
            return json_response({"reset": True})
        if name == "control.webhooks":
            return self._webhooks_control(request)
        faults = site.faults
        if request.method == "POST":
            try:
                self._add_faults(json.loads(request.get_data() or b"null"), faults)
            except (ValueError, TypeError) as exc:  # FaultSpecError is a ValueError
                return error_response(ApiError(400, f"bad fault: {exc}"))
            return json_response({"faults": faults.list()}, status=201)
        if request.method == "DELETE":
            faults.clear()
        return json_response({"faults": faults.list()})

    def _webhooks_control(self, request: Request) -> Response:
        """[WEBHOOKS] GET: settings and deliveries; POST: change the settings (like the fault settings)."""
        if request.method == "POST":
            try:
                body = json.loads(request.get_data() or b"null")
                if not isinstance(body, dict) or set(body) - {"mode", "delay_s", "urls", "secret"}:
                    raise ValueError("send an object with mode, delay_s, urls and/or secret")
                self.webhooks.configure(**body)
            except (ValueError, TypeError) as exc:
                return error_response(ApiError(400, f"bad webhook settings: {exc}"))
        return json_response({"settings": self.webhooks.settings(),
                              "deliveries": [d.to_dict() for d in self.webhooks.deliveries()]})

    @staticmethod
    def _add_faults(body: object, faults: Faults) -> None:
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, str):
                faults.add_spec(item)
            elif isinstance(item, dict) and set(item) == {"spec"}:
                faults.add_spec(str(item["spec"]))
            elif isinstance(item, dict):
                faults.add(**item)
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
