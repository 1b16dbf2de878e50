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

Then the same question on the local stack with completion webhooks (docs/webhooks.md):
N generation jobs per row, one after another, on ``LocalStack`` (VirtualClock, the real ASL under moto, the
emulator's call log counting status checks), without a webhook secret (polling), with
webhooks delivered, and with webhooks lost (the polling fallback). ``--jobs N`` (default 8),
``--local-only`` skips the simulation.
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


LOCAL_ROWS = (  # provider, the emulator's true job time, webhook secret, emulator webhook mode
    ("generic", 30, False, "on"), ("generic", 30, True, "on"), ("generic", 30, True, "off"),
    ("generic", 30, True, "forged"),
    ("openai", 120, False, "on"), ("openai", 120, True, "on"), ("openai", 120, True, "off"),
)


def local_stack_rows(jobs: int) -> list[str]:
    """Status checks per job on the local stack: polling, webhooks, webhooks lost or forged.
    The generic API reports an accurate ETA; OpenAI's gives none (vidpipe estimates 30 s for a
    1 s clip, the emulator takes 120 s)."""
    import json
    import statistics
    import time

    from vidpipe.generation.messages import execution_name, parse_job_message
    from vidpipe.observability import logger
    from vidpipe_local.clock import VirtualClock
    from vidpipe_local.stack import LocalStack

    rows = ["| provider (true job time) | webhook secret | emulator webhooks | jobs | succeeded "
            "| status checks per job (mean / max) | pick-up delay after the clip was ready (mean / max) | real time |",
            "|---|---|---|---|---|---|---|---|"]
    models = {"generic": "vidgen-1", "openai": "sora-2"}
    for provider, eta_s, webhooks, mode in LOCAL_ROWS:
        started = time.monotonic()
        options = {"webhook_mode": mode, "default_eta_s": float(eta_s)}
        with LocalStack(clock=VirtualClock(), webhooks=webhooks, emulator_options=options) as stack:
            logger.setLevel("ERROR")  # refused (forged) webhooks log a warning each
            records = []
            for n in range(jobs):  # one after another: concurrent Wait states would add up on the VirtualClock
                body = json.dumps({"type": "generate", "prompt": f"bench clip {n}: a kite over a beach",
                                   "duration_s": 1, "fps": 12, "resolution": "160x96", "provider": provider,
                                   "model": models[provider]})
                stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
                records.append(stack.wait_for_job(execution_name(parse_job_message(body)), timeout_s=300))
            checks: dict[str, int] = {}
            for call in stack.emulator.calls:
                if call.kind == "video.status":
                    checks[call.job_id] = checks.get(call.job_id, 0) + 1
            done = [r for r in records if r["status"] == "SUCCEEDED"]
            per_job = [checks.get(r["details"]["provider_job_id"], 0) for r in done]
            delays = [r["details"]["timings"]["completed_at"] - r["details"]["timings"]["submitted_at"] - eta_s
                      for r in done]
        elapsed = time.monotonic() - started
        rows.append(f"| {provider} ({eta_s} s) | {'yes' if webhooks else 'no'} | {mode if webhooks else '-'} "
                    f"| {jobs} | {len(done)} | {statistics.mean(per_job):.2f} / {max(per_job)} "
                    f"| {statistics.mean(delays):.0f} s / {max(delays):.0f} s | {elapsed:.1f} s |")
    return rows


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8, help="generation jobs per local-stack row")
    parser.add_argument("--local-only", action="store_true", help="skip the pure simulation")
    args = parser.parse_args()
    if not args.local_only:
        for line in table():
            print(line)
        print()
        print(never_finishing(Settings()))
        print()
    settings = Settings()
    print(f"Local stack (WebhookFallbackSeconds {settings.webhook_fallback_s} s):")
    for line in local_stack_rows(args.jobs):
        print(line, flush=True)


if __name__ == "__main__":
    main()
