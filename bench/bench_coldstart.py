"""Cold start of every Lambda handler: import time and memory of a fresh process.

    .venv/bin/python bench/bench_coldstart.py [--repeat 5] [--tree DIR] [--json FILE]

For each functions/<name>/app.py a fresh Python process is started with the
environment Lambda gives it (AWS_LAMBDA_FUNCTION_NAME set, so the Powertools
Tracer is enabled as deployed; the template's variables with dummy values; no
network is used: nothing is invoked, only imported), the shared layer and the
function's folder on sys.path, and it imports the handler module. Reported:

- import s: wall time of ``import app`` (the INIT phase before any work), the
  median of ``--repeat`` fresh processes;
- base MiB: VmRSS of the interpreter before the import;
- peak MiB: VmHWM after the import (the whole process, as Lambda's "Max Memory Used"
  counts it at the end of INIT), and imports MiB = peak - base;
- heavy: which of boto3 / aws_xray_sdk / numpy / av / PIL / httpx the import loaded.

``--before DIR`` also measures another copy of ``layers/`` and ``functions/``
(a snapshot taken before a change), interleaved run by run with this tree, so
a before/after table comes from the same machine in the same minutes. The
packages (boto3, Powertools, the media layer's) come from the venv.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("boto3", "aws_xray_sdk.core", "numpy", "av", "PIL.Image", "httpx")

LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "vidpipe-bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    "TABLE_NAME": "bench-jobs",
    "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
    "MEDIA_BUCKET": "bench-media",
    "ALARM_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:bench-alarms",
    "POWERTOOLS_SERVICE_NAME": "vidpipe",
    "POWERTOOLS_METRICS_NAMESPACE": "vidpipe",
    "LOG_LEVEL": "WARNING",
}

CHILD = r"""
import json, sys, time
from pathlib import Path

def vm(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

base = vm("VmRSS")
started = time.perf_counter()
import app  # noqa: F401
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "base_kb": base, "peak_kb": vm("VmHWM"),
                  "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def measure(tree: Path, function: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env |= LAMBDA_ENV | {"PYTHONPATH": os.pathsep.join([str(tree / "layers" / "shared"),
                                                        str(tree / "functions" / function)])}
    out = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + CHILD], env=env, cwd=tree / "functions" /
                         function, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    return {
        "import_s": statistics.median(r["seconds"] for r in runs),
        "base_mib": statistics.median(r["base_kb"] for r in runs) / 1024,
        "peak_mib": statistics.median(r["peak_kb"] for r in runs) / 1024,
        "imports_mib": statistics.median(r["peak_kb"] - r["base_kb"] for r in runs) / 1024,
        "heavy": runs[0]["heavy"],
    }


def run(trees: list[Path], repeat: int) -> list[dict[str, dict]]:
    """Per tree, per handler: the figures of ``repeat`` fresh processes. The trees are measured
    in turn for each handler and each repeat, so a busy machine weighs on all of them alike."""
    functions = sorted(app.parent.name for app in (trees[0] / "functions").glob("*/app.py"))
    runs: list[dict[str, list]] = [{f: [] for f in functions} for _ in trees]
    for function in functions:
        for _ in range(repeat):
            for i, tree in enumerate(trees):
                runs[i][function].append(measure(tree, function))
    return [{f: summarize(r) for f, r in tree_runs.items()} for tree_runs in runs]


def table(results: dict[str, dict]) -> str:
    lines = ["| handler | import s | peak MiB | imports MiB | heavy modules loaded |",
             "| --- | ---: | ---: | ---: | --- |"]
    for function, r in results.items():
        lines.append(f"| {function} | {r['import_s']:.2f} | {r['peak_mib']:.0f} | {r['imports_mib']:.0f} | "
                     f"{', '.join(r['heavy']) or '-'} |")
    return "\n".join(lines)


def comparison(before: dict[str, dict], after: dict[str, dict]) -> str:
    lines = ["| handler | import s before | import s after | peak MiB before | peak MiB after | heavy after |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for function, a in after.items():
        b = before.get(function)
        if b is None:
            continue
        lines.append(f"| {function} | {b['import_s']:.2f} | {a['import_s']:.2f} | {b['peak_mib']:.0f} | "
                     f"{a['peak_mib']:.0f} | {', '.join(a['heavy']) or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=ROOT, help="a copy of layers/ and functions/ to measure")
    parser.add_argument("--before", type=Path, help="also measure this copy, interleaved, and compare")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    trees = [args.tree.resolve()] + ([args.before.resolve()] if args.before else [])
    results = run(trees, args.repeat)
    print(f"cold start, median of {args.repeat} fresh processes, tree {args.tree}")
    print(table(results[0]))
    if args.before:
        print(f"\nbefore ({args.before}) and after ({args.tree}), interleaved")
        print(comparison(results[1], results[0]))
    if args.json:
        args.json.write_text(json.dumps({"after": results[0], "before": results[1] if args.before else None},
                                        indent=2))


if __name__ == "__main__":
    main()
