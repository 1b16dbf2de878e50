"""Input tokens per analyzed minute of video: the pipeline's ``scene`` strategy
against the naive approach, on a synthetic clip with known shots.

    .venv/bin/python bench/bench_tokens.py [--seconds 120] [--model gemini-2.5-flash]

- naive: every frame at 2 fps, full resolution, one frame per request;
- pipeline: what ExtractFrames keeps (scene sampling at most ``--fps`` a
  second, near-duplicates dropped, frames shrunk to the cheapest size for the
  model family), ``--frames-per-chunk`` frames per request, plus the reduce call.

Tokens follow the documented rules (vidpipe.providers.image_tokens): image
tokens per the model family, text at ~4 characters a token for every prompt,
label and JSON schema a request carries. Target: at least 8x fewer input tokens
with every true shot keeping at least one analyzed frame. The clip is generated
once into out/bench/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from vidpipe.analysis.analyze import build_messages
from vidpipe.analysis.extract import select_frames
from vidpipe.analysis.models import ChunkAnswer, ExtractSpec, FrameRef, SummaryAnswer
from vidpipe.analysis.plan import split_segments
from vidpipe.analysis.summarize import REDUCE_PROMPT, SCENE_LINE_TOKENS, reduce_cost, scene_bounds
from vidpipe.providers.chat import strict_schema
from vidpipe.providers.image_tokens import cheapest_frame_size, family_of, image_tokens, text_tokens
from vidpipe_local.samples import GroundTruth, ShotSpec, Transition, make_video

CLIP_DIR = Path(__file__).resolve().parent.parent / "out" / "bench"
NAIVE_FPS = 2.0
# Shot lengths (s) and motion cycled over the clip: short and long shots, static
# and moving ones, joined by hard cuts, fades and dissolves.
SHOT_PATTERN = [(4.0, (2.0, 1.0)), (1.5, (0.0, 0.0)), (9.0, (1.0, 0.0)), (3.0, (6.0, 2.0)), (12.0, (0.0, 0.0)),
                (2.0, (3.0, 3.0)), (6.0, (1.0, 1.0)), (5.0, (0.0, 0.0))]
TRANSITIONS = [Transition(), Transition(kind="fade_black", duration_s=1.0), Transition(),
               Transition(kind="dissolve", duration_s=1.0)]


def make_clip(seconds: float, size: tuple[int, int], fps: int) -> GroundTruth:
    path = CLIP_DIR / f"tokens_{int(seconds)}s_{size[0]}x{size[1]}_{fps}.mp4"
    truth_path = path.with_suffix(".json")
    if path.exists() and truth_path.exists():
        return GroundTruth.model_validate_json(truth_path.read_text())
    CLIP_DIR.mkdir(parents=True, exist_ok=True)
    shots, total = [], 0.0
    while total < seconds:
        duration, motion = SHOT_PATTERN[len(shots) % len(SHOT_PATTERN)]
        duration = min(duration, seconds - total)
        shots.append(ShotSpec(duration_s=duration, seed=200 + len(shots), motion=motion))
        total += duration
    transitions = [TRANSITIONS[i % len(TRANSITIONS)] for i in range(len(shots) - 1)]
    truth = make_video(path, shots, fps=fps, size=size, transitions=transitions, preset="veryfast")
    truth_path.write_text(truth.model_dump_json())
    return truth


def schema_tokens(model) -> int:
    return text_tokens(json.dumps(strict_schema(model)))


def request_input_tokens(messages: list[dict], family: str, schema: int) -> int:
    """Prompt tokens of one request by the documented rules (images by their real size)."""
    total = schema
    for message in messages:
        for part in message["content"]:
            if part["type"] == "text":
                total += text_tokens(part["text"])
            else:
                width, height = part["_size"]
                total += image_tokens(family, width, height, part["image_url"]["detail"])
    return total


def sized_messages(frames: list[FrameRef], detail: str) -> list[dict]:
    """build_messages with placeholder images that remember their size (no pixels needed to count)."""
    messages = build_messages(frames, [b""] * len(frames), detail)
    images = iter(frames)
    for part in messages[0]["content"]:
        if part["type"] == "image_url":
            frame = next(images)
            part["_size"] = (frame.width, frame.height)
    return messages


def naive_tokens(truth: GroundTruth, family: str) -> tuple[int, int]:
    frames = math.floor(truth.duration_s * NAIVE_FPS)
    width, height = truth.size
    frame = FrameRef(n=0, timestamp_s=0.0, shot=0, key="", width=width, height=height)
    per_request = request_input_tokens(sized_messages([frame], "high"), family, schema_tokens(ChunkAnswer))
    return frames, frames * per_request


def pipeline_tokens(truth: GroundTruth, model: str, fps: float, per_chunk: int, segment_s: float):
    family = family_of(model)
    (width, height), detail = cheapest_frame_size(family, *truth.size)
    spec = ExtractSpec(strategy="scene", fps=fps, model_family=family, frame_width=width, frame_height=height,
                       frames_per_chunk=per_chunk)
    chunk_schema = schema_tokens(ChunkAnswer)
    tokens, kept, sampled, cuts = 0, [], 0, []
    for segment in split_segments(truth.duration_s, segment_s, fps, max_frames=10_000):
        selection = select_frames(truth.path, segment, spec)
        refs = [FrameRef(n=i, timestamp_s=f.sampled.t_s, shot=f.sampled.shot_index, key="", width=f.width,
                         height=f.height) for i, f in enumerate(selection.frames)]
        sampled += selection.sampled
        cuts += selection.cuts
        kept += refs
        for start in range(0, len(refs), per_chunk):
            tokens += request_input_tokens(sized_messages(refs[start:start + per_chunk], detail), family,
                                           chunk_schema)
    scenes = len(scene_bounds(cuts, truth.duration_s))
    _, reduce_in, _ = reduce_cost(scenes, text_tokens(REDUCE_PROMPT) + schema_tokens(SummaryAnswer))
    return kept, sampled, scenes, tokens, reduce_in


def shots_covered(truth: GroundTruth, kept: list[FrameRef]) -> tuple[int, list[tuple[float, float]]]:
    missed = [(s.start_s, s.end_s) for s in truth.shots
              if not any(s.start_s <= f.timestamp_s < s.end_s for f in kept)]
    return len(truth.shots) - len(missed), missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--model", default="gemini-2.5-flash")
    parser.add_argument("--fps", type=float, default=1.0, help="the scene strategy's most frames a second")
    parser.add_argument("--frames-per-chunk", type=int, default=8)
    parser.add_argument("--segment-seconds", type=float, default=60.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--clip-fps", type=int, default=15)
    args = parser.parse_args()

    size = tuple(int(v) for v in args.size.split("x"))
    truth = make_clip(args.seconds, size, args.clip_fps)
    family = family_of(args.model)
    minutes = truth.duration_s / 60
    naive_frames, naive = naive_tokens(truth, family)
    kept, sampled, scenes, analyze_in, reduce_in = pipeline_tokens(
        truth, args.model, args.fps, args.frames_per_chunk, args.segment_seconds)
    pipeline = analyze_in + reduce_in
    covered, missed = shots_covered(truth, kept)

    print(f"clip: {truth.duration_s:.0f} s {size[0]}x{size[1]} @ {args.clip_fps} fps, {len(truth.shots)} shots "
          f"({len(truth.transitions)} transitions), model {args.model} ({family})")
    print(f"naive    : {naive_frames} frames at {NAIVE_FPS:g} fps full size, 1 per request: "
          f"{naive} input tokens = {naive / minutes:,.0f} per minute")
    print(f"pipeline : {sampled} sampled, {len(kept)} kept after de-duplication, {scenes} scenes, "
          f"{math.ceil(len(kept) / args.frames_per_chunk)} chunks of <= {args.frames_per_chunk}: "
          f"{analyze_in} + {reduce_in} (reduce, <= {SCENE_LINE_TOKENS}/scene) = {pipeline} input tokens "
          f"= {pipeline / minutes:,.0f} per minute")
    naive_images = naive_frames * image_tokens(family, *truth.size, "high")
    print(f"ratio    : {naive / pipeline:.1f}x fewer input tokens (target >= 8x); counting the naive "
          f"approach's image tokens only ({naive_images}), {naive_images / pipeline:.1f}x")
    print(f"coverage : {covered}/{len(truth.shots)} true shots keep >= 1 analyzed frame"
          + (f"; missed {missed}" if missed else ""))
    return 0 if naive / pipeline >= 8 and not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
