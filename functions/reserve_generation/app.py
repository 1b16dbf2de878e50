"""ReserveGeneration: estimate the job's paid calls (enhancement and clip) and reserve them
against every budget, before the first of them."""

from vidpipe.generation.events import JobEvent, parse_event
from vidpipe.generation.reserve import reserve_generation
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler
from vidpipe.runtime import deps
from vidpipe.spend.prices import PriceTable


@lambda_handler
def handler(event, context):
    with handing_back(context):
        job = parse_event(JobEvent, event)
        annotate_job(job.job_id)
        d = deps()
        prices = PriceTable.load(d.settings)
        reservation = reserve_generation(job.job_id, job.request, d.accounting, prices.video_cost, prices.chat_cost,
                                         d.settings.enhance_model)
        return reservation.model_dump(mode="json")
