"""Sampling speed against the decode limit, on 60 s 1280×720 30 fps H.264 clips.

    .venv/bin/python bench/bench_sampling.py [--repeat 5] [--seconds 60]

For each clip, over N round-robin runs: the best wall-clock time (the run least
disturbed by other work on the machine) and the median CPU time (the work done,
steady whatever the load):
- the decode limit: PyAV decoding every frame (thread_type AUTO, no pixel
  conversion) and, when imageio-ffmpeg is installed (``dev`` extra), the ffmpeg
  binary decoding to the null muxer;
- the samplers: uniform 1 fps, scene, keyframes.
Targets: uniform within 1.2× of PyAV's full decode; keyframes ≥ 5× faster.

Two clips (2 s GOP, x264 veryfast, B-frames + CABAC), generated once into
out/bench/ (git-ignored):
- ``camera``: per-frame sensor noise, crf 18 (~10 Mbit/s): bits spread over all
  frames as in camera footage;
- ``static``: a rigid texture panned with no noise, crf 23: inter frames are
  nearly free, so keyframes carry most of the bytes (keyframe-only sampling's
  worst case).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path

import av

from vidpipe.media.decoding import open_video
from vidpipe.media.sampling import sample_frames
from vidpipe_local.samples import long_video

CLIP_DIR = Path(__file__).resolve().parent.parent / "out" / "bench"
PROFILES = {
    "camera": {"sensor_noise": 3.0, "crf": 18},
    "static": {"sensor_noise": 0.0, "crf": 23},
}


def make_clip(profile: str, seconds: int) -> Path:
    path = CLIP_DIR / f"clip_{seconds}s_720p30_{profile}.mp4"
    if not path.exists():
        CLIP_DIR.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        partial = path.with_suffix(".partial.mp4")
        long_video(partial, seconds, size=(1280, 720), fps=30, shot_s=6.0, preset="veryfast", **PROFILES[profile])
        partial.rename(path)
        print(f"generated {path.name} in {time.perf_counter() - started:.1f} s")
    return path


def keyframe_byte_share(path: Path) -> tuple[float, float]:
    """(share of the bytes in keyframes, bit rate in Mbit/s)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = key = 0
        for packet in container.demux(stream):
            total += packet.size
            key += packet.size if packet.is_keyframe else 0
        return key / total, total * 8 / float(stream.duration * stream.time_base) / 1e6


def pyav_full_decode(path: Path) -> int:
    with open_video(path) as (container, stream):
        return sum(1 for _ in container.decode(stream))


def ffmpeg_full_decode(path: Path) -> int:
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-threads", "0", "-i", str(path), "-f", "null", "-"]
    subprocess.run(command, check=True)
    return 0


def sampler(strategy: str, **kwargs):
    def run(path: Path) -> int:
        return sum(1 for _ in sample_frames(path, strategy, **kwargs))

    return run


def cpu_seconds() -> float:
    """CPU time of this process (all decoder threads) and of finished child processes (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(cases: dict, path: Path, repeat: int) -> dict[str, tuple[float, float, int]]:
    """(best wall s, median CPU s, frames) per case. Cases run round-robin so that load
    from other processes on the machine falls on all of them alike."""
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            wall, cpu = time.perf_counter(), cpu_seconds()
            frames = fn(path)
            runs[name].append((time.perf_counter() - wall, cpu_seconds() - cpu, frames))
    return {
        name: (min(r[0] for r in rs), statistics.median(r[1] for r in rs), rs[-1][2])
        for name, rs in runs.items()
    }


def bench_clip(path: Path, repeat: int) -> None:
    share, mbps = keyframe_byte_share(path)
    size_mb = path.stat().st_size / 1e6
    print(f"\n== {path.name}: {size_mb:.1f} MB, {mbps:.1f} Mbit/s, keyframes hold {share:.0%} of the bytes")
    cases = {"PyAV full decode": pyav_full_decode}
    try:
        import imageio_ffmpeg  # noqa: F401

        cases["ffmpeg full decode (null muxer)"] = ffmpeg_full_decode
    except ImportError:
        print("(imageio-ffmpeg not installed: no ffmpeg figure)")
    cases |= {
        "uniform 1 fps": sampler("uniform", fps=1.0),
        "scene": sampler("scene", fps=1.0),
        "keyframes": sampler("keyframes"),
    }
    results = measure(cases, path, repeat)
    wall_limit, cpu_limit, _ = results["PyAV full decode"]
    print(f"{'case':32} {'wall s':>7} {'÷ full':>7} {'CPU s':>7} {'÷ full':>7} {'frames out':>11}")
    for name, (wall, cpu, frames) in results.items():
        print(f"{name:32} {wall:7.2f} {wall / wall_limit:7.2f} {cpu:7.2f} {cpu / cpu_limit:7.2f} {frames or '':>11}")
    for label, index in (("wall", 0), ("CPU", 1)):
        uniform = results["uniform 1 fps"][index] / results["PyAV full decode"][index]
        keyframes = results["PyAV full decode"][index] / results["keyframes"][index]
        uniform_verdict = "met" if uniform <= 1.2 else "MISSED"
        keyframes_verdict = "met" if keyframes >= 5 else "MISSED"
        print(
            f"{label:>4}: uniform = {uniform:.2f}x full decode (target <= 1.2: {uniform_verdict}); "
            f"keyframes {keyframes:.1f}x faster (target >= 5: {keyframes_verdict})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}, PyAV {av.__version__}")
    for profile in PROFILES:
        bench_clip(make_clip(profile, args.seconds), args.repeat)


if __name__ == "__main__":
    main()
