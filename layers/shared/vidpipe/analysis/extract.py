"""The ExtractFrames step: sample one segment, drop near-duplicates, shrink
each kept frame to the size that is cheapest in tokens, and write the JPEGs
and the segment's manifest to S3.

Streaming: frames are decoded, kept or dropped, encoded and uploaded one at a
time, so memory holds one full-size frame whatever the video's length. The
video is read from S3 by ranged GETs (vidpipe.s3_file), pinned to the version
ProbeVideo probed: the demuxer fetches the container's index and the bytes
from the keyframe before the segment to its end, never the whole upload.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from vidpipe.analysis import keys
from vidpipe.analysis.models import ExtractEvent, ExtractResult, ExtractSpec, FrameRef, Manifest, Segment
from vidpipe.analysis.objects import put_bytes, put_json
from vidpipe.analysis.probe import log_reads
from vidpipe.media.decoding import VideoSource
from vidpipe.media.dedupe import Deduper
from vidpipe.media.resize import downscale_for_model
from vidpipe.media.sampling import FrameBudget, SampledFrame, sample_frames
from vidpipe.observability import logger
from vidpipe.s3_file import block_size_for, open_s3_object

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


def select_frames(source: VideoSource, segment: Segment, spec: ExtractSpec) -> Selection:
    """Sample, de-duplicate and shrink the frames of one segment, lazily."""
    sampler = sample_frames(source, spec.strategy, segment.start_s, segment.end_s, spec.fps)
    duplicates = Deduper()
    selection = Selection(frames=iter(()))

    def kept() -> Iterator[KeptFrame]:
        # The reservation covers max_frames per segment, no more. A shot's first frame always stays while
        # there is room, and room is kept for the shots still to come: every shot keeps at least one frame.
        budget = FrameBudget(segment.max_frames, segment.start_s, segment.end_s)
        last_t, last_shot = -math.inf, -1
        for frame in sampler:
            selection.sampled += 1
            new_shot = frame.shot_index != last_shot
            # Keyframe sampling has no rate of its own (the others keep to fps): hold it to the planned fps.
            too_soon = spec.strategy == "keyframes" and frame.t_s - last_t < 1 / spec.fps - RATE_TOLERANCE_S
            if not budget.has_room(frame.t_s, first_of_shot=new_shot):
                if new_shot:  # more shots than max_frames
                    logger.warning("frame budget reached: a shot is not analyzed",
                                   extra={"segment": segment.index, "at_s": frame.t_s,
                                          "max_frames": segment.max_frames})
                    last_shot = frame.shot_index
                continue
            if not new_shot and (too_soon or not duplicates.keep(frame.image)):
                continue
            if new_shot:
                duplicates.keep(frame.image)  # remembered, so what follows is compared with it
            budget.take()
            small = downscale_for_model(frame.image, spec.model_family)
            yield KeptFrame(frame, small.jpeg, *small.size)
            last_t, last_shot = frame.t_s, frame.shot_index
        selection.cuts[:] = [cut.t_s for cut in sampler.cuts]

    selection.frames = kept()
    return selection


def extract_segment(event: ExtractEvent, s3, bucket: str) -> ExtractResult:
    segment, spec = event.segment, event.extract
    refs: list[FrameRef] = []
    probed = event.video
    upload = open_s3_object(s3, event.bucket, event.key, probed.version_id if probed else None,
                            size=probed.size_bytes if probed and probed.version_id else None)
    if probed and probed.duration_s > 0:
        # Blocks sized to the segment's share of the file: its edges and the index add little to it.
        share = (min(segment.end_s, probed.duration_s) - segment.start_s) / probed.duration_s
        upload.block_size = block_size_for(int(upload.size * max(share, 0.0)))
    try:
        selection = select_frames(upload, segment, spec)
        for frame in selection.frames:
            key = keys.frame_key(event.job_id, segment.index, len(refs))
            put_bytes(s3, bucket, key, frame.jpeg, "image/jpeg")
            refs.append(FrameRef(n=len(refs), timestamp_s=frame.sampled.t_s, shot=frame.sampled.shot_index, key=key,
                                 width=frame.width, height=frame.height))
    finally:
        log_reads("extract", upload, segment=segment.index)
    manifest = Manifest(job_id=event.job_id, segment=segment, strategy=spec.strategy,
                        frames_sampled=selection.sampled, frames=refs, cuts=selection.cuts,
                        frames_per_chunk=spec.frames_per_chunk, read=upload.stats)
    manifest_key = keys.manifest_key(event.job_id, segment.index)
    put_json(s3, bucket, manifest_key, manifest)
    return ExtractResult(manifest_key=manifest_key, frames=len(refs), chunks=list(range(manifest.chunk_count)),
                         read=upload.stats)
