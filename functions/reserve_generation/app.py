"""ReserveGeneration: estimate the clip's cost and reserve it against every budget."""

from vidpipe.generation.events import JobEvent, parse_event
from vidpipe.generation.reserve import reserve_generation
from vidpipe.observability import logger
from vidpipe.runtime import deps
from vidpipe.spend.prices import PriceTable


@logger.inject_lambda_context
def handler(event, context):
    job = parse_event(JobEvent, event)
    logger.set_correlation_id(job.job_id)
    d = deps()
    prices = PriceTable.load(d.settings)
    return reserve_generation(job.job_id, job.request, d.accounting, prices.video_cost).model_dump(mode="json")
