"""SubmitGeneration: start the provider job (idempotently) and the polling state.

Two layers of idempotency: the provider gets an Idempotency-Key derived from
the job, and Powertools Idempotency (DynamoDB) makes a retried invocation for
the same job return the recorded poll state without calling the provider again.
"""

from aws_lambda_powertools.utilities.idempotency import (DynamoDBPersistenceLayer, IdempotencyConfig,
                                                         idempotent_function)

from vidpipe import clock, reference_image
from vidpipe.completion_webhooks import apply_webhooks
from vidpipe.config import get_settings
from vidpipe.generation.events import SubmitEvent, parse_event, route_provider, watch_store
from vidpipe.generation.fallback import AttemptLog, submit_on_routes
from vidpipe.generation.polling import PollPolicy
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.routing import video_routes
from vidpipe.runtime import deps

persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table_name)
config = IdempotencyConfig(event_key_jmespath="job_id", expires_after_seconds=24 * 3600)


@idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=config)
def submit(event: dict) -> dict:
    job = parse_event(SubmitEvent, event)
    d = deps()
    s = d.settings
    # Fetched and checked before any paid call: a bad image is InputRejected (FAILED, nothing paid).
    reference = reference_image.load(job.request.reference_image, d)
    # [ROUTING] the job's routes in order: an unavailable provider hands over to the next (fallback.py)
    poll = submit_on_routes(
        job.job_id, job.request, job.enhancement, video_routes(job.request, s), lambda route: route_provider(route, d),
        d.accounting, watch_store(d), AttemptLog(s.table_name, d.jobs.ddb), policy=PollPolicy.from_settings(s),
        deadline_s=s.poll_deadline_s,
        output_s3_uri=f"s3://{s.media_bucket}/{s.video_output_s3_prefix}/{job.job_id}/provider",
        now=clock.now, reference=reference)
    poll = apply_webhooks(poll, d, clock.now())  # [WEBHOOKS] wait on the completion webhook
    logger.info("generation submitted", extra={"provider_job_id": poll.provider_job_id, "eta_s": poll.eta_s,
                                               "provider": poll.provider, "model": poll.model,
                                               "route_index": poll.route_index})
    return poll.model_dump(mode="json")


@lambda_handler
def handler(event, context):
    with handing_back(context):
        annotate_job(event.get("job_id"))
        config.register_lambda_context(context)
        return submit(event=event)
