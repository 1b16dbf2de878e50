"""PlanAnalysis: segments, frame budget and cost estimate; reserves the estimate (BudgetExceeded if it does not fit)."""

from vidpipe.analysis.models import PlanEvent
from vidpipe.analysis.plan import plan_analysis
from vidpipe.observability import logger
from vidpipe.runtime import deps
from vidpipe.spend.prices import PriceTable


@logger.inject_lambda_context
def handler(event, context):
    request = PlanEvent.model_validate(event)
    logger.set_correlation_id(request.job_id)
    d = deps()
    prices = PriceTable.load(d.settings)
    plan = plan_analysis(request.job_id, request.video, request.options, d.settings, d.accounting, prices.chat_cost)
    logger.info("planned", extra={"segments": len(plan.segments), "estimate": plan.estimate.model_dump(mode="json")})
    return plan.model_dump(mode="json")
