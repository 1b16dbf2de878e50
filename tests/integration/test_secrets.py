"""A provider that echoes our API key in its error body must not put the key
anywhere we write: job records, logs, the Step Functions execution history,
objects in the media bucket.

The emulator's 401 does not quote the key, so the chat gateway here is a tiny
server on 127.0.0.1 that answers every completion the way OpenAI does when a
key is wrong: ``401 Incorrect API key provided: <the key it was sent>``.
The key is configured through the stack's provider secret (Secrets Manager),
as deployed; it has no well-known shape, so only the registered value can hide it.
"""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe.observability import logger
from vidpipe.start_jobs import upload_job_id
from vidpipe_local import samples

pytestmark = pytest.mark.integration

KEY = "vp-live-0d6c9b2f4e81a7350c2d"


class EchoingGateway:
    """Answers every request with OpenAI's wrong-key error, quoting the bearer token it got."""

    def __init__(self):
        self.tokens: list[str] = []
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    @Request.application
    def app(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").partition(" ")[2]
        self.tokens.append(token)
        body = {"error": {"message": f"Incorrect API key provided: {token}. You can find your API key at "
                                     "your provider's dashboard.", "type": "invalid_request_error",
                          "param": None, "code": "invalid_api_key"}}
        return Response(json.dumps(body), status=401, content_type="application/json")

    def __enter__(self) -> EchoingGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def gateway():
    with EchoingGateway() as server:
        yield server


@pytest.fixture
def written_logs(caplog):
    """Every log line: the records of every logger, and vidpipe's own JSON lines as formatted."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="vidpipe")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_handler.formatter)
    logger.addHandler(handler)
    yield lambda: buffer.getvalue() + caplog.text + "".join(json.dumps(vars(r), default=str) for r in caplog.records)
    logger.removeHandler(handler)


def everything_in_the_table(stack) -> str:
    items, kwargs = [], {}
    while True:
        page = stack.ddb.scan(TableName=stack.table, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return json.dumps(items, default=str)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def every_execution_history(stack) -> str:
    return json.dumps([stack.history(e["executionArn"]) for e in stack.executions()], default=str)


def every_object(stack) -> bytes:
    listing = stack.s3.list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    return b"".join(stack.s3.get_object(Bucket=stack.bucket, Key=o["Key"])["Body"].read() for o in listing)


def assert_key_nowhere(stack, written_logs, capfd) -> None:
    captured = capfd.readouterr()
    places = {"job records": everything_in_the_table(stack), "execution history": every_execution_history(stack),
              "logs": written_logs() + captured.out + captured.err,
              "media bucket": every_object(stack).decode("latin-1")}
    leaks = [place for place, text in places.items() if KEY in text or KEY[:12] in text]
    assert leaks == []


def test_given_a_provider_echoing_the_key_when_an_analysis_fails_on_it_then_the_key_is_nowhere_a_test_can_read(
        make_stack, gateway, written_logs, capfd, tmp_path):
    s = make_stack(provider_keys={"chat_api_key": KEY}, parameter_overrides={"ChatBaseUrl": gateway.base_url})
    clip = tmp_path / "clip.mp4"
    samples.sample_with_dissolve(clip, size=(160, 90))

    put = s.s3.put_object(Bucket=s.bucket, Key="uploads/clip.mp4", Body=clip.read_bytes())
    job = s.wait_for_job(upload_job_id(s.bucket, "uploads/clip.mp4", put["ETag"]), timeout_s=300)

    assert gateway.tokens and set(gateway.tokens) == {KEY}  # the key was sent, so the 401s echoed it
    assert job["status"] == "FAILED"
    assert "Incorrect API key provided: [REDACTED]" in job["error"]["reason"]
    # The provider's error did reach the execution history (as the Lambda's errorMessage), redacted.
    assert "Incorrect API key provided: [REDACTED]" in every_execution_history(s)
    assert_key_nowhere(s, written_logs, capfd)


def test_given_a_provider_echoing_the_key_when_a_prompt_enhancement_fails_on_it_then_the_key_is_nowhere(
        make_stack, gateway, written_logs, capfd):
    s = make_stack(provider_keys={"chat_api_key": KEY}, parameter_overrides={"ChatBaseUrl": gateway.base_url})
    body = json.dumps({"type": "generate", "prompt": "a paper boat drifting on a pond", "enhance_prompt": True,
                       "duration_s": 1, "fps": 12, "resolution": "160x96", "max_cost_usd": 1})

    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=body)
    job = s.wait_for_job(execution_name(parse_job_message(body)))

    assert gateway.tokens and set(gateway.tokens) == {KEY}
    assert job["status"] == "SUCCEEDED", job.get("error")  # the enhancement falls back to the original prompt
    assert job["details"]["enhancement"]["enhanced"] is False
    assert_key_nowhere(s, written_logs, capfd)
