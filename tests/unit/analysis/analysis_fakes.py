"""Fakes and helpers for the analysis unit tests: accounting that remembers, a scripted
chat gateway (httpx.MockTransport), and a moto-backed media bucket."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal

import cv2
import httpx
import numpy as np

from vidpipe.accounting import ProviderCall, reservation_id_for
from vidpipe.analysis import keys
from vidpipe.analysis.models import AnalyzedFrame, ChunkResult, FrameRef, Manifest, Segment
from vidpipe.analysis.objects import put_json
from vidpipe.errors import BudgetExceeded
from vidpipe.providers.chat import ChatClient
from vidpipe.providers.http import RetryPolicy

BUCKET = "media-test"


class FakeAccounting:
    """Keeps the ledger like the DynamoDB one: one entry per (job, call_key), a confirmed
    entry replacing an unconfirmed one; intents until their outcome; settle records the
    leftover intents at their estimate."""

    def __init__(self):
        self.reservations: list[tuple[str, Decimal, str, Decimal | None]] = []
        self.ledger: dict[tuple[str, str], ProviderCall] = {}
        self.intents: dict[tuple[str, str], ProviderCall] = {}
        self.acquired: list[tuple[str, int]] = []
        self.settled: list[tuple[str, str | None]] = []

    def reserve(self, job_id, amount_usd, model, job_limit_usd=None):
        if job_limit_usd is not None and amount_usd > job_limit_usd:
            raise BudgetExceeded(f"job: estimate {amount_usd} over the job limit {job_limit_usd}")
        self.reservations.append((job_id, amount_usd, model, job_limit_usd))
        return reservation_id_for(job_id)

    def record_call(self, call):
        key = (call.job_id, call.call_key)
        self.intents.pop(key, None)
        known = self.ledger.get(key)
        if known is None or (call.confirmed and not known.confirmed):
            self.ledger[key] = call
        return Decimal("0.001")

    def begin_call(self, estimate):
        self.intents.setdefault((estimate.job_id, estimate.call_key), estimate)

    def abandon_call(self, job_id, call_key):
        self.intents.pop((job_id, call_key), None)

    def settle(self, job_id, reservation_id):
        self.settled.append((job_id, reservation_id))
        for key, intent in list(self.intents.items()):
            if key[0] == job_id:
                self.record_call(intent)
        calls = [c for c in self.ledger.values() if c.job_id == job_id]
        return {"key": f"JOB#{job_id}", "calls": len(calls), "cost_usd": Decimal("0.001") * len(calls),
                "input_tokens": sum(c.input_tokens for c in calls),
                "output_tokens": sum(c.output_tokens for c in calls)}

    def release(self, reservation_id):
        pass

    def acquire(self, provider, tokens=0):
        self.acquired.append((provider, tokens))

    def sweep(self, intents_older_than_s):
        return {"intents": 0, "reservations": 0}

    def entries(self, job_id: str = "job-1") -> list[ProviderCall]:
        return [call for (job, _), call in self.ledger.items() if job == job_id]


class RecordingMeter:
    """A CallMeter that writes down what it heard, in order."""

    def __init__(self):
        self.events: list[tuple] = []

    def before(self, call_key):
        self.events.append(("before", call_key))

    def billed(self, call_key, result):
        self.events.append(("billed", call_key, result))

    def not_billed(self, call_key):
        self.events.append(("not_billed", call_key))


def completion(content: str, prompt_tokens: int = 100, completion_tokens: int = 20, status: int = 200,
               request_id: str = "chatcmpl-1", headers: dict | None = None) -> httpx.Response:
    body = {"id": request_id, "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}
    return httpx.Response(status, json=body, headers=headers)


class ScriptedGateway:
    """Answers each request with the next scripted reply (a Response, an exception
    to raise, or a callable taking the request JSON); remembers every request it got."""

    def __init__(self, *replies: httpx.Response | Exception | Callable[[dict], httpx.Response]):
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(json.loads(request.content)) if callable(reply) else reply

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]

    @property
    def client_request_ids(self) -> list[str]:
        return [r.headers["x-client-request-id"] for r in self.requests]


def describe_every_image(body: dict) -> httpx.Response:
    """A well-behaved model: one answer object per image part, in order."""
    images = [p for m in body["messages"] for p in m["content"] if p["type"] == "image_url"]
    frames = [{"index": i, "description": f"picture {i}", "subjects": ["thing"], "actions": ["standing"],
               "setting": "studio", "text_on_screen": "", "tags": ["test"]} for i in range(len(images))]
    return completion(json.dumps({"frames": frames}), prompt_tokens=258 * len(images) + 90,
                      completion_tokens=40 * len(images), request_id=f"chatcmpl-{len(images)}")


def summary_reply(body: dict) -> httpx.Response:
    return completion(json.dumps({"summary": "A short video.", "tags": ["demo"]}), request_id="chatcmpl-sum")


class SleepRecorder:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def chat_with(gateway: ScriptedGateway, sleep: SleepRecorder | None = None,
              policy: RetryPolicy = RetryPolicy(max_attempts=3, base_delay_s=0.1)) -> ChatClient:
    return ChatClient("https://gateway.test/v1", "sk-test", http_client=httpx.Client(transport=httpx.MockTransport(gateway)),
                      policy=policy, sleep=sleep or SleepRecorder())


def jpeg(width: int = 64, height: int = 36, value: int = 128) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), value, np.uint8))
    assert ok
    return data.tobytes()


def data_url_bytes(url: str) -> bytes:
    return base64.b64decode(url.split(",", 1)[1])


def put_segment(s3, job_id: str, index: int, start_s: float, end_s: float, timestamps: list[float],
                cuts: list[float] = (), frames_per_chunk: int = 4, strategy: str = "scene") -> Manifest:
    """A segment as ExtractFrames leaves it: one small JPEG per frame and the manifest."""
    frames = []
    for n, t in enumerate(timestamps):
        key = keys.frame_key(job_id, index, n)
        s3.put_object(Bucket=BUCKET, Key=key, Body=jpeg(value=(n * 40 + index * 90) % 256))
        frames.append(FrameRef(n=n, timestamp_s=t, shot=sum(c <= t for c in cuts), key=key, width=64, height=36))
    manifest = Manifest(job_id=job_id, segment=Segment(index=index, start_s=start_s, end_s=end_s, max_frames=50),
                        strategy=strategy, frames_sampled=len(frames) + 1, frames=frames, cuts=list(cuts),
                        frames_per_chunk=frames_per_chunk)
    put_json(s3, BUCKET, keys.manifest_key(job_id, index), manifest)
    return manifest


def analyzed(manifest: Manifest, describe: Callable[[FrameRef], str] = lambda f: f"view at {f.timestamp_s}s"
             ) -> list[AnalyzedFrame]:
    return [AnalyzedFrame(index=i, description=describe(f), subjects=["cat"], actions=["sits"], setting="room",
                          text_on_screen="", tags=["cat", "indoor"], segment=manifest.segment.index, n=f.n,
                          timestamp_s=f.timestamp_s, key=f.key)
            for i, f in enumerate(manifest.frames)]


def put_chunk_results(s3, manifest: Manifest, describe=None) -> None:
    """Chunk results as AnalyzeChunk leaves them."""
    frames = analyzed(manifest, describe) if describe else analyzed(manifest)
    size = manifest.frames_per_chunk
    for chunk in range(manifest.chunk_count):
        part = frames[chunk * size:(chunk + 1) * size]
        put_json(s3, BUCKET, keys.chunk_key(manifest.job_id, manifest.segment.index, chunk),
                 ChunkResult(job_id=manifest.job_id, segment=manifest.segment.index, chunk=chunk, model="gemini-2.5-flash",
                             frames=part, input_tokens=300 * len(part), output_tokens=50 * len(part)))
