"""AssembleEpisodeFunction on the local stack: the template's function (its layers, environment,
timeout) invoked through moto's Lambda API with shot videos in the stack's media bucket."""

from __future__ import annotations

import json

import pytest
from assembly_clips import BLUE, GREEN, RED, centre_colour, nearest, read_frames, write_clip

pytestmark = pytest.mark.integration


def test_given_shot_videos_in_the_bucket_when_the_function_runs_then_the_episode_and_its_companions_are_stored(
        local_stack, tmp_path):
    """And, on the same stack, with no shot left: a readable error (the production's Catch reads its type)."""
    s = local_stack
    specs = [(0, (320, 180), 24, RED), (1, (96, 54), 30, GREEN), (3, (320, 180), 24, BLUE)]
    shots = []
    for index, size, fps, colour in specs:
        path = tmp_path / f"{index}.mp4"
        write_clip(path, size, fps, 1.0, colour)
        s.s3.upload_file(str(path), s.bucket, f"outputs/gen-shot-{index}/video.mp4")
        shots.append({"index": index, "job_id": f"gen-shot-{index}", "status": "SUCCEEDED",
                      "video_s3_uri": f"s3://{s.bucket}/outputs/gen-shot-{index}/video.mp4", "duration_s": 1.0,
                      "action": f"shot {index + 1}", "cost_usd": "0.1000", "reason": None})
    shots.append({"index": 2, "job_id": "gen-shot-2", "status": "SUCCEEDED",
                  "video_s3_uri": f"s3://{s.bucket}/outputs/gen-shot-2/video.mp4", "duration_s": 1.0,
                  "action": "never stored", "cost_usd": None, "reason": None})
    event = {"job_id": "pro-local-1", "title": "Local", "resolution": "320x180", "fps": 24, "shots": shots}

    result, errored = s.invoke("AssembleEpisodeFunction", event)

    assert not errored, result
    assert result["gaps"] == [{"index": 2, "job_id": "gen-shot-2",
                               "reason": f"its video s3://{s.bucket}/outputs/gen-shot-2/video.mp4 does not exist"}]
    keys = {o["Key"] for o in s.s3.list_objects_v2(Bucket=s.bucket, Prefix="productions/pro-local-1/")["Contents"]}
    assert keys == {f"productions/pro-local-1/{n}" for n in
                    ("episode.mp4", "poster.jpg", "contact_sheet.jpg", "production.json")}
    episode = tmp_path / "episode.mp4"
    s.s3.download_file(s.bucket, "productions/pro-local-1/episode.mp4", str(episode))
    frames, fps, size = read_frames(episode)
    assert len(frames) == result["frames"] == 72 and size == (320, 180) and fps == pytest.approx(24)
    assert [nearest(centre_colour(f), [RED, GREEN, BLUE]) for f in frames] == [0] * 24 + [1] * 24 + [2] * 24
    document = json.loads(s.s3.get_object(Bucket=s.bucket, Key="productions/pro-local-1/production.json")["Body"].read())
    assert [(x["number"], x["included"]) for x in document["shots"]] == [(1, True), (2, True), (3, False), (4, True)]

    nothing = {**event, "job_id": "pro-local-2", "shots": [
        {**shots[-1], "status": "FAILED", "video_s3_uri": None, "reason": "the provider is at capacity"}]}
    failed, errored = s.invoke("AssembleEpisodeFunction", nothing)

    assert errored and failed["errorType"] == "NothingToAssemble"
    assert "shot 3: the shot failed: the provider is at capacity" in failed["errorMessage"]
