"""Status checks and state transitions per generation job: the ETA-guided
wait policy (vidpipe.generation.polling) against fixed 10 s polling.

    .venv/bin/python bench/bench_polling.py

Pure simulation on a provider clock: no sleeping, no network. Each job has an
ETA given at submission and a true completion time (the ETA, or 1.5× it).
Three provider behaviours:
- progress: reports truthful progress, no ETA on status (OpenAI videos API);
- no progress: reports nothing but the state (Bedrock async invoke);
- optimistic: progress and time left computed from the submission ETA, so a
  late job looks 99% done with 0 s left (the generic API / emulator shape).
Target (accurate ETA): at most a third of fixed polling's checks, the clip
picked up within max(10% of the true completion time, 15 s).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from vidpipe.config import Settings
from vidpipe.generation.polling import PollPolicy, next_wait_s

FIXED_PERIOD_S = 10
# Generation state machine without enhancement: Init, ShouldEnhancePrompt, UseOriginalPrompt,
# ReserveGeneration, SubmitGeneration, StoreVideo, FinalizeSucceeded, Succeeded; then per
# status check WaitForVideo + CheckGeneration + IsVideoReady.
FIXED_TRANSITIONS, TRANSITIONS_PER_CHECK = 8, 3
# History events: 2 per Pass/Choice/Wait/Succeed, 5 per Lambda task, 2 for the execution.
FIXED_EVENTS, EVENTS_PER_CHECK = 2 + 4 * 2 + 4 * 5, 2 + 5 + 2

Report = tuple[str, float | None, float | None]  # state, progress, seconds left
Provider = Callable[[float], Report]


@dataclass(frozen=True)
class Outcome:
    checks: int
    delay_s: float

    @property
    def transitions(self) -> int:
        return FIXED_TRANSITIONS + TRANSITIONS_PER_CHECK * self.checks

    @property
    def history_events(self) -> int:
        return FIXED_EVENTS + EVENTS_PER_CHECK * self.checks


def provider(kind: str, eta_s: float, true_s: float) -> Provider:
    def report(t: float) -> Report:
        if t >= true_s:
            return "completed", 1.0, 0.0
        if kind == "progress":
            return "processing", t / true_s, None
        if kind == "optimistic":
            return "processing", min(0.99, t / eta_s), max(0.0, eta_s - t)
        return "processing", None, None

    return report


def run_policy(policy: PollPolicy, eta_s: float, report: Provider, deadline_s: float) -> Outcome:
    t, checks, previous = 0.0, 0, None
    wait = next_wait_s(policy, elapsed_s=0.0, eta_s=eta_s, time_left_s=deadline_s)
    while True:
        t += wait
        checks += 1
        state, progress, left = report(t)
        if state == "completed":
            return Outcome(checks, t - completion_time(report, t))
        wait = next_wait_s(policy, elapsed_s=t, eta_s=eta_s, progress=progress, previous_progress=previous,
                           reported_eta_s=left, time_left_s=deadline_s - t)
        previous = progress


def run_fixed(report: Provider) -> Outcome:
    t, checks = 0.0, 0
    while True:
        t += FIXED_PERIOD_S
        checks += 1
        if report(t)[0] == "completed":
            return Outcome(checks, t - completion_time(report, t))


def completion_time(report: Provider, seen_done_at: float) -> float:
    """The true completion time, found by bisection on the simulated provider."""
    low, high = 0.0, seen_done_at
    while high - low > 1e-6:
        mid = (low + high) / 2
        low, high = (low, mid) if report(mid)[0] == "completed" else (mid, high)
    return high


def table() -> list[str]:
    settings = Settings()
    policy = PollPolicy.from_settings(settings)
    rows = ["| ETA | true | provider reports | checks (policy / fixed 10 s) | ratio | transitions (policy / fixed) "
            "| history events (policy) | pick-up delay (policy / fixed) | target |",
            "|---|---|---|---|---|---|---|---|---|"]
    for eta_s in (30, 90, 900):
        for overrun in (1.0, 1.5):
            true_s = eta_s * overrun
            for kind in ("progress", "no progress", "optimistic"):
                report = provider(kind, eta_s, true_s)
                ours, fixed = run_policy(policy, eta_s, report, settings.poll_deadline_s), run_fixed(report)
                allowed = max(0.1 * true_s, 15.0)
                met = ours.delay_s <= allowed and (overrun > 1 or ours.checks <= fixed.checks / 3)
                target = ("met" if met else "MISSED") if overrun == 1 else ("delay ok" if met else "delay MISSED")
                rows.append(
                    f"| {_dur(eta_s)} | {_dur(true_s)} | {kind} | {ours.checks} / {fixed.checks} "
                    f"| {ours.checks / fixed.checks:.2f} | {ours.transitions} / {fixed.transitions} "
                    f"| {ours.history_events} | {ours.delay_s:.0f} s / {fixed.delay_s:.0f} s "
                    f"(≤ {allowed:.0f} s) | {target} |")
    return rows


def never_finishing(settings: Settings) -> str:
    """The loop's worst case: a job that never completes runs to the deadline or attempt cap."""
    policy, t, checks = PollPolicy.from_settings(settings), 0.0, 0
    while t < settings.poll_deadline_s and checks < settings.poll_max_attempts:
        t += next_wait_s(policy, elapsed_s=t, eta_s=30, time_left_s=settings.poll_deadline_s - t)
        checks += 1
    outcome = Outcome(checks, math.nan)
    return (f"never-finishing job (ETA 30 s, deadline {settings.poll_deadline_s:.0f} s, cap "
            f"{settings.poll_max_attempts}): {checks} checks over {t:.0f} s, {outcome.transitions} transitions, "
            f"~{outcome.history_events} history events (Step Functions limit: 25,000)")


def _dur(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 600 else f"{seconds:g} s"


def main() -> None:
    for line in table():
        print(line)
    print()
    print(never_finishing(Settings()))


if __name__ == "__main__":
    main()
