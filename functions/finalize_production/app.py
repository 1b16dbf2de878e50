"""FinalizeProduction: ``action`` "collect" reads the shots' job records into AssembleEpisode's
event (and says whether the production fails); "finalize" settles the production's money
(storyboard reservation, then the rest of the shots' reservation), records its terminal
status (SUCCEEDED, PARTIAL with the gaps, FAILED) and announces it."""

from vidpipe.handback import handing_back
from vidpipe.jobs import json_safe
from vidpipe.observability import annotate_job, emit_job_outcome, lambda_handler
from vidpipe.production.events import CollectEvent, FinalizeEvent, parse
from vidpipe.production.flow import collect_shots, finalize_production
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        d = deps()
        if event.get("action") == "collect":
            job = parse(CollectEvent, event, d.settings)
            annotate_job(job.job_id)
            return collect_shots(job.job_id, job.request, job.storyboard, job.shot_ids, d)
        request = parse(FinalizeEvent, event, d.settings)
        annotate_job(request.job_id)
        result = json_safe(finalize_production(request.job_id, request.outcome, d, assembled=request.assembled,
                                               collected=request.collected, error=request.error))
        emit_job_outcome("production", result["status"], (result.get("error") or {}).get("error"))
        return result
