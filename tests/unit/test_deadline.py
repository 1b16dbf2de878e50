"""The step's deadline: HTTP attempts, backoffs and downloads stop in time and hand back."""

import httpx
import pytest

from vidpipe import deadline
from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.net.download_guard import DownloadPolicy, guarded_stream
from vidpipe.providers.chat import ChatClient
from vidpipe.providers.http import RetryPolicy, send_with_retry


class Context:
    """A Lambda context whose remaining time falls as the test says."""

    def __init__(self, remaining_s: float):
        self.remaining_s = remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_s * 1000)


def transport(*answers, context: Context | None = None, takes_s: float = 0.0):
    """Answers in order ((status, headers) or an exception); each request uses ``takes_s`` of the context."""
    queue, seen = list(answers), []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if context:
            context.remaining_s -= takes_s
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers = item
        return httpx.Response(status, headers=headers, json={"ok": status < 400})

    return httpx.Client(transport=httpx.MockTransport(handler), timeout=60.0), seen


def test_given_no_context_then_the_budget_is_unbounded():
    limit = deadline.current()

    assert not limit.bounded and limit.can_attempt() and limit.wait_budget_s(20) == 20


def test_given_a_context_then_the_budget_keeps_the_margin_and_the_wait_leaves_an_attempt_its_minimum():
    context = Context(60)
    with deadline.within(context, margin_s=5, min_attempt_s=10) as limit:
        assert deadline.current() is limit
        assert limit.budget_s() == 55 and limit.wait_budget_s(20) == 20
        context.remaining_s = 30  # read live
        assert limit.budget_s() == 25 and limit.wait_budget_s(20) == 15
        context.remaining_s = 14
        assert not limit.can_attempt() and limit.wait_budget_s(20) == 0
    assert not deadline.current().bounded


@pytest.mark.parametrize("seconds, whole", [(None, 1), (0.0, 1), (0.2, 1), (6.128, 7), (30.0, 30)])
def test_given_a_retry_after_then_the_wait_is_whole_seconds_and_at_least_one(seconds, whole):
    assert deadline.retry_after_whole_s(seconds) == whole


def test_given_a_step_with_little_time_left_when_sending_then_each_attempt_times_out_before_the_deadline():
    client, seen = transport((200, {}))
    with deadline.within(Context(40), margin_s=5, min_attempt_s=10):
        send_with_retry(client, "POST", "https://p.example/v1/x")

    timeouts = seen[0].extensions["timeout"]
    assert timeouts["read"] == pytest.approx(35) and timeouts["connect"] == pytest.approx(35)


def test_given_a_slow_provider_when_attempts_use_up_the_step_then_it_hands_back_instead_of_trying_again():
    context = Context(90)
    client, seen = transport(httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"), (200, {}),
                             context=context, takes_s=40)
    waits = []

    with deadline.within(context, margin_s=5, min_attempt_s=10), pytest.raises(ProviderRetryable) as info:
        send_with_retry(client, "POST", "https://p.example/v1/x", sleep=waits.append, rng=lambda: 0.0)

    assert len(seen) == 2  # 90 s: two 40 s attempts, then 5 s left, less than an attempt needs
    assert "out of time" in info.value.reason and "ReadTimeout" in info.value.reason
    assert info.value.retry_after_s == 1.0
    assert context.remaining_s > 0  # handed back before the timeout


def test_given_a_retry_after_longer_than_the_time_left_when_sending_then_it_hands_back_with_that_wait():
    client, seen = transport((429, {"Retry-After": "30"}), (200, {}))
    waits = []

    with deadline.within(Context(40), margin_s=5, min_attempt_s=10), pytest.raises(ProviderRetryable) as info:
        send_with_retry(client, "POST", "https://p.example/v1/x", sleep=waits.append,
                        policy=RetryPolicy(max_total_wait_s=60))

    assert waits == [] and len(seen) == 1
    assert info.value.retry_after_s == 30.0  # Step Functions waits it, not the Lambda


def test_given_too_little_time_for_any_attempt_then_nothing_is_sent_and_no_attempt_is_started():
    client, seen = transport((200, {}))
    started = []

    with deadline.within(Context(12), margin_s=5, min_attempt_s=10), pytest.raises(ProviderRetryable):
        send_with_retry(client, "POST", "https://p.example/v1/x", on_attempt=started.append)

    assert seen == [] and started == []


def test_given_a_malformed_answer_with_no_time_to_ask_again_when_completing_structured_then_it_hands_back():
    context = Context(50)

    def handler(request: httpx.Request) -> httpx.Response:
        context.remaining_s -= 40
        return httpx.Response(200, content=b"{not json")

    chat = ChatClient("https://p.example/v1", "k", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    with deadline.within(context, margin_s=5, min_attempt_s=10), pytest.raises(ProviderRetryable) as info:
        chat.complete_structured("m", [{"role": "user", "content": "hi"}], Answer, name="answer")

    assert "malformed completion body" in info.value.reason and "out of time" in info.value.reason
    with pytest.raises(ProviderError):  # without a deadline the malformed answers exhaust the attempts
        chat.complete_structured("m", [{"role": "user", "content": "hi"}], Answer, name="answer")


def test_given_a_download_in_a_step_with_less_time_than_its_deadline_then_it_stops_while_the_step_can_hand_back():
    clock = iter([0.0, 0.0, 0.0, 31.0])  # started, hop checked, body started, the body arrived

    class Body(httpx.SyncByteStream):
        def __iter__(self):
            yield b"x" * 10

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Body())

    client = httpx.Client(transport=httpx.MockTransport(handler))
    policy = DownloadPolicy(allow_hosts=frozenset({"127.0.0.1"}), require_https=False, deadline_s=420,
                            min_bytes_per_s=0)

    with deadline.within(Context(35), margin_s=5), pytest.raises(ProviderRetryable) as info:
        with guarded_stream("http://127.0.0.1/v.mp4", policy, client=client, now=lambda: next(clock)) as response:
            response.read()

    assert "exceeded its 30 s deadline" in info.value.reason  # not the configured 420 s
