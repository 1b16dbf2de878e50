"""Episode assembly: vidpipe.media.concat against the ffmpeg binary (imageio-ffmpeg's), same shots, one run.

    .venv/bin/python bench/bench_assemble.py [--shots 8] [--seconds 4] [--size 640x360] [--fps 24] [--repeat 2]

Two cases, N shots each (generated once into out/bench/assemble/, git-ignored; textured, moving, with
sensor noise so inter frames cost bits the way camera footage does):

- ``copy``: every shot H.264 at the episode's size and rate from one encoder setting (what one provider
  returns for a production). vidpipe remuxes packet by packet; ffmpeg runs its concat demuxer with
  ``-c copy`` (which, unlike vidpipe, does not check that the shots share parameter sets).
- ``re-encode``: shots of mixed sizes and rates (the episode's size at 30 fps, 480x270 at 24, 320x240 at
  25, ...). vidpipe decodes, fits (scale + pad), retimes and encodes; ffmpeg runs the equivalent filter
  graph (scale, pad, setsar, fps, concat) into the same encoder with the same settings (libx264, preset
  and CRF from vidpipe.media.concat, GOP 2 s).

Each tool runs as a child process (posix_spawn + wait4: its own CPU time and peak RSS; the vidpipe child's time
includes starting Python and importing PyAV; the join alone is printed as ``join_s``). Best wall time of
``--repeat`` runs, median CPU. Ratio = ffmpeg's wall time ÷ vidpipe's (> 1: vidpipe is faster). Both
outputs are decoded afterwards (PyAV, untimed) to check the frame count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIP_DIR = ROOT / "out" / "bench" / "assemble"


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# ------------------------------------------------------------------ clips


def make_shots(case: str, n: int, seconds: float, size: tuple[int, int], fps: int) -> list[Path]:
    from vidpipe_local import samples

    w, h = size
    mixed = [((w, h), 30), ((480, 270), 24), ((320, 240), 25), ((w, h), fps), ((854, 480), 24)]
    out = []
    for i in range(n):
        shot_size, shot_fps = ((w, h), fps) if case == "copy" else mixed[i % len(mixed)]
        path = CLIP_DIR / f"{case}-{i}-{shot_size[0]}x{shot_size[1]}-{shot_fps}-{seconds:g}s.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            spec = samples.ShotSpec(duration_s=seconds, seed=10 + i, motion=(2.0 + i, 1.0))
            samples.make_video(path, [spec], fps=shot_fps, size=shot_size, preset="veryfast", crf=23,
                               sensor_noise=2.0)
        out.append(path)
    return out


# ------------------------------------------------------------------ the two tools


def vidpipe_command(shots: list[Path], out: Path, size: tuple[int, int], fps: int) -> list[str]:
    return [sys.executable, __file__, "--child", str(out), "--size", f"{size[0]}x{size[1]}", "--fps", str(fps),
            *map(str, shots)]


def ffmpeg_command(case: str, shots: list[Path], out: Path, size: tuple[int, int], fps: int,
                   settings: dict) -> list[str]:
    ff = ffmpeg_exe()
    if case == "copy":
        listing = out.with_suffix(".txt")
        listing.write_text("".join(f"file '{p}'\n" for p in shots))
        return [ff, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out)]
    w, h = size
    chains = [f"[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
              f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps},format=yuv420p[v{i}]" for i in range(len(shots))]
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(len(shots))) + \
        f"concat=n={len(shots)}:v=1:a=0[out]"
    inputs = [arg for p in shots for arg in ("-i", str(p))]
    return [ff, "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
            "-preset", settings["preset"], "-crf", str(settings["crf"]), "-g", str(settings["gop_s"] * fps), "-movflags", "+faststart", str(out)]


def run_child(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall time, CPU time and peak RSS. posix_spawn (vfork-like), so the peak RSS is
    the child's own, not this process's pages copied by a fork before exec."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/shared'}:{ROOT / 'src'}"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        started = time.perf_counter()
        pid = os.posix_spawn(cmd[0], cmd, env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed: {stderr.decode()[-2000:]}")
    result = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}
    if stdout.strip():
        result.update(json.loads(stdout.decode().strip().splitlines()[-1]))
    return result


def frames_in(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


# ------------------------------------------------------------------ children
# Everything that imports PyAV/OpenCV runs in a child: a child's peak RSS counts the pages of the
# process it was spawned from (Linux keeps the larger of the two across exec), so this one stays small.


def python_child(*args: str) -> dict:
    return run_child([sys.executable, __file__, *args])


def child_make(case: str, n: int, seconds: float, size: str, fps: int) -> None:
    w, h = (int(x) for x in size.split("x"))
    print(json.dumps({"shots": [str(p) for p in make_shots(case, n, seconds, (w, h), fps)]}))


def child_frames(path: str) -> None:
    print(json.dumps({"frames": frames_in(Path(path))}))


def child_settings() -> None:
    from vidpipe.media.concat import CRF, GOP_SECONDS, PRESET

    print(json.dumps({"preset": PRESET, "crf": CRF, "gop_s": GOP_SECONDS}))


def child(out: str, size: str, fps: int, shots: list[str]) -> None:
    from vidpipe.media.concat import Target, concat_clips, inspect_clip

    started = time.perf_counter()
    w, h = (int(x) for x in size.split("x"))
    target = Target(w, h, fps)
    plan, segments = concat_clips([inspect_clip(p, fps) for p in shots], target, out)
    print(json.dumps({"join_s": time.perf_counter() - started, "track": plan.track,
                      "methods": sorted({s.method for s in segments}), "frames_written": sum(s.frames for s in segments)}))


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--make", metavar="CASE", help=argparse.SUPPRESS)
    parser.add_argument("--frames", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--settings", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("clips", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.size, args.fps, args.clips)
    if args.make:
        return child_make(args.make, args.shots, args.seconds, args.size, args.fps)
    if args.frames:
        return child_frames(args.frames)
    if args.settings:
        return child_settings()
    settings = python_child("--settings")
    size = tuple(int(x) for x in args.size.split("x"))
    print(f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; {args.shots} shots x "
          f"{args.seconds:g} s into {args.size} at {args.fps} fps; best of {args.repeat}")
    print(f"{'case':<10} {'tool':<8} {'wall s':>7} {'cpu s':>7} {'rss MiB':>8} {'frames':>7}  notes")
    for case in ("copy", "re-encode"):
        shots = [Path(p) for p in python_child("--make", case, "--shots", str(args.shots), "--seconds",
                                               str(args.seconds), "--size", args.size, "--fps", str(args.fps))["shots"]]
        runs: dict[str, list[dict]] = {"vidpipe": [], "ffmpeg": []}
        outs = {tool: CLIP_DIR / f"out-{case}-{tool}.mp4" for tool in runs}
        for _ in range(args.repeat):  # round-robin: both see the same background load
            runs["vidpipe"].append(run_child(vidpipe_command(shots, outs["vidpipe"], size, args.fps)))
            runs["ffmpeg"].append(run_child(ffmpeg_command(case, shots, outs["ffmpeg"], size, args.fps, settings)))
        best = {}
        for tool, results in runs.items():
            wall = min(r["wall_s"] for r in results)
            cpu = statistics.median(r["cpu_s"] for r in results)
            rss = max(r["rss_mib"] for r in results)
            best[tool] = wall
            notes = ""
            if tool == "vidpipe":
                last = results[-1]
                notes = f"join {min(r['join_s'] for r in results):.2f} s in-process; track {last['track']}, " \
                        f"{'/'.join(last['methods'])}"
            print(f"{case:<10} {tool:<8} {wall:7.2f} {cpu:7.2f} {rss:8.0f} {python_child("--frames", str(outs[tool]))["frames"]:7d}  {notes}")
        join = min(r["join_s"] for r in runs["vidpipe"])
        print(f"{case:<10} ratio ffmpeg/vidpipe wall time: {best['ffmpeg'] / best['vidpipe']:.2f} "
              f"(process vs process); {best['ffmpeg'] / join:.2f} (ffmpeg process vs vidpipe's join in-process)")


if __name__ == "__main__":
    main()
