"""The ExtractFrames step: sample one segment, drop near-duplicates, shrink
each kept frame to the size that is cheapest in tokens, and write the JPEGs
and the segment's manifest to S3.

Streaming: frames are decoded, kept or dropped, encoded and uploaded one at a
time, so memory holds one full-size frame whatever the video's length. The
video itself is on local disk (/tmp), not in memory.
"""

from __future__ import annotations

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
        count = 0
        for frame in sampler:
            selection.sampled += 1
            # The first frame of a shot always stays, so every shot keeps at least one frame.
            if not duplicates.keep(frame.image) and frame.reason != "shot_start":
                continue
            small = downscale_for_model(frame.image, spec.model_family)
            yield KeptFrame(frame, small.jpeg, *small.size)
            count += 1
            if count >= segment.max_frames:
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
