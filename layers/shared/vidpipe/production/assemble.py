"""AssembleEpisode: the production's shots, in storyboard order, as one episode.

Writes under ``productions/<job_id>/``:

- ``episode.mp4``: H.264, the production's size and frame rate (vidpipe.media.concat:
  shots already in that format are copied packet by packet, the others re-encoded);
- ``poster.jpg``: the frame in the middle of the episode;
- ``contact_sheet.jpg``: one tile per storyboard shot (a gap too): shot number, the
  time code where it starts in the episode (``HH:MM:SS.mmm``) and its action;
- ``production.json``: every shot with its source, its place and length in the
  episode, how it was assembled, its cost; the gaps with their reasons; totals.

A shot whose job failed, whose video object is missing, or whose video does not
decode is a gap (with its reason): the production decides PARTIAL or FAILED. No
shot left at all is ``NothingToAssemble``.

Shots stream from S3 to local disk (``/tmp``) in 1 MiB chunks; frames are
decoded one at a time. Every output is written locally, the episode decoded in
full (frame count) before anything is uploaded, and each object is put whole
(``production.json`` last, naming the others), so no partial object is visible.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import numpy as np
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, field_validator

from vidpipe.errors import InputRejected, OutputInvalid, VidpipeError
from vidpipe.media.concat import (CRF, PRESET, ClipFacts, Segment, Target, concat_clips, decode_episode,
                                  inspect_clip)
from vidpipe.media.contact_sheet import make_contact_sheet
from vidpipe.media.resize import encode_jpeg
from vidpipe.s3_errors import check_access, is_missing
from vidpipe.timecode import timecode_ms

PREFIX = "productions"
CHUNK_BYTES = 1024**2
TILE_WIDTH = 320
GAP_TILE_COLOUR = (40, 30, 70)  # BGR: a dark red-brown where a shot is missing


class NothingToAssemble(VidpipeError):
    """Not one shot of the production could be read: there is no episode to make."""


class ShotIn(BaseModel):
    index: int = Field(ge=0)
    job_id: str
    status: Literal["SUCCEEDED", "FAILED"]
    video_s3_uri: str | None = None
    duration_s: float = 0.0
    action: str = ""
    cost_usd: str | None = None
    reason: str | None = None


class AssembleEvent(BaseModel):
    job_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # one path segment under productions/
    title: str = ""
    resolution: str
    fps: int = Field(ge=1, le=120)
    shots: list[ShotIn] = Field(min_length=1)

    @field_validator("resolution")
    @classmethod
    def _wxh(cls, value: str) -> str:
        width, sep, height = value.lower().partition("x")
        if not (sep and width.isdigit() and height.isdigit()):
            raise ValueError(f"resolution must be WIDTHxHEIGHT, got {value!r}")
        Target(int(width), int(height), 24)  # even, at least 16x16
        return f"{int(width)}x{int(height)}"

    @field_validator("shots")
    @classmethod
    def _one_place_each(cls, shots: list[ShotIn]) -> list[ShotIn]:
        indexes = [s.index for s in shots]
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"shot indexes repeat: {sorted(indexes)}")
        return shots

    @property
    def target(self) -> Target:
        width, _, height = self.resolution.partition("x")
        return Target(int(width), int(height), self.fps)


class Gap(BaseModel):
    index: int
    job_id: str
    reason: str


class AssembleResult(BaseModel):
    outputs: dict[str, str]  # episode, poster, contact_sheet, production → s3:// URIs
    frames: int
    gaps: list[Gap]


def key_for(job_id: str, name: str) -> str:
    return f"{PREFIX}/{job_id}/{name}"


def assemble_episode(event: AssembleEvent, *, s3: Any, bucket: str, shots_prefix: str, workdir: Path,
                     now: Callable[[], float] = time.time) -> AssembleResult:
    """Read the shots (only ``s3://<bucket>/<shots_prefix>/...``), join them, upload the four outputs."""
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    target = event.target
    shots = sorted(event.shots, key=lambda s: s.index)
    gaps: dict[int, str] = {}
    clips: dict[int, ClipFacts] = {}
    sizes: dict[int, int] = {}
    for shot in shots:
        reason = _unusable(shot)
        if reason is None:
            path = workdir / f"shot-{shot.index:04d}.mp4"
            reason, size = _download(s3, bucket, shots_prefix, shot.video_s3_uri or "", path)
            if reason is None:
                sizes[shot.index] = size
                try:
                    clips[shot.index] = inspect_clip(path, target.fps)
                except InputRejected as exc:
                    reason = f"its video does not decode: {exc.reason}"
                    path.unlink(missing_ok=True)
        if reason is not None:
            gaps[shot.index] = reason
    if not clips:
        listed = "; ".join(f"shot {i + 1}: {r}" for i, r in list(gaps.items())[:5])
        more = f" (and {len(gaps) - 5} more)" if len(gaps) > 5 else ""
        raise NothingToAssemble(f"production {event.job_id}: none of its {len(shots)} shots can be assembled "
                                f"({listed}{more})")

    episode = workdir / "episode.mp4"
    order = [s.index for s in shots if s.index in clips]
    plan, segments = concat_clips([clips[i] for i in order], target, episode)
    placed: dict[int, Segment] = dict(zip(order, segments, strict=True))
    for i in order:
        Path(clips[i].path).unlink(missing_ok=True)  # /tmp holds the episode, not its sources, from here

    total_frames = max(s.start_frame + s.frames for s in segments)
    mid_frames = {i: s.start_frame + s.frames // 2 for i, s in placed.items()}
    poster_at = total_frames // 2
    decoded, picked = decode_episode(episode, set(mid_frames.values()) | {poster_at}, keep=_Keep(target, poster_at))
    if decoded != total_frames:  # checked before anything is uploaded
        raise OutputInvalid(f"the episode decodes to {decoded} frames, {total_frames} were written")
    poster = encode_jpeg(picked[poster_at]["full"])
    sheet = make_contact_sheet(_tiles(shots, placed, picked, mid_frames, gaps, target), tile_width=TILE_WIDTH)

    outputs = {name: f"s3://{bucket}/{key_for(event.job_id, file)}" for name, file in (
        ("episode", "episode.mp4"), ("poster", "poster.jpg"), ("contact_sheet", "contact_sheet.jpg"),
        ("production", "production.json"))}
    gap_list = [Gap(index=s.index, job_id=s.job_id, reason=gaps[s.index]) for s in shots if s.index in gaps]
    document = _production_document(event, shots, clips, placed, sizes, gap_list, outputs, plan.track,
                                    decoded, episode.stat().st_size, time.perf_counter() - started, now())
    _put_file(s3, bucket, key_for(event.job_id, "episode.mp4"), episode, "video/mp4")
    _put_bytes(s3, bucket, key_for(event.job_id, "poster.jpg"), poster, "image/jpeg")
    _put_bytes(s3, bucket, key_for(event.job_id, "contact_sheet.jpg"), sheet, "image/jpeg")
    _put_bytes(s3, bucket, key_for(event.job_id, "production.json"),
               json.dumps(document, indent=2).encode(), "application/json")
    return AssembleResult(outputs=outputs, frames=decoded, gaps=gap_list)


# ------------------------------------------------------------------ reading the shots


def _unusable(shot: ShotIn) -> str | None:
    if shot.status != "SUCCEEDED":
        return f"the shot failed: {shot.reason or 'no reason recorded'}"
    if not shot.video_s3_uri:
        return "the shot succeeded without a video location"
    return None


def _download(s3: Any, bucket: str, prefix: str, uri: str, path: Path) -> tuple[str | None, int]:
    """(None, bytes) when the object is now at ``path``; (the gap's reason, 0) when it is not."""
    source_bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or source_bucket != bucket or not key.startswith(f"{prefix}/"):
        return f"its video {uri} is outside s3://{bucket}/{prefix}/, where shots are read from", 0
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        check_access(exc, "s3:GetObject", bucket, key)  # a 403 is a missing permission, not a gap
        if is_missing(exc):
            return f"its video {uri} does not exist", 0
        raise
    size = 0
    with path.open("wb") as local:
        for chunk in body.iter_chunks(CHUNK_BYTES):
            local.write(chunk)
            size += len(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        return f"its video {uri} is empty (0 bytes)", 0
    return None, size


# ------------------------------------------------------------------ pictures


class _Keep:
    """What to keep of a picked episode frame: a tile-sized BGR copy, and the full frame for the poster."""

    def __init__(self, target: Target, poster_at: int):
        self.tile_height = _tile_height(target)
        self.poster_at = poster_at

    def __call__(self, index: int, frame) -> dict[str, np.ndarray]:
        kept = {"tile": frame.reformat(width=TILE_WIDTH, height=self.tile_height, format="bgr24").to_ndarray()}
        if index == self.poster_at:
            kept["full"] = frame.to_ndarray(format="bgr24")
        return kept


def _tile_height(target: Target) -> int:
    return max(2, round(TILE_WIDTH * target.height / target.width / 2) * 2)


def _tiles(shots: list[ShotIn], placed: dict[int, Segment], picked: dict[int, dict], mid_frames: dict[int, int],
           gaps: dict[int, str], target: Target) -> list[tuple[np.ndarray, str]]:
    tile_height = _tile_height(target)
    tiles = []
    next_start = 0
    for shot in shots:
        number = shot.index + 1
        if shot.index in placed:
            segment = placed[shot.index]
            start_s = segment.start_frame / target.fps
            tiles.append((picked[mid_frames[shot.index]]["tile"], f"#{number} {timecode_ms(start_s)} {shot.action}"))
            next_start = segment.start_frame + segment.frames
        else:
            gap = np.empty((tile_height, TILE_WIDTH, 3), np.uint8)
            gap[:] = GAP_TILE_COLOUR
            tiles.append((gap, f"#{number} {timecode_ms(next_start / target.fps)} GAP: {gaps[shot.index]}"))
    return tiles


# ------------------------------------------------------------------ production.json


def _production_document(event: AssembleEvent, shots: list[ShotIn], clips: dict[int, ClipFacts],
                         placed: dict[int, Segment], sizes: dict[int, int], gaps: list[Gap],
                         outputs: dict[str, str], track: str, frames: int, episode_bytes: int,
                         elapsed_s: float, now: float) -> dict:
    fps = event.fps
    entries = []
    known_costs: list[Decimal] = []
    next_start = 0
    for shot in shots:
        cost = _decimal(shot.cost_usd)
        if cost is not None:
            known_costs.append(cost)
        entry: dict[str, Any] = {
            "number": shot.index + 1, "index": shot.index, "job_id": shot.job_id, "action": shot.action,
            "requested_duration_s": shot.duration_s, "video_s3_uri": shot.video_s3_uri,
            "cost_usd": None if cost is None else str(cost),
        }
        segment = placed.get(shot.index)
        if segment is None:
            entry.update(included=False, gap=next(g.reason for g in gaps if g.index == shot.index),
                         start_s=next_start / fps, timecode=timecode_ms(next_start / fps), frames=0, duration_s=0.0)
        else:
            clip = clips[shot.index]
            entry.update(
                included=True, start_s=segment.start_frame / fps, timecode=timecode_ms(segment.start_frame / fps),
                end_s=(segment.start_frame + segment.frames) / fps, frames=segment.frames,
                duration_s=segment.frames / fps, assembly=segment.method, reencode_reason=segment.reason,
                source={"width": clip.width, "height": clip.height, "fps": float(clip.fps), "codec": clip.codec,
                        "frames": clip.frames, "duration_s": round(clip.duration_s, 3), "bytes": sizes[shot.index]})
            if segment.note:
                entry["note"] = segment.note
            next_start = segment.start_frame + segment.frames
        entries.append(entry)
    included = [e for e in entries if e["included"]]
    return {
        "job_id": event.job_id, "title": event.title, "resolution": event.resolution, "fps": fps,
        "outputs": outputs,
        "encoding": {"codec": "h264", "pix_fmt": "yuv420p", "track_parameter_sets": track,
                     "encoder": f"libx264 preset={PRESET} crf={CRF}"},
        "shots": entries,
        "gaps": [g.model_dump() for g in gaps],
        "totals": {
            "shots": len(entries), "included": len(included), "gaps": len(gaps), "frames": frames,
            "duration_s": frames / fps, "duration": timecode_ms(frames / fps),
            "remuxed": sum(1 for e in included if e["assembly"] == "remux"),
            "reencoded": sum(1 for e in included if e["assembly"] == "reencode"),
            "cost_usd": str(sum(known_costs, Decimal(0))),
            "shots_without_cost": sum(1 for e in entries if e["cost_usd"] is None),
            "episode_bytes": episode_bytes, "assembly_s": round(elapsed_s, 3),
        },
        "assembled_at": now,
    }


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


# ------------------------------------------------------------------ writing


def _put_bytes(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def _put_file(s3: Any, bucket: str, key: str, path: Path, content_type: str) -> None:
    """One PUT, or a multipart upload that only becomes the object when it completes (aborted on failure)."""
    s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
