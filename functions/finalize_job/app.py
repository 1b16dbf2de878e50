"""Both flows end here: settle spend, release the rest of the reservation, record the terminal state."""

from vidpipe.finalize import FinalizeInput, finalize
from vidpipe.handback import handing_back
from vidpipe.jobs import json_safe
from vidpipe.observability import annotate_job, emit_job_outcome, lambda_handler
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        request = FinalizeInput.model_validate(event)
        annotate_job(request.job_id)
        d = deps()
        result = json_safe(finalize(request, d))
        # Counted by failure class: only failure_class=system pages (SystemFailuresAlarm).
        emit_job_outcome((d.jobs.get(request.job_id) or {}).get("kind", "unknown"), result["status"],
                         (result.get("error") or {}).get("error"))
        return result
