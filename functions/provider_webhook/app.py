"""ProviderWebhookFunction (Lambda function URL, POST /<provider>): a provider's signed
completion webhook resumes the job's waiting execution (vidpipe.completion_webhooks).

Verified with the Standard Webhooks scheme and the ``webhook_secret`` of the provider
secret (``webhook_secret_previous`` too, during a rotation), 5 minutes' tolerance; a
replayed webhook id is answered from the idempotency table without acting twice.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (DynamoDBPersistenceLayer, IdempotencyConfig,
                                                         idempotent_function)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from vidpipe import aws, clock
from vidpipe.completion_webhooks import (REPLAY_WINDOW_S, Announcement, HttpRequest, WaitStore, handle_webhook,
                                         response, secret_list, take_announcement, webhook_providers)
from vidpipe.config import get_settings
from vidpipe.observability import emit_metric, lambda_handler
from vidpipe.providers.video import ADAPTERS
from vidpipe.runtime import deps

persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table_name)
config = IdempotencyConfig(event_key_jmespath="webhook_id", expires_after_seconds=REPLAY_WINDOW_S)
PROVIDERS = webhook_providers(ADAPTERS)


@idempotent_function(data_keyword_argument="delivery", persistence_store=persistence, config=config)
def deliver(delivery: dict) -> dict:
    d = deps()
    announcement = Announcement(**delivery["announcement"])
    status = take_announcement(WaitStore(d.settings.table_name, d.jobs.ddb), aws.client("stepfunctions"),
                               delivery["provider"], announcement, now=clock.now())
    return {"status": status}


def process(webhook_id: str, provider: str, announcement: Announcement) -> str:
    delivery = {"webhook_id": webhook_id, "provider": provider,
                "announcement": {"type": announcement.type, "webhook_id": webhook_id,
                                 "provider_job_id": announcement.provider_job_id, "data": announcement.data}}
    return deliver(delivery=delivery)["status"]


def rejected(reason: str) -> None:
    emit_metric("WebhooksRejected", MetricUnit.Count, 1, dimensions={"reason": reason})


@lambda_handler
def handler(event, context):
    config.register_lambda_context(context)
    d = deps()
    try:
        return handle_webhook(HttpRequest.from_function_url(event), providers=PROVIDERS,
                              secrets=secret_list(d.api_key("webhook_secret"), d.api_key("webhook_secret_previous")),
                              now=clock.now(), process=process, on_rejected=rejected)
    except IdempotencyAlreadyInProgressError:
        # The same webhook id is being handled right now: the provider retries it later.
        return response(409, {"error": "this webhook is being handled"})
