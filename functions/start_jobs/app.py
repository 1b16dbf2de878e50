"""SQS (ingest + jobs queues) → jobs and state machine executions, with partial batch failures."""

import os

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidpipe import aws
from vidpipe.completion import AnnounceDeps, announce
from vidpipe.config import get_settings
from vidpipe.jobs import JobStore
from vidpipe.observability import lambda_handler, logger
from vidpipe.start_jobs import SourceQueue, StartJobs

processor = BatchProcessor(event_type=EventType.SQS)


def _queues() -> dict[str, SourceQueue]:
    """Each source queue's DLQ, from template.yaml (INGEST_/JOBS_ QUEUE_ARN and DLQ_URL)."""
    env = os.environ
    return {env[f"{name}_QUEUE_ARN"]: SourceQueue(env[f"{name}_DLQ_URL"], ingest=name == "INGEST")
            for name in ("INGEST", "JOBS") if env.get(f"{name}_QUEUE_ARN") and env.get(f"{name}_DLQ_URL")}


def _service() -> StartJobs:
    s = get_settings()
    announcer = AnnounceDeps(s)
    return StartJobs(JobStore(s.table_name), aws.client("stepfunctions"), aws.client("s3"),
                     s.analysis_state_machine_arn, s.generation_state_machine_arn, s.media_bucket,
                     sqs=aws.client("sqs"), queues=_queues(),
                     announce=lambda job: announce(job, deps=announcer),  # REJECTED jobs are announced
                     production_arn=s.production_state_machine_arn)


def record_handler(record: SQSRecord) -> list[str]:
    started = _service().handle_record(record.body, record.message_id, record.event_source_arn)
    for job in started:
        logger.info("job accepted", extra={"job_id": job.job_id, "kind": job.kind, "duplicate": job.duplicate})
    return [job.job_id for job in started]


@lambda_handler
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
