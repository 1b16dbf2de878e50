"""What the scale runs would cost on AWS, and how long a deployment would take for the one-hour video.

    .venv/bin/python bench/scale_costs.py            # runs `pytest -m scale` (~5 min), then prints the tables
    .venv/bin/python bench/scale_costs.py --figures DIR   # only the tables, from a previous run's JSON

tests/integration/test_scale.py meters each job while the local stack runs it (state transitions,
Lambda invocations with their durations, S3 requests, bytes read of the upload) and, with
VIDPIPE_SCALE_FIGURES set, writes the figures as JSON. This script prices them and models the
deployment's critical path. The tables go into docs/scale.md.

The frames_per_chunk what-if regroups the frames each segment kept (the figures' frames_per_segment).

Prices: us-east-1, on demand, no free tier (PRICES below). Money is Decimal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from vidpipe.analysis.summarize import REDUCE_BATCH, REDUCE_WORKERS
from vidpipe.config import Settings

ROOT = Path(__file__).resolve().parents[1]

PRICES = {  # us-east-1, x86_64 (template.yaml: Architectures [x86_64]), checked 2026-11
    "sfn_transition": Decimal("0.025") / 1000,  # Step Functions Standard, per state transition
    "lambda_gb_s": Decimal("0.0000166667"),  # Lambda, per GB-second
    "lambda_request": Decimal("0.20") / 1_000_000,  # Lambda, per request
    "s3_get": Decimal("0.0004") / 1000,  # S3 Standard GET, HEAD and other reads, per request
    "s3_put": Decimal("0.005") / 1000,  # S3 Standard PUT, COPY, POST, LIST, per request
}
S3_PUT_CLASS = {"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                "ListObjects", "ListObjectsV2", "ListObjectVersions", "PostObject"}
S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}

# The deployment model (the assumptions docs/scale.md states).
FULL_VCPU_MB = 1769  # Lambda gives one vCPU at 1,769 MB, proportionally less below
CHAT_LATENCY_S = (2.0, 5.0, 10.0)  # one chunk call (8 small images, ~600 output tokens); 5 s is the base case
SUMMARY_LATENCY_FACTOR = 1.5  # a reduce call (80 scene lines in, a paragraph out) vs a chunk call
WHAT_IF_FRAMES_PER_CHUNK = (12, 16)  # the frames_per_chunk what-if, besides the measured setting
AWS_REQUEST_S = 0.02  # one S3 / DynamoDB request from a Lambda in-region
SFN_STATE_S = 0.05  # Step Functions' own time per state on the path (Lambda invoke overhead included)
GOAL_S = 90.0


def usd(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP)}"


# --- costs ----------------------------------------------------------------------------------------


def modelled_gb_seconds(job: dict, memory: dict[str, int], latency_s: float = 5.0) -> float:
    """GB-s on Lambda: each invocation's CPU at its memory's vCPU share, plus its clock sleeps (rate-limit
    waits: billed on AWS too), plus the provider's latency per chat call, plus 20 ms per S3 / DynamoDB
    request (at 1 GB). The stopwatch here also holds the time a handler waited for one of two shared cores."""
    total = 0.0
    for fn, cpus in job["cpu_s"].items():
        mem = memory[fn]
        chat = {"AnalyzeChunkFunction": latency_s, "SummarizeReportFunction": 0.0}.get(fn, 0.0)
        for cpu, slept in zip(cpus, job["slept_s"][fn], strict=True):
            total += (aws_duration(cpu, slept, mem) + chat) * mem / 1024
    requests = sum(job["s3_requests"].values()) + job["dynamodb_requests"]
    return total + requests * AWS_REQUEST_S


def aws_costs(job: dict, gb_seconds: float | None = None) -> dict[str, Decimal]:
    requests = job["s3_requests"]
    puts = sum(n for op, n in requests.items() if op in S3_PUT_CLASS)
    gets = sum(n for op, n in requests.items() if op not in S3_PUT_CLASS and op not in S3_FREE)
    invocations = sum(job["invocations"].values())
    costs = {
        "step_functions": job["transitions"] * PRICES["sfn_transition"],
        "lambda_compute": Decimal(str(job["gb_seconds"] if gb_seconds is None else gb_seconds)) * PRICES["lambda_gb_s"],
        "lambda_requests": invocations * PRICES["lambda_request"],
        "s3_requests": gets * PRICES["s3_get"] + puts * PRICES["s3_put"],
    }
    costs["aws_total"] = sum(costs.values(), Decimal(0))
    return costs | {"s3_gets": gets, "s3_puts": puts, "invocations": invocations}


def provider_cost(spend: dict | None) -> Decimal:
    return Decimal(str((spend or {}).get("cost_usd", "0")))


def job_row(label: str, job: dict, spend: dict | None, upload_bytes: int | None, memory: dict[str, int]) -> dict:
    modelled = modelled_gb_seconds(job, memory) if job.get("cpu_s") else None
    costs = aws_costs(job, modelled)
    read = f"{job['upload_bytes_read'] / upload_bytes:.2f}×" if upload_bytes and job["upload_bytes_read"] else "—"
    return {
        "job": label,
        "transitions": job["transitions"],
        "history events (parent + children)": f"{job['history_events']} + {job['child_history_events']}",
        "largest state": f"{job['largest_state_bytes'] / 1024:.1f} KiB",
        "Lambda invocations": costs["invocations"],
        "GB-s here (stopwatch)": f"{job['gb_seconds']:.1f}",
        "GB-s on AWS (model)": f"{modelled:.1f}" if modelled is not None else "—",
        "S3 GET / PUT": f"{costs['s3_gets']} / {costs['s3_puts']}",
        "upload read": read,
        "AWS cost": usd(costs["aws_total"]),
        "provider cost (ledger)": usd(provider_cost(spend)),
        "_costs": costs,
    }


def mean_row(label: str, rows: list[dict], jobs: list[dict], spends: list[dict | None]) -> dict:
    n = len(jobs)
    total = sum((r["_costs"]["aws_total"] for r in rows), Decimal(0))
    provider = sum((provider_cost(s) for s in spends), Decimal(0))
    return {
        "job": label,
        "transitions": f"{sum(j['transitions'] for j in jobs) / n:.1f}",
        "history events (parent + children)": f"{sum(j['history_events'] for j in jobs) / n:.1f}",
        "largest state": f"{max(j['largest_state_bytes'] for j in jobs) / 1024:.1f} KiB (max)",
        "Lambda invocations": f"{sum(r['_costs']['invocations'] for r in rows) / n:.1f}",
        "GB-s here (stopwatch)": f"{sum(j['gb_seconds'] for j in jobs) / n:.1f}",
        "GB-s on AWS (model)": "—",
        "S3 GET / PUT": f"{sum(r['_costs']['s3_gets'] for r in rows) / n:.1f} / "
                        f"{sum(r['_costs']['s3_puts'] for r in rows) / n:.1f}",
        "upload read": "—",
        "AWS cost": usd(total / n),
        "provider cost (ledger)": usd(provider / n),
    }


def markdown(rows: list[dict]) -> str:
    columns = [c for c in rows[0] if not c.startswith("_")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def cost_breakdown(job: dict, memory: dict[str, int]) -> str:
    costs = aws_costs(job, modelled_gb_seconds(job, memory))
    parts = ("step_functions", "lambda_compute", "lambda_requests", "s3_requests")
    return ", ".join(f"{name.replace('_', ' ')} {usd(costs[name])}" for name in parts)


# --- the deployment's critical path ------------------------------------------------------------------


def aws_duration(cpu_s: float, slept_s: float, memory_mb: int, requests: float = 0.0) -> float:
    """A handler's duration on Lambda: its CPU work at the memory's vCPU share, its waits, its AWS requests."""
    return cpu_s * max(1.0, FULL_VCPU_MB / memory_mb) + slept_s + requests * AWS_REQUEST_S


def schedule(durations: list[float], slots: int) -> float:
    """When the last of ``durations`` ends, started in order on ``slots`` parallel slots (a Map's MaxConcurrency)."""
    free = [0.0] * min(slots, max(1, len(durations)))
    for d in durations:
        free.sort()
        free[0] += d
    return max(free)


def rate_bound_s(calls: int, rpm: int, burst: float = 0.1, margin_s: float = 2.0) -> float:
    """Seconds the shared bucket needs to admit ``calls`` (vidpipe.spend.ratelimit.Bucket.for_limit)."""
    capacity = max(1, math.floor(rpm * burst))
    per_second = (rpm + 1 - capacity) / (60 + margin_s)
    return max(0.0, (calls - capacity) / per_second)


def reduce_levels(doc: dict, summary_calls: int) -> list[int]:
    """Reduce calls per level of the tree (vidpipe.analysis.summarize): 181 scenes = 3 groups, then the final.
    From the video's shots (one scene each) when the figures have them, else from the ledger's count."""
    def tree(groups: int) -> list[int]:
        levels = [groups]
        while levels[-1] > 1:
            levels.append(-(-levels[-1] // REDUCE_BATCH))
        return levels

    if doc.get("shots"):
        return tree(-(-int(doc["shots"]) // REDUCE_BATCH))
    for groups in range(1, summary_calls + 1):
        if sum(tree(groups)) == summary_calls:
            return tree(groups)
    raise ValueError(f"no reduce tree has {summary_calls} calls")


def critical_path(doc: dict, latency_s: float, rpm: int = 60, extract_slots: int = 10, chunk_slots: int = 4,
                  chunks_per_segment: list[int] | None = None, chunk_scale: float = 1.0) -> dict:
    """The one-hour job's wall time on AWS. ``chunks_per_segment`` (default: as measured, in the figures'
    order) models another frames_per_chunk; each chunk call then takes ``chunk_scale`` × the measured
    chunk's CPU and ``latency_s`` (its frames per call against the measured)."""
    (job_id, job), = [(j, f) for j, f in doc["jobs"].items() if j != "(intake)"]
    memory = doc["memory_mb"]
    chunks_per_segment = job["chunks_per_segment"] if chunks_per_segment is None else chunks_per_segment

    def step(fn: str, index: int = 0, calls: int = 0, requests: float = 0.0) -> float:
        return aws_duration(job["cpu_s"][fn][index], 0.0, memory[fn], requests) + calls * latency_s

    chunk_cpu = job["cpu_s"]["AnalyzeChunkFunction"]
    chunk_s = chunk_scale * sum(aws_duration(c, 0.0, memory["AnalyzeChunkFunction"], 4)
                                for c in chunk_cpu) / len(chunk_cpu)
    chunk_latency = chunk_scale * latency_s
    s3_per_extract = sum(job["s3_requests"].values()) / max(1, len(job["cpu_s"]["ExtractFramesFunction"]))
    segments = [aws_duration(cpu, 0.0, memory["ExtractFramesFunction"], s3_per_extract)
                + schedule([chunk_s + chunk_latency] * chunks, chunk_slots)
                for cpu, chunks in zip(job["cpu_s"]["ExtractFramesFunction"], chunks_per_segment, strict=True)]
    chat_calls = int(doc["spend"][job_id]["calls"])
    measured_chunk_calls = sum(job["chunks_per_segment"])
    chunk_calls = sum(chunks_per_segment)
    levels = reduce_levels(doc, chat_calls - measured_chunk_calls)  # the scenes, so the tree, do not change
    intake = doc["jobs"].get("(intake)", {}).get("cpu_s", {}).get("StartJobsFunction", [0.0])
    head = (SFN_STATE_S * 4 + aws_duration(max(intake), 0.0, memory["StartJobsFunction"], 4)
            + step("ProbeVideoFunction", requests=8) + step("PlanAnalysisFunction", requests=6))
    map_compute = schedule(segments, extract_slots) + SFN_STATE_S * 4
    first_chunk = min(aws_duration(c, 0.0, memory["ExtractFramesFunction"], s3_per_extract)
                      for c in job["cpu_s"]["ExtractFramesFunction"])
    map_rate = first_chunk + rate_bound_s(chunk_calls, rpm) + chunk_latency
    # SummarizeReport: its own work, then the reduce tree level by level; a level's calls run side by side
    # (REDUCE_WORKERS at a time), each once the shared bucket has a slot for it after the chunk calls'.
    reduce_s = latency_s * SUMMARY_LATENCY_FACTOR
    map_end = max(map_compute, map_rate)
    clock = map_end + step("SummarizeReportFunction", requests=60 + 3)
    booked = chunk_calls
    for level in levels:
        for wave in range(0, level, REDUCE_WORKERS):
            starts = []
            for _ in range(min(REDUCE_WORKERS, level - wave)):
                booked += 1
                starts.append(max(clock, first_chunk + rate_bound_s(booked, rpm)))
            clock = max(starts) + reduce_s
    summarize = clock - map_end
    finalize = step("FinalizeJobFunction", requests=6) + SFN_STATE_S * 4
    total = head + map_end + summarize + finalize
    return {"latency_s": latency_s, "rpm": rpm, "head": head, "map_compute": map_compute, "map_rate": map_rate,
            "summarize": summarize, "finalize": finalize, "total": total, "chunk_calls": chunk_calls,
            "summary_calls": sum(levels), "reduce_levels": levels,
            "segments": len(segments), "chunk_latency": chunk_latency}


def rpm_for_goal(doc: dict, latency_s: float, **model) -> int | None:
    for rpm in range(60, 2001, 10):
        if critical_path(doc, latency_s, rpm, **model)["total"] <= GOAL_S:
            return rpm
    return None


# --- what frames_per_chunk would change ------------------------------------------------------------


def chunks_at(frames: list[int], per_chunk: int) -> list[int]:
    """Chunks per segment (the figures' order) at ``per_chunk`` frames a chunk."""
    return [-(-f // per_chunk) for f in frames]


def frames_per_call_scale(doc: dict, chunks: list[int]) -> float:
    """Frames per chunk call against the measured: what a call's latency and CPU grow by (its output,
    a description per frame, is most of a chunk call's latency)."""
    (_, job), = [(j, f) for j, f in doc["jobs"].items() if j != "(intake)"]
    return sum(job["chunks_per_segment"]) / sum(chunks)


# --- the report ------------------------------------------------------------------------------------


def report(folder: Path) -> str:
    out = []
    one = json.loads((folder / "one_hour.json").read_text()) if (folder / "one_hour.json").exists() else None
    many = json.loads((folder / "concurrent.json").read_text()) if (folder / "concurrent.json").exists() else None
    if one:
        (job_id, job), = [(j, f) for j, f in one["jobs"].items() if j != "(intake)"]
        out += [f"## One-hour video ({one['wall_s']:.0f} s on this machine; status {one['status'][job_id]})", "",
                markdown([job_row("one-hour analysis", job, one["spend"][job_id], one["upload_bytes"],
                                  one["memory_mb"])]),
                "", f"AWS cost breakdown (Lambda at the modelled GB-s): {cost_breakdown(job, one['memory_mb'])}.", "",
                "Invocations: " + ", ".join(f"{fn.removesuffix('Function')} {n}"
                                            for fn, n in sorted(job["invocations"].items())) + ".", "",
                "## Deployment wall time, one-hour video", "",
                "| chat latency | rpm | intake+probe+plan | segments (compute) | segments (rate bound) "
                "| summarize (parallel) | finalize | total | goal 90 s | rpm for 90 s |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for latency in CHAT_LATENCY_S:
            path = critical_path(one, latency)
            needed = rpm_for_goal(one, latency)
            out.append(f"| {latency:.0f} s | {path['rpm']} | {path['head']:.1f} s | {path['map_compute']:.1f} s | "
                       f"{path['map_rate']:.1f} s | {path['summarize']:.1f} s | {path['finalize']:.1f} s | "
                       f"**{path['total']:.0f} s** | {'met' if path['total'] <= GOAL_S else 'missed'} | "
                       f"{needed if needed else '> 2000'} |")
        base = critical_path(one, 5.0)
        levels = " then ".join(f"{n} in parallel" if n > 1 else "1" for n in base["reduce_levels"])
        out += ["", f"{base['segments']} segments, {base['chunk_calls']} chunk calls, {base['summary_calls']} "
                    f"summary calls ({levels}; at most {REDUCE_WORKERS} at once)."]
        out += what_if_table(one)
        cpu = {fn: sum(v) / len(v) for fn, v in job["cpu_s"].items()}
        out += ["", "Measured CPU per invocation (mean, this machine): "
                + ", ".join(f"{fn.removesuffix('Function')} {s:.2f} s" for fn, s in sorted(cpu.items())) + "."]
    if many:
        analyses = [many["jobs"][j] for j in many["analyses"]]
        generations = [many["jobs"][j] for j in many["generations"]]
        rows = [job_row(f"analysis {i + 1}", j, many["spend"][jid], many["upload_bytes"], many["memory_mb"])
                for i, (jid, j) in enumerate(zip(many["analyses"], analyses))]
        gen_rows = [job_row(jid, j, many["spend"][jid], None, many["memory_mb"])
                    for jid, j in zip(many["generations"], generations, strict=True)]
        rows.append(mean_row("generation (mean of 50)", gen_rows, generations,
                             [many["spend"][j] for j in many["generations"]]))
        statuses = sorted(set(many["status"].values()))
        out += ["", f"## 50 generations and 5 one-hour analyses at once ({many['wall_s']:.0f} s on this machine; "
                    f"statuses {statuses})", "", markdown(rows), "",
                f"Busiest minute at the emulator: {many['busiest_minute']} (limit 60 rpm each); calls "
                f"{many['calls']}; provider time spanned {many['provider_span_s']:.0f} s."]
    return "\n".join(out)


def what_if_table(one: dict) -> list[str]:
    (_, job), = [(j, f) for j, f in one["jobs"].items() if j != "(intake)"]
    measured_per_chunk = Settings().frames_per_chunk  # the run's: the template's default
    frames = job["frames_per_segment"]
    out = ["", f"### What frames_per_chunk would change (measured at {measured_per_chunk})", "",
           "| frames_per_chunk | chat latency (8-frame-chunk base) | chunk calls | chunk call latency "
           "| segments (compute) | segments (rate bound) | summarize | total | goal 90 s "
           "| total if a call's latency does not grow | rpm for 90 s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for per_chunk in (measured_per_chunk, *WHAT_IF_FRAMES_PER_CHUNK):
        chunks = chunks_at(frames, per_chunk)
        for latency in CHAT_LATENCY_S:
            model = {"chunks_per_segment": chunks, "chunk_scale": frames_per_call_scale(one, chunks)}
            grown, flat = critical_path(one, latency, **model), critical_path(one, latency, chunks_per_segment=chunks)
            needed = rpm_for_goal(one, latency, **model)
            out.append(f"| {per_chunk}{' (default)' if per_chunk == measured_per_chunk else ''} | {latency:.0f} s "
                       f"| {grown['chunk_calls']} | {grown['chunk_latency']:.1f} s | {grown['map_compute']:.1f} s "
                       f"| {grown['map_rate']:.1f} s | {grown['summarize']:.1f} s | **{grown['total']:.0f} s** "
                       f"| {'met' if grown['total'] <= GOAL_S else 'missed'} "
                       f"| {flat['total']:.0f} s ({'met' if flat['total'] <= GOAL_S else 'missed'}) "
                       f"| {needed if needed else '> 2000'} |")
    spread = Counter(frames)
    out += ["", "Frames per segment: " + ", ".join(f"{n} segments × {f}" for f, n in sorted(spread.items()))
            + f" ({sum(frames)} frames)."]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, help="a folder of figures from a previous run (default: run now)")
    args = parser.parse_args()
    folder = args.figures
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="vidpipe-scale-"))
        env = {**os.environ, "VIDPIPE_SCALE_FIGURES": str(folder)}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "scale", "-p", "no:cacheprovider",
                        str(ROOT / "tests/integration/test_scale.py")], cwd=ROOT, env=env, check=False)
    print(report(folder))


if __name__ == "__main__":
    main()
