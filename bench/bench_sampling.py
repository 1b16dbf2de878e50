"""Sampling speed against the decode limit, on a 60 s 1280×720 30 fps H.264 clip.

    .venv/bin/python bench/bench_sampling.py [--repeat 3] [--seconds 60]

Times (best of N, wall clock):
- the decode limit: PyAV decoding every frame (thread_type AUTO, no pixel
  conversion) and, when imageio-ffmpeg is installed, the ffmpeg binary decoding
  to the null muxer;
- the samplers: uniform 1 fps, scene, keyframes.
Targets: uniform within 1.2× of PyAV's full decode; keyframes ≥ 5× faster.
The clip is generated once into out/bench/ (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

from vidpipe.media.decoding import open_video
from vidpipe.media.sampling import sample_frames
from vidpipe_local.samples import long_video

CLIP_DIR = Path(__file__).resolve().parent.parent / "out" / "bench"


def make_clip(seconds: int) -> Path:
    path = CLIP_DIR / f"clip_{seconds}s_720p30.mp4"
    if not path.exists():
        CLIP_DIR.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        long_video(path.with_suffix(".tmp.mp4"), seconds, size=(1280, 720), fps=30, shot_s=6.0)
        path.with_suffix(".tmp.mp4").rename(path)
        print(f"generated {path.name} in {time.perf_counter() - started:.1f} s")
    return path


def pyav_full_decode(path: Path) -> int:
    with open_video(path) as (container, stream):
        return sum(1 for _ in container.decode(stream))


def ffmpeg_full_decode(path: Path) -> int:
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-threads", "0", "-i", str(path), "-f", "null", "-"],
        check=True,
    )
    return 0


def sampler(strategy: str, **kwargs):
    def run(path: Path) -> int:
        sampled = sample_frames(path, strategy, **kwargs)
        kept = sum(1 for _ in sampled)
        return kept

    return run


def best_of(fn, path: Path, repeat: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    path = make_clip(args.seconds)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"clip: {path.name}, {path.stat().st_size / 1e6:.1f} MB\n")

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
    results = {name: best_of(fn, path, args.repeat) for name, fn in cases.items()}
    limit = results["PyAV full decode"][0]
    print(f"{'case':34} {'seconds':>8} {'× PyAV full decode':>19} {'frames':>7}")
    for name, (seconds, frames) in results.items():
        print(f"{name:34} {seconds:8.2f} {seconds / limit:19.2f} {frames:7d}")
    uniform = results["uniform 1 fps"][0] / limit
    keyframes = limit / results["keyframes"][0]
    print(f"\nuniform / full decode = {uniform:.2f} (target <= 1.2): {'met' if uniform <= 1.2 else 'MISSED'}")
    print(f"full decode / keyframes = {keyframes:.1f}x faster (target >= 5): {'met' if keyframes >= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
