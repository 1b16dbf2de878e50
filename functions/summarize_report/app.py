"""SummarizeReport: scenes, summary, settled spend; writes report.json, report.md and contact_sheet.jpg."""

from aws_lambda_powertools.metrics import MetricUnit

from vidpipe.analysis.clients import chat_client
from vidpipe.analysis.models import SummarizeEvent
from vidpipe.analysis.report import summarize_report
from vidpipe.handback import handing_back
from vidpipe.media.contact_sheet import make_contact_sheet
from vidpipe.observability import annotate_job, emit_metric, lambda_handler
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        request = SummarizeEvent.model_validate(event)
        annotate_job(request.job_id)
        d = deps()
        result = summarize_report(request, d.s3, d.settings.media_bucket, chat_client(d), d.accounting,
                                  make_contact_sheet, emulated=d.settings.chat_emulated)
        # The dashboard's tokens per analysed minute: the sum of one over the sum of the other.
        emit_metric("AnalysedMinutes", MetricUnit.Count, request.video.duration_s / 60)
        emit_metric("AnalysisTokens", MetricUnit.Count, result.spend["input_tokens"] + result.spend["output_tokens"])
        return result.model_dump(mode="json")
