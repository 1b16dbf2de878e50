"""PlanAnalysis: segments, frame budget and cost estimate; reserves the estimate (BudgetExceeded if it does not fit)."""

from vidpipe.analysis.models import PlanEvent
from vidpipe.analysis.plan import plan_analysis
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.runtime import deps
from vidpipe.spend.prices import PriceTable


@lambda_handler
def handler(event, context):
    with handing_back(context):
        request = PlanEvent.model_validate(event)
        annotate_job(request.job_id)
        d = deps()
        prices = PriceTable.load(d.settings)
        plan = plan_analysis(request.job_id, request.video, request.options, d.settings, d.accounting, prices.chat_cost)
        logger.info("planned", extra={"segments": len(plan.segments), "estimate": plan.estimate.model_dump(mode="json")})
        return plan.model_dump(mode="json")
