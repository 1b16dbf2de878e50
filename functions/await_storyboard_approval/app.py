"""AwaitStoryboardApproval: keeps the execution's task token (pk=JOB#<id>, sk=TOKEN) for
`vidpipe approve` / `vidpipe reject` (SendTaskSuccess / SendTaskFailure, docs/productions.md)."""

from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler
from vidpipe.production.events import ApprovalEvent, parse
from vidpipe.production.flow import store_approval_token
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        d = deps()
        job = parse(ApprovalEvent, event, d.settings)
        annotate_job(job.job_id)
        return store_approval_token(job.job_id, job.token, d, job.request.approve_within_s)
