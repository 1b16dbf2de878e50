"""Peak memory of frame extraction for a 1-minute and a 10-minute video.

    .venv/bin/python bench/bench_memory.py [--size 640x360] [--fps 15]

Each extraction runs in a fresh Python process that samples the whole video as
one segment (the worst case: the longest stream a sampler ever sees), passes
the frames through near-duplicate dropping and the Gemini downscale as the
ExtractFrames step does, and reports its peak RSS: ``ru_maxrss``, cross-checked
with ``VmHWM``. (Linux carries ``ru_maxrss`` over from the parent through
fork + exec, so this parent stays small: clips are generated in a child too.)
Also shown: the peak above the RSS right after the imports, i.e. what the
sampling itself holds. Streaming means the 10-minute peak should be the
1-minute peak: target ≤ 1.1×. Videos are generated once into out/bench/
(git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CLIP_DIR = Path(__file__).resolve().parent.parent / "out" / "bench"
STRATEGIES = ("uniform", "scene", "keyframes")


def child(strategy: str, path: str) -> None:
    """Runs in the fresh process: extract, then print the peak RSS as JSON."""
    from vidpipe.media.dedupe import Deduper
    from vidpipe.media.resize import downscale_for_model
    from vidpipe.media.sampling import sample_frames

    imported_kb = _vm_kb("VmRSS")
    deduper, sampled = Deduper(), 0
    started = time.perf_counter()
    for frame in sample_frames(path, strategy, fps=1.0):
        sampled += 1
        if deduper.keep(frame.image):
            downscale_for_model(frame.image, "gemini")
    print(json.dumps({
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "hwm_kb": _vm_kb("VmHWM"),
        "imported_kb": imported_kb,
        "sampled": sampled,
        "seconds": time.perf_counter() - started,
    }))


def _vm_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def make_clip(minutes: int, size: tuple[int, int], fps: int) -> Path:
    path = CLIP_DIR / f"memory_{minutes}min_{size[0]}x{size[1]}_{fps}fps.mp4"
    if not path.exists():
        CLIP_DIR.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        partial = path.with_suffix(".partial.mp4")
        script = (
            "import sys; from vidpipe_local.samples import long_video; "
            "long_video(sys.argv[1], float(sys.argv[2]), size=(int(sys.argv[3]), int(sys.argv[4])), "
            "fps=int(sys.argv[5]))"
        )
        subprocess.run([sys.executable, "-c", script, str(partial), str(minutes * 60), *map(str, size), str(fps)],
                       check=True)
        partial.rename(path)
        print(f"generated {path.name} in {time.perf_counter() - started:.0f} s")
    return path


def measure(strategy: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", strategy, str(path)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    size = tuple(int(n) for n in args.size.split("x"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    clips = {minutes: make_clip(minutes, size, args.fps) for minutes in (1, 10)}
    print(f"clips: {args.size} @ {args.fps} fps, H.264; one segment = the whole video; fps=1 where it applies\n")
    print(f"{'strategy':10} {'video':>6} {'frames':>7} {'ru_maxrss MB':>13} {'VmHWM MB':>9} "
          f"{'after imports MB':>17} {'sampling MB':>12} {'seconds':>8}")
    for strategy in STRATEGIES:
        peaks, held = {}, {}
        for minutes, path in clips.items():
            r = measure(strategy, path)
            peaks[minutes], held[minutes] = r["peak_kb"], r["hwm_kb"] - r["imported_kb"]
            print(f"{strategy:10} {minutes:>4}min {r['sampled']:7d} {r['peak_kb'] / 1024:13.1f} "
                  f"{r['hwm_kb'] / 1024:9.1f} {r['imported_kb'] / 1024:17.1f} {held[minutes] / 1024:12.1f} "
                  f"{r['seconds']:8.1f}")
        ratio = peaks[10] / peaks[1]
        print(f"{'':10} 10-min / 1-min peak = {ratio:.3f} (target <= 1.1): {'met' if ratio <= 1.1 else 'MISSED'}; "
              f"sampling alone {held[10] / 1024:.1f} vs {held[1] / 1024:.1f} MB")


if __name__ == "__main__":
    main()
