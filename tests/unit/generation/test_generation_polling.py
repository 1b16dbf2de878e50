"""Properties of the wait policy, checked against a simulated provider clock (no sleeping)."""

import math

import pytest

from vidpipe.generation.polling import PollPolicy, next_wait_s

POLICY = PollPolicy(min_wait_s=5, max_wait_s=300)


def run(eta_s: float, true_s: float, *, reports_progress: bool = True) -> tuple[int, float]:
    """(status checks, pick-up delay) for a job the provider finishes at ``true_s``."""
    t, checks, previous = 0.0, 0, None
    wait = next_wait_s(POLICY, elapsed_s=0, eta_s=eta_s)
    while True:
        t += wait
        checks += 1
        if t >= true_s:
            return checks, t - true_s
        progress = min(0.99, t / true_s) if reports_progress else None
        wait = next_wait_s(POLICY, elapsed_s=t, eta_s=eta_s, progress=progress, previous_progress=previous)
        previous = progress


def fixed_10s_checks(true_s: float) -> int:
    return math.ceil(true_s / 10)


@pytest.mark.parametrize("eta_s", [30, 90, 900])
@pytest.mark.parametrize("reports_progress", [True, False])
def test_given_an_accurate_eta_when_polling_then_a_third_of_fixed_polling_checks_and_prompt_pickup(
        eta_s, reports_progress):
    checks, delay = run(eta_s, eta_s, reports_progress=reports_progress)
    assert checks <= fixed_10s_checks(eta_s) / 3
    assert delay <= max(0.1 * eta_s, 15)


@pytest.mark.parametrize("eta_s", [30, 90, 900])
@pytest.mark.parametrize("overrun", [1.05, 1.5, 3.0])
@pytest.mark.parametrize("reports_progress", [True, False])
def test_given_a_job_slower_than_its_eta_when_polling_then_pickup_stays_within_ten_percent(
        eta_s, overrun, reports_progress):
    true_s = eta_s * overrun
    checks, delay = run(eta_s, true_s, reports_progress=reports_progress)
    assert delay <= max(0.1 * true_s, 15)
    assert checks <= fixed_10s_checks(true_s)


def test_given_any_answer_when_computing_a_wait_then_it_is_a_whole_number_within_the_bounds():
    for elapsed in (0, 1, 29, 31, 600, 5000, 50_000):
        for progress in (None, 0.0, 0.01, 0.5, 0.99):
            wait = next_wait_s(POLICY, elapsed_s=elapsed, eta_s=30, progress=progress)
            assert isinstance(wait, int) and 5 <= wait <= 300


def test_given_the_deadline_is_near_when_computing_a_wait_then_it_does_not_overshoot_it():
    assert next_wait_s(POLICY, elapsed_s=100, eta_s=900, time_left_s=42) == 42
    assert next_wait_s(POLICY, elapsed_s=100, eta_s=900, time_left_s=0.2) == 1


def test_given_a_retry_after_when_computing_a_wait_then_it_is_honoured():
    assert next_wait_s(POLICY, elapsed_s=40, eta_s=30, retry_after_s=120) == 120


def test_given_the_provider_reports_time_left_when_computing_a_wait_then_that_guides_it():
    assert next_wait_s(POLICY, elapsed_s=30, eta_s=30, progress=0.5, reported_eta_s=40) == 42


def test_given_progress_stuck_when_overdue_then_waits_grow_with_the_jobs_age():
    waits = [next_wait_s(POLICY, elapsed_s=t, eta_s=30, progress=0.95, previous_progress=0.95)
             for t in (60, 600, 6000)]
    assert waits == [10, 60, 300]


def test_given_a_never_finishing_job_when_polling_until_an_hour_then_checks_stay_far_below_history_limits():
    t, checks = 0.0, 0
    while t < 3600:
        t += next_wait_s(POLICY, elapsed_s=t, eta_s=30, time_left_s=3600 - t)
        checks += 1
    # ~3 state transitions and ~9 history events per check: far below 25,000 events.
    assert checks <= 60
