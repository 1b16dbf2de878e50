"""SummarizeReport: scenes, summary, settled spend; writes report.json, report.md and contact_sheet.jpg."""

from vidpipe.analysis.clients import chat_client
from vidpipe.analysis.models import SummarizeEvent
from vidpipe.analysis.report import summarize_report
from vidpipe.media.contact_sheet import make_contact_sheet
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    request = SummarizeEvent.model_validate(event)
    logger.set_correlation_id(request.job_id)
    d = deps()
    result = summarize_report(request, d.s3, d.settings.media_bucket, chat_client(d), d.accounting,
                              make_contact_sheet)
    return result.model_dump(mode="json")
