"""AssembleEpisode's logic (vidpipe.production.assemble) against moto S3 with real clips:
gaps and their reasons, storyboard order, the four outputs, nothing written when nothing is left."""

from __future__ import annotations

import io
import json
import random

import boto3
import cv2
import numpy as np
import pytest
from assembly_clips import BLUE, GREEN, RED, centre_colour, nearest, read_frames, write_clip
from botocore.exceptions import ClientError
from PIL import Image

from vidpipe.media.contact_sheet import CAPTION_HEIGHT, GUTTER
from vidpipe.production.assemble import (GAP_TILE_COLOUR, TILE_WIDTH, AssembleEvent, NothingToAssemble,
                                         assemble_episode)
from vidpipe.s3_errors import S3AccessDenied

BUCKET = "vidpipe-test-media"
JOB = "pro-test-1"


@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def shot(index: int, key: str | None, status: str = "SUCCEEDED", **extra) -> dict:
    return {"index": index, "job_id": f"gen-shot-{index}", "status": status,
            "video_s3_uri": f"s3://{BUCKET}/{key}" if key else None, "duration_s": 1.0,
            "action": f"action of shot {index + 1}", "cost_usd": "0.2500", "reason": None, **extra}


def event(shots: list[dict], resolution: str = "320x180", fps: int = 24) -> AssembleEvent:
    return AssembleEvent.model_validate({"job_id": JOB, "title": "Test", "resolution": resolution, "fps": fps,
                                         "shots": shots})


def put_clip(s3, tmp_path, key: str, size, fps: int, colour) -> int:
    path = tmp_path / key.replace("/", "_")
    frames = write_clip(path, size, fps, 1.0, colour)
    s3.upload_file(str(path), BUCKET, key)
    return frames


def read(s3, name: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=f"productions/{JOB}/{name}")["Body"].read()


def tile_colours(sheet: bytes, tiles: int, tile_height: int, columns: int = 4) -> list[np.ndarray]:
    """BGR at the centre of each tile's picture, in sheet order."""
    image = cv2.imdecode(np.frombuffer(sheet, np.uint8), cv2.IMREAD_COLOR)
    out = []
    for i in range(tiles):
        x = GUTTER + (i % columns) * (TILE_WIDTH + GUTTER) + TILE_WIDTH // 2
        y = GUTTER + (i // columns) * (tile_height + CAPTION_HEIGHT + GUTTER) + tile_height // 2
        out.append(image[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(axis=0))
    return out


def test_given_shots_with_a_missing_an_undecodable_and_a_failed_one_when_assembled_then_the_others_are_the_episode(
        s3, tmp_path):
    put_clip(s3, tmp_path, "outputs/gen-shot-0/video.mp4", (64, 64), 24, RED)
    put_clip(s3, tmp_path, "outputs/gen-shot-2/video.mp4", (320, 180), 30, GREEN)
    s3.put_object(Bucket=BUCKET, Key="outputs/gen-shot-3/video.mp4", Body=b"\x00\x00\x00\x18ftypmp42" + b"x" * 4000)
    put_clip(s3, tmp_path, "outputs/gen-shot-5/video.mp4", (160, 90), 25, BLUE)
    shots = [shot(0, "outputs/gen-shot-0/video.mp4"), shot(1, "outputs/gen-shot-1/video.mp4"),
             shot(2, "outputs/gen-shot-2/video.mp4"), shot(3, "outputs/gen-shot-3/video.mp4"),
             shot(4, None, status="FAILED", reason="the provider refused the prompt", cost_usd=None),
             shot(5, "outputs/gen-shot-5/video.mp4")]
    random.Random(7).shuffle(shots)  # the storyboard's order is the shots' index, not the list's

    result = assemble_episode(event(shots), s3=s3, bucket=BUCKET, shots_prefix="outputs", workdir=tmp_path / "w")

    assert [(g.index, g.job_id) for g in result.gaps] == [(1, "gen-shot-1"), (3, "gen-shot-3"), (4, "gen-shot-4")]
    reasons = [g.reason for g in result.gaps]
    assert "does not exist" in reasons[0] and "does not decode" in reasons[1]
    assert reasons[2] == "the shot failed: the provider refused the prompt"
    assert result.outputs["episode"] == f"s3://{BUCKET}/productions/{JOB}/episode.mp4"

    (tmp_path / "episode.mp4").write_bytes(read(s3, "episode.mp4"))
    frames, fps, size = read_frames(tmp_path / "episode.mp4")
    assert len(frames) == result.frames == 72 and size == (320, 180) and fps == pytest.approx(24)
    assert [nearest(centre_colour(f), [RED, GREEN, BLUE]) for f in frames] == [0] * 24 + [1] * 24 + [2] * 24

    document = json.loads(read(s3, "production.json"))
    by_number = {s["number"]: s for s in document["shots"]}
    assert [s["number"] for s in document["shots"]] == [1, 2, 3, 4, 5, 6]
    assert [by_number[n]["timecode"] for n in (1, 3, 6)] == ["00:00:00.000", "00:00:01.000", "00:00:02.000"]
    assert [by_number[n]["included"] for n in range(1, 7)] == [True, False, True, False, False, True]
    assert by_number[3]["source"]["fps"] == 30 and by_number[3]["frames"] == 24
    assert by_number[2]["gap"] == reasons[0]
    assert document["gaps"] == [g.model_dump() for g in result.gaps]
    assert document["totals"]["included"] == 3 and document["totals"]["frames"] == 72
    assert document["totals"]["cost_usd"] == "1.2500" and document["totals"]["shots_without_cost"] == 1

    colours = tile_colours(read(s3, "contact_sheet.jpg"), 6, tile_height=180)
    gap = np.array(GAP_TILE_COLOUR)
    assert [nearest(c, [RED, GREEN, BLUE, tuple(gap)]) for c in colours] == [0, 3, 1, 3, 3, 2]
    poster = Image.open(io.BytesIO(read(s3, "poster.jpg")))
    assert poster.size == (320, 180)


def test_given_every_shot_missing_or_failed_when_assembled_then_a_readable_error_names_them_and_nothing_is_written(
        s3, tmp_path):
    shots = [shot(0, "outputs/gen-shot-0/video.mp4"), shot(1, None, status="FAILED", reason="timed out")]

    with pytest.raises(NothingToAssemble) as raised:
        assemble_episode(event(shots), s3=s3, bucket=BUCKET, shots_prefix="outputs", workdir=tmp_path)

    assert "none of its 2 shots can be assembled" in raised.value.reason
    assert "shot 1: its video" in raised.value.reason and "does not exist" in raised.value.reason
    assert "shot 2: the shot failed: timed out" in raised.value.reason
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="productions/").get("KeyCount") == 0


def test_given_a_shot_outside_the_generation_outputs_then_it_is_a_gap_and_never_read(s3, tmp_path):
    put_clip(s3, tmp_path, "outputs/gen-shot-0/video.mp4", (320, 180), 24, RED)
    put_clip(s3, tmp_path, "uploads/someone-elses.mp4", (320, 180), 24, GREEN)
    shots = [shot(0, "outputs/gen-shot-0/video.mp4"), shot(1, "uploads/someone-elses.mp4")]

    result = assemble_episode(event(shots), s3=s3, bucket=BUCKET, shots_prefix="outputs", workdir=tmp_path)

    assert [g.index for g in result.gaps] == [1] and "outside" in result.gaps[0].reason
    assert result.frames == 24


class DeniedS3:
    def get_object(self, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetObject")


def test_given_a_read_the_role_may_not_make_then_it_fails_naming_the_permission_not_a_gap(tmp_path):
    with pytest.raises(S3AccessDenied, match="s3:GetObject"):
        assemble_episode(event([shot(0, "outputs/gen-shot-0/video.mp4")]), s3=DeniedS3(), bucket=BUCKET,
                         shots_prefix="outputs", workdir=tmp_path)


@pytest.mark.parametrize("resolution", ["321x180", "1280*720", "8x8"])
def test_given_a_resolution_an_h264_episode_cannot_have_then_the_event_is_refused(resolution):
    with pytest.raises(ValueError, match="resolution|even"):
        event([shot(0, "outputs/x/video.mp4")], resolution=resolution)
