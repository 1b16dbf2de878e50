"""CallbacksQueue → one signed POST per message to the job's callback_url, with partial batch failures.

A failed delivery fails its record: SQS offers it again after a backoff that doubles
per receive (the visibility is set here); on the last allowed attempt, or when retrying
cannot help, the message goes to the callbacks DLQ with a ``reason`` attribute.
"""

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidpipe import aws
from vidpipe.callbacks import CallbackFailed, backoff_s, deliver
from vidpipe.config import get_settings
from vidpipe.observability import annotate_job, emit_metric, lambda_handler, logger
from vidpipe.runtime import ProviderKeys

# A receiver being down is not this function's error: a batch whose every callback failed
# returns its failures like any other batch, instead of raising (and paging CallbackErrorsAlarm).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_keys: ProviderKeys | None = None


def _secret() -> str:
    global _keys
    if _keys is None:
        _keys = ProviderKeys(get_settings())
    return _keys.get("callback_signing_secret")


def record_handler(record: SQSRecord) -> int | None:
    settings = get_settings()
    attempt = int(record.attributes.approximate_receive_count or 1)
    try:
        try:
            message = json.loads(record.body)
            annotate_job(message["detail"]["job_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackFailed(f"not a callback message ({type(exc).__name__})", permanent=True) from exc
        status = deliver(message, secret=_secret(), settings=settings)
    except CallbackFailed as exc:
        if exc.permanent or attempt >= settings.callback_max_attempts:
            _dead_letter(record, exc.reason, attempt)
            return None  # handled: the DLQ has it, with why
        logger.warning("callback not delivered; SQS retries it", extra={"reason": exc.reason, "attempt": attempt})
        _back_off(record, attempt)
        raise
    logger.info("callback delivered", extra={"webhook_id": message["webhook_id"], "status": status,
                                             "attempt": attempt})
    emit_metric("CallbacksDelivered", MetricUnit.Count, 1)
    return status


def _back_off(record: SQSRecord, attempt: int) -> None:
    settings = get_settings()
    if not settings.callbacks_queue_url:
        return
    try:
        aws.client("sqs").change_message_visibility(QueueUrl=settings.callbacks_queue_url,
                                                    ReceiptHandle=record.receipt_handle,
                                                    VisibilityTimeout=backoff_s(attempt))
    except Exception as exc:  # the queue's own visibility timeout applies instead
        logger.warning("could not set the retry backoff", extra={"error": type(exc).__name__})


def _dead_letter(record: SQSRecord, reason: str, attempt: int) -> None:
    settings = get_settings().require("callbacks_dead_letter_url")
    logger.error("callback dead-lettered", extra={"reason": reason, "attempt": attempt})
    aws.client("sqs").send_message(QueueUrl=settings.callbacks_dead_letter_url, MessageBody=record.body,
                                   MessageAttributes={
                                       "reason": {"DataType": "String", "StringValue": reason[:1000]},
                                       "attempts": {"DataType": "Number", "StringValue": str(attempt)},
                                       "source_message_id": {"DataType": "String",
                                                             "StringValue": record.message_id},
                                   })
    emit_metric("CallbacksDeadLettered", MetricUnit.Count, 1)


@lambda_handler
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
