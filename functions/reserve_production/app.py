"""ReserveProduction: ``action`` "storyboard" reserves the storyboard call's estimate before
it is made; otherwise the approved storyboard's shots become generation jobs and the whole
estimate is reserved at once (refused before any video call when it does not fit)."""

from decimal import Decimal

from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler
from vidpipe.production.events import ProductionEvent, ReserveEvent, parse
from vidpipe.production.flow import reserve_production, reserve_storyboard
from vidpipe.production.storyboard import validate_edited
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        d = deps()
        if event.get("action") == "storyboard":
            job = parse(ProductionEvent, event, d.settings)
            annotate_job(job.job_id)
            return reserve_storyboard(job.job_id, job.request, d)
        job = parse(ReserveEvent, event, d.settings)
        annotate_job(job.job_id)
        board = job.storyboard
        edited = (job.approval or {}).get("storyboard")
        if edited:  # an approver's edit: validated again, never trusted as sent
            board = validate_edited(edited, job.request)
        # The reservation outlives every shot: rounds of MaxConcurrency shots, each up to the polling deadline.
        rounds = len(board.shots) // max(1, int(event.get("max_concurrency") or 1)) + 2
        ttl = d.settings.reservation_ttl_s + int(d.settings.poll_deadline_s) * rounds
        result = reserve_production(job.job_id, job.request, board, d, Decimal(job.storyboard_usd), ttl,
                                    edited=bool(edited))
        return {**result, "storyboard": board.model_dump(mode="json")}
