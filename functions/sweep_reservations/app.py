"""Scheduled (every 5 minutes): nothing left hanging, no money lost.

1. Reap: a job still RUNNING whose execution ended (StopExecution, TIMED_OUT, a failed
   finalize) or is past its state machine's deadline is finalized FAILED with the reason,
   its reservation settled against the ledger.
2. Watch: provider jobs of terminal jobs that may still be billed are asked how they
   ended; a completed clip is recorded (``vidpipe.generation.watch``).
3. Sweep: intents left by Lambdas that died mid-call become unconfirmed entries, and
   expired reservations give back their unconsumed rest.
"""

from aws_lambda_powertools.metrics import MetricUnit

from vidpipe import aws, clock
from vidpipe.completion import announce
from vidpipe.errors import AwsTransient
from vidpipe.generation.events import STATUS_RETRY, video_provider, watch_store
from vidpipe.generation.watch import resolve_watches
from vidpipe.jobs import json_safe
from vidpipe.observability import emit_job_outcome, emit_metric, lambda_handler, logger
from vidpipe.reaper import Deadlines, reap_jobs
from vidpipe.runtime import deps

# An intent older than this lost its Lambda: longer than any function's timeout (600 s).
INTENT_GRACE_S = 900.0
# A watched provider job that has not said how it ended this long after its deadline is
# recorded unconfirmed at its requested seconds and no longer asked about.
WATCH_GIVE_UP_AFTER_DEADLINE_S = 24 * 3600.0


def _announce(record: dict, d) -> None:
    """A reaped job ended too: announce it (vidpipe.completion). Best effort here: a failed
    announcement must not stop the sweep, and the next run will not reap the job again."""
    if not record:
        return
    try:
        announce(record, deps=d)
    except AwsTransient as exc:
        logger.error("a reaped job could not be announced", extra={"job_id": record.get("job_id"),
                                                                  "reason": exc.reason})
        emit_metric("AnnounceFailed", MetricUnit.Count, 1)


@lambda_handler
def handler(event, context):
    d = deps()
    s = d.settings
    sfn = aws.client("stepfunctions")
    reaped = reap_jobs(d.jobs, sfn, d.accounting, now=clock.now,
                       deadline_for=Deadlines(sfn, fallback_s=float(s.reservation_ttl_s)))
    watches = resolve_watches(watch_store(d), d.jobs, d.accounting,
                              lambda name, base_url=None: video_provider(name, d, STATUS_RETRY, base_url=base_url),
                              now=clock.now,
                              give_up_after_s=s.poll_deadline_s + WATCH_GIVE_UP_AFTER_DEADLINE_S)
    # Every reaped job was stuck: JobsStuckAlarm, and a system failure of its kind.
    emit_metric("JobsReaped", MetricUnit.Count, len(reaped))
    for job in reaped:
        record = d.jobs.get(job["job_id"]) or {}
        emit_job_outcome(record.get("kind", "unknown"), "FAILED", job["error"])
        _announce(record, d)
    swept = d.accounting.sweep(intents_older_than_s=INTENT_GRACE_S)
    result = {"reaped": reaped, "watches": watches, **swept}
    logger.info("swept", extra=json_safe(result))
    return json_safe(result)
