"""SQS → Lambda the way Lambda's event source mapping does it.

moto's own mapping calls the function once per message and ignores
``batchItemFailures``. Here a poller receives batches of the template's
BatchSize, deletes only the successes and makes failures visible again, so
moto's redrive policy moves a message that keeps failing to the DLQ after
maxReceiveCount receives, exactly as on AWS.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from vidpipe_local.stack.lambdas import InProcessLambdas, Throttled
from vidpipe_local.stack.template import REGION

log = logging.getLogger(__name__)


@dataclass
class SqsMapping:
    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10


def to_lambda_record(message: dict, queue_arn: str) -> dict:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class SqsPollers:
    def __init__(self, sqs, lambdas: InProcessLambdas, mappings: list[SqsMapping]):
        self.sqs, self.lambdas, self.mappings = sqs, lambdas, mappings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self, mapping: SqsMapping) -> int:
        """Deliver one batch; returns how many messages were received."""
        messages = self.sqs.receive_message(
            QueueUrl=mapping.queue_url, MaxNumberOfMessages=mapping.batch_size,
            AttributeNames=["All"], MessageAttributeNames=["All"], WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [to_lambda_record(m, mapping.queue_arn) for m in messages]}
        try:
            result, errored = self.lambdas.invoke(mapping.function_name, event)
        except Throttled as exc:  # the mapping backs off; the batch comes back like a failed one
            result, errored = {"errorType": "TooManyRequestsException", "errorMessage": str(exc)}, True
        if errored:
            # The messages come back (and reach the DLQ after maxReceiveCount); say why.
            log.warning("%s failed its whole batch: %s: %s", mapping.function_name,
                        result.get("errorType"), result.get("errorMessage"))
            failed_ids = {m["MessageId"] for m in messages}
        else:
            failed_ids = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed_ids:
                # Lambda leaves it invisible until the visibility timeout; locally it
                # comes back at once so redrive is deterministic.
                self.sqs.change_message_visibility(QueueUrl=mapping.queue_url,
                                                   ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            else:
                self.sqs.delete_message(QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def drain(self, max_batches: int = 1000) -> int:
        """Poll every queue until all are empty; returns messages delivered."""
        delivered = 0
        for _ in range(max_batches):
            got = sum(self.poll_once(m) for m in self.mappings)
            if not got:
                return delivered
            delivered += got
        raise RuntimeError("queues did not drain: a message keeps coming back")

    def start(self, idle_s: float = 0.2) -> None:
        def loop():
            while not self._stop.is_set():
                if not sum(self.poll_once(m) for m in self.mappings):
                    self._stop.wait(idle_s)

        self._thread = threading.Thread(target=loop, name="sqs-pollers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
