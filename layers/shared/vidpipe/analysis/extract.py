"""The ExtractFrames step: sample one segment, drop near-duplicates, shrink
each kept frame to the size that is cheapest in tokens, and write the JPEGs
and the segment's manifest to S3.

Streaming: frames are decoded, kept or dropped, encoded and uploaded one at a
time, so memory holds one full-size frame whatever the video's length. The
video itself is on local disk (/tmp), not in memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from vidpipe.analysis import keys
from vidpipe.analysis.models import ExtractEvent, ExtractResult, ExtractSpec, FrameRef, Manifest, Segment
from vidpipe.analysis.objects import put_bytes, put_json
from vidpipe.analysis.probe import downloaded
from vidpipe.media.dedupe import Deduper
from vidpipe.media.resize import downscale_for_model
from vidpipe.media.sampling import SampledFrame, sample_frames
from vidpipe.observability import logger

RATE_TOLERANCE_S = 1e-3  # frame times are rounded rationals


@dataclass
class KeptFrame:
    sampled: SampledFrame
    jpeg: bytes
    width: int
    height: int


@dataclass
class Selection:
    """What sampling a segment kept; ``cuts`` and ``sampled`` are complete once iterated."""

    frames: Iterator[KeptFrame]
    cuts: list[float] = field(default_factory=list)
    sampled: int = 0


def select_frames(path: str | os.PathLike, segment: Segment, spec: ExtractSpec) -> Selection:
    """Sample, de-duplicate and shrink the frames of one segment, lazily."""
    sampler = sample_frames(path, spec.strategy, segment.start_s, segment.end_s, spec.fps)
    duplicates = Deduper()
    selection = Selection(frames=iter(()))

    def kept() -> Iterator[KeptFrame]:
        count, last_t, last_shot = 0, -math.inf, -1
        for frame in sampler:
            selection.sampled += 1
            # A shot's first frame always stays, so every shot keeps at least one frame.
            new_shot = frame.shot_index != last_shot
            # Keyframe sampling has no rate of its own (the others keep to fps): hold it to the planned fps.
            too_soon = spec.strategy == "keyframes" and frame.t_s - last_t < 1 / spec.fps - RATE_TOLERANCE_S
            if not new_shot and (too_soon or not duplicates.keep(frame.image)):
                continue
            if new_shot:
                duplicates.keep(frame.image)  # remembered, so what follows is compared with it
            small = downscale_for_model(frame.image, spec.model_family)
            yield KeptFrame(frame, small.jpeg, *small.size)
            count, last_t, last_shot = count + 1, frame.t_s, frame.shot_index
            if count >= segment.max_frames:
                logger.warning("frame budget reached: the rest of the segment is not analyzed",
                               extra={"segment": segment.index, "at_s": frame.t_s, "max_frames": count})
                break  # the reservation covers max_frames per segment, no more
        selection.cuts[:] = [cut.t_s for cut in sampler.cuts]

    selection.frames = kept()
    return selection


def extract_segment(event: ExtractEvent, s3, bucket: str) -> ExtractResult:
    segment, spec = event.segment, event.extract
    refs: list[FrameRef] = []
    with downloaded(s3, event.bucket, event.key) as path:
        selection = select_frames(path, segment, spec)
        for frame in selection.frames:
            key = keys.frame_key(event.job_id, segment.index, len(refs))
            put_bytes(s3, bucket, key, frame.jpeg, "image/jpeg")
            refs.append(FrameRef(n=len(refs), timestamp_s=frame.sampled.t_s, shot=frame.sampled.shot_index, key=key,
                                 width=frame.width, height=frame.height))
    manifest = Manifest(job_id=event.job_id, segment=segment, strategy=spec.strategy,
                        frames_sampled=selection.sampled, frames=refs, cuts=selection.cuts,
                        frames_per_chunk=spec.frames_per_chunk)
    manifest_key = keys.manifest_key(event.job_id, segment.index)
    put_json(s3, bucket, manifest_key, manifest)
    return ExtractResult(manifest_key=manifest_key, frames=len(refs), chunks=list(range(manifest.chunk_count)))
