"""SQS (ingest + jobs queues) → jobs and state machine executions, with partial batch failures."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidpipe import aws
from vidpipe.config import get_settings
from vidpipe.jobs import JobStore
from vidpipe.observability import logger
from vidpipe.start_jobs import StartJobs

processor = BatchProcessor(event_type=EventType.SQS)


def _service() -> StartJobs:
    s = get_settings()
    return StartJobs(JobStore(s.table_name), aws.client("stepfunctions"), aws.client("s3"),
                     s.analysis_state_machine_arn, s.generation_state_machine_arn, s.media_bucket)


def record_handler(record: SQSRecord) -> list[str]:
    started = _service().handle_body(record.body, record.message_id)
    for job in started:
        logger.info("job accepted", extra={"job_id": job.job_id, "kind": job.kind, "duplicate": job.duplicate})
    return [job.job_id for job in started]


@logger.inject_lambda_context
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
