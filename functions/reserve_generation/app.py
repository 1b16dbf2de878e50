"""ReserveGeneration: estimate the job's paid calls (enhancement and clip) and reserve them
against every budget, before the first of them."""

from vidpipe.generation.events import JobEvent, parse_event
from vidpipe.generation.reserve import reserve_generation
from vidpipe.handback import handing_back
from vidpipe.jobs import JobStatus
from vidpipe.observability import annotate_job, lambda_handler
from vidpipe.routing import chat_model, video_routes
from vidpipe.runtime import deps
from vidpipe.spend.prices import PriceTable


@lambda_handler
def handler(event, context):
    with handing_back(context):
        job = parse_event(JobEvent, event)
        annotate_job(job.job_id)
        d = deps()
        prices = PriceTable.load(d.settings)
        # A production's shot: its job record (created before its execution) names the production's
        # reservation, which the generation ASL's Init does not pass along.
        record = d.jobs.get(job.job_id) or {}
        parent = event.get("parent_reservation_id") or record.get("parent_reservation_id")
        if parent and record.get("status") == JobStatus.PENDING:
            # The shot's execution exists now (this is its first step): RUNNING, where the reaper watches it.
            machine = d.settings.generation_state_machine_arn
            d.jobs.update(job.job_id, JobStatus.RUNNING,
                          execution_arn=f"{machine.replace(':stateMachine:', ':execution:')}:{job.job_id}")
        # [ROUTING] the tier's enhancement model; the clip at the dearest of the job's video routes
        reservation = reserve_generation(job.job_id, job.request, d.accounting, prices.video_cost, prices.chat_cost,
                                         chat_model(job.request.tier, "enhancement", d.settings),
                                         parent_reservation_id=parent, routes=video_routes(job.request, d.settings))
        return reservation.model_dump(mode="json")
