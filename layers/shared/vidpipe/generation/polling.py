"""When to look at a video job next: a pure function of what the provider said.

Waits aim just past the expected completion instead of ticking at a fixed
period: to the ETA (or the provider's updated ETA, or what its progress rate
implies), plus a small margin. Once a job is overdue with no better signal,
the wait grows with the job's age (``overdue_fraction`` of the time since
submission, at least ``overdue_floor_s``), so the clip is picked up within that fraction of its true
completion time while the number of checks grows only logarithmically.
Every wait is clamped to [min_wait_s, max_wait_s] and never overshoots the
deadline, so the last check lands on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidpipe.config import Settings


@dataclass(frozen=True)
class PollPolicy:
    min_wait_s: float = 5.0
    max_wait_s: float = 300.0
    eta_margin: float = 0.05  # look a little after the estimate: ETAs are rarely early
    overdue_fraction: float = 0.1  # bounds the pick-up delay of an overdue job to 10% of its age
    overdue_floor_s: float = 10.0  # ...but no more often than every 10 s (a delay of ≤10 s is prompt anyway)

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        return cls(min_wait_s=settings.poll_min_wait_s, max_wait_s=settings.poll_max_wait_s)


def remaining_estimate(*, elapsed_s: float, eta_s: float, progress: float | None = None,
                       previous_progress: float | None = None, reported_eta_s: float | None = None) -> float | None:
    """Seconds until the job should finish, or None when it is overdue with no better signal."""
    if reported_eta_s is not None and reported_eta_s > 0:
        return reported_eta_s
    moving = progress is not None and 0 < progress < 1 and progress > (previous_progress or 0)
    if moving and elapsed_s > 0:
        # Constant-rate extrapolation (queued time included, which errs on the late side).
        return elapsed_s * (1 - progress) / progress
    left = eta_s - elapsed_s
    return left if left > 0 else None


def next_wait_s(policy: PollPolicy, *, elapsed_s: float, eta_s: float, progress: float | None = None,
                previous_progress: float | None = None, reported_eta_s: float | None = None,
                time_left_s: float = math.inf, retry_after_s: float | None = None) -> int:
    """Whole seconds to wait before the next status check (a Wait state's SecondsPath is an integer)."""
    remaining = remaining_estimate(elapsed_s=elapsed_s, eta_s=eta_s, progress=progress,
                                   previous_progress=previous_progress, reported_eta_s=reported_eta_s)
    if remaining is None:
        wait = max(policy.overdue_fraction * elapsed_s, policy.overdue_floor_s)
    else:
        wait = remaining * (1 + policy.eta_margin)
    if retry_after_s is not None:
        wait = max(wait, retry_after_s)
    wait = min(max(wait, policy.min_wait_s), policy.max_wait_s, max(1.0, time_left_s))
    return math.ceil(wait)
