"""What a step hands back to Step Functions: the wait a come-back loop reads, and AWS's
transient failures as the one error class every Retry names."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from vidpipe import deadline
from vidpipe.errors import AwsTransient, ProviderRetryable, RateLimited
from vidpipe.handback import handing_back
from vidpipe.spend.ddb import transact


def client_error(code: str, reasons: list[str] | None = None, operation: str = "TransactWriteItems") -> ClientError:
    response = {"Error": {"Code": code, "Message": "m"}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return ClientError(response, operation)


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def test_given_a_rate_limited_step_then_its_message_starts_with_the_whole_seconds_to_wait_and_its_class_is_kept():
    with pytest.raises(RateLimited) as info, handing_back(Context()):
        raise RateLimited("rate limit openai (60 rpm): next slot in 26.128s", retry_after_s=26.128)

    assert str(info.value) == "retry after 27 s: rate limit openai (60 rpm): next slot in 26.128s"
    assert info.value.reason == str(info.value) and info.value.retry_after_s == 27.0
    # The ASL reads the third word: States.ArrayGetItem(States.StringSplit(message, ' '), 2)
    assert str(info.value).split(" ")[2] == "27"


def test_given_a_retryable_error_without_a_wait_then_the_step_comes_back_after_one_second():
    with pytest.raises(ProviderRetryable) as info, handing_back(Context()):
        raise ProviderRetryable("ReadTimeout calling p.example (gave up after 4 attempts)")

    assert str(info.value).startswith("retry after 1 s: ReadTimeout")


def test_given_the_step_runs_within_a_context_then_code_under_it_sees_that_deadline():
    with handing_back(Context()):
        assert deadline.current().remaining_s() == 30

    assert not deadline.current().bounded


@pytest.mark.parametrize("error", [
    client_error("ThrottlingException", operation="GetItem"),
    client_error("ProvisionedThroughputExceededException", operation="PutItem"),
    client_error("InternalServerError", operation="Query"),
    client_error("ServiceUnavailable", operation="PutObject"),
    client_error("RequestLimitExceeded", operation="UpdateItem"),
    client_error("TransactionCanceledException", ["None", "ThrottlingError"]),
    client_error("TransactionCanceledException", ["TransactionConflict", "None"]),
    EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
])
def test_given_a_transient_aws_failure_past_the_sdk_retries_then_the_step_raises_aws_transient(error):
    with pytest.raises(AwsTransient) as info, handing_back(Context()):
        raise error

    assert info.value.__cause__ is error and "failed" in info.value.reason


@pytest.mark.parametrize("error", [
    client_error("AccessDeniedException", operation="GetItem"),
    client_error("ValidationException", operation="PutItem"),
    client_error("TransactionCanceledException", ["ConditionalCheckFailed", "ThrottlingError"]),
])
def test_given_an_aws_error_that_retrying_will_not_fix_then_it_is_raised_as_it_was(error):
    with pytest.raises(ClientError) as info, handing_back(Context()):
        raise error

    assert info.value is error


class ThrottledThenOk:
    def __init__(self, failures: list[ClientError]):
        self.failures = list(failures)
        self.calls = 0

    def transact_write_items(self, TransactItems):  # noqa: N803 (boto3's name)
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {}


def test_given_a_transaction_cancelled_by_throttling_when_written_then_it_is_retried_with_backoff():
    client = ThrottledThenOk([client_error("TransactionCanceledException", ["ThrottlingError", "None"]),
                              client_error("TransactionCanceledException", ["None", "TransactionConflict"])])
    slept = []

    transact(client, [{}], sleep=slept.append)

    assert client.calls == 3 and len(slept) == 2


def test_given_a_transaction_refused_by_a_condition_when_written_then_it_is_not_retried():
    client = ThrottledThenOk([client_error("TransactionCanceledException", ["ConditionalCheckFailed", "None"])])

    with pytest.raises(ClientError):
        transact(client, [{}], sleep=lambda s: None)

    assert client.calls == 1


def test_given_throttling_that_outlasts_the_attempts_when_written_then_the_step_hands_back_aws_transient():
    client = ThrottledThenOk([client_error("TransactionCanceledException", ["ThrottlingError"])] * 3)

    with pytest.raises(AwsTransient) as info, handing_back(Context()):
        transact(client, [{}], sleep=lambda s: None, attempts=3)

    assert client.calls == 3 and "ThrottlingError" in info.value.reason
