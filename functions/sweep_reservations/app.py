"""Scheduled: release reservations whose holder died (expired), each exactly once."""

from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    released = deps().accounting.sweep_expired()
    logger.info("swept expired reservations", extra={"released": released})
    return {"released": released}
