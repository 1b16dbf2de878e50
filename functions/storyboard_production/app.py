"""StoryboardProduction: one structured chat call turns the script into scenes → shots
(reserved before, by ReserveProduction's "storyboard" action; metered like the prompt
enhancement); stored as storyboard.json / storyboard.md. It handles model output, so it
writes no job record and moves no reservation: the call's ledger entry only."""

from vidpipe.analysis.clients import chat_client
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler
from vidpipe.production.events import StoryboardEvent, parse
from vidpipe.production.flow import run_storyboard
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        d = deps()
        job = parse(StoryboardEvent, event, d.settings)
        annotate_job(job.job_id)
        return run_storyboard(job.job_id, job.request, d, chat_client(d), job.reservation["model"])
