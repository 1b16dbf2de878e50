"""The analysis ASL's come-back loop, executed by moto with stub steps: a chunk handed back
with "retry after N s" waits N s (plus jitter) and runs again, within its bounds."""

import json

from test_asl_execution import StubSteps, aws_semantics, run_analysis  # noqa: F401 (fixtures)

ASL = json.loads((__import__("pathlib").Path(__file__).resolve().parents[3] / "statemachines" /
                  "analysis.asl.json").read_text())
CHUNK_STATES = ASL["States"]["ExtractAndAnalyze"]["ItemProcessor"]["States"]["AnalyzeChunks"]["ItemProcessor"]["States"]
MAX_COME_BACKS = CHUNK_STATES["AnalyzeChunkCanComeBack"]["Choices"][0]["NumericGreaterThan"]


class RateLimitedChunks(StubSteps):
    """AnalyzeChunk answers RateLimited ("retry after 7 s: …") ``times`` times per chunk, then works."""

    def __init__(self, times: int, **options):
        super().__init__(**options)
        self.times = times
        self.refused: dict[tuple, int] = {}

    def __call__(self, name: str, event: dict):
        if name == "analyze":
            key = (event["manifest_key"], event["chunk"])
            with self._lock:
                self.calls.append((name, event))
                self.refused[key] = self.refused.get(key, 0) + 1
                refuse = self.refused[key] <= self.times
            if refuse:
                return {"errorType": "RateLimited", "stackTrace": [],
                        "errorMessage": "retry after 7 s: rate limit openai (6 rpm): next slot in 6.2s"}, True
            return {"chunk_key": "c"}, False
        return super().__call__(name, event)


def recorded_waits(monkeypatch, clock) -> list[float]:
    """The seconds every Wait state (and Retry interval) waited on the execution's clock."""
    waited: list[float] = []
    sleep = clock.sleep

    def recording(seconds: float) -> None:
        waited.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(clock, "sleep", recording)
    return waited


def test_given_rate_limited_chunks_when_executed_then_each_waits_what_it_was_told_and_runs_again_until_done(
        run_analysis, aws_semantics, monkeypatch):
    steps = RateLimitedChunks(times=2, segments=1)
    told = recorded_waits(monkeypatch, aws_semantics.clock)

    execution = run_analysis(steps)

    assert execution["status"] == "SUCCEEDED"
    assert sorted(steps.refused.values()) == [3, 3, 3]  # two hand-backs and the run that worked, per chunk
    assert steps.named("finalize")[0]["outcome"] == "SUCCEEDED"
    # N, plus MathRandom(0, N) of jitter (end excluded on AWS, included by moto)
    assert len(told) == 6 and all(7 <= w <= 14 for w in told)


def test_given_a_chunk_that_is_always_rate_limited_then_it_gives_up_after_its_bound_and_the_job_fails_with_a_reason(
        run_analysis):
    steps = RateLimitedChunks(times=10_000, segments=1)

    execution = run_analysis(steps, timeout_s=240)

    assert execution["status"] == "FAILED" and execution["error"] == "RateLimited"
    assert max(steps.refused.values()) == MAX_COME_BACKS + 1
    (finalized,) = steps.named("finalize")
    cause = finalized["error"]["Cause"]
    assert f"gave up after {MAX_COME_BACKS + 1} come-backs" in cause and "retry after 7 s: rate limit" in cause
    assert steps.named("summarize") == []
