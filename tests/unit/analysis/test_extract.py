import json

import cv2
import numpy as np
import pytest
from analysis_fakes import BUCKET

from vidpipe.analysis.extract import extract_segment, select_frames
from vidpipe.analysis.models import ExtractEvent, ExtractSpec, Manifest, Segment
from vidpipe_local import samples

JOB = "job-x"
KEY = "uploads/cuts and fade+ü.mp4"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """12 s, 640x360: hard cut at 3.0 s, fade through black centred on 6.0 s, hard cut at 9.0 s."""
    path = tmp_path_factory.mktemp("extract") / "clip.mp4"
    return samples.sample_with_cuts_and_fade(path, size=(640, 360)), path


@pytest.fixture
def uploaded(s3, clip):
    truth, path = clip
    s3.upload_file(str(path), BUCKET, KEY)
    return truth


def spec(strategy="scene", family="gemini", size=(384, 216), fps=1.0) -> ExtractSpec:
    return ExtractSpec(strategy=strategy, fps=fps, model_family=family, frame_width=size[0], frame_height=size[1],
                       frames_per_chunk=3)


def extract(s3, segment: Segment, extract_spec: ExtractSpec):
    result = extract_segment(ExtractEvent(job_id=JOB, bucket=BUCKET, key=KEY, segment=segment, extract=extract_spec),
                             s3, BUCKET)
    manifest = Manifest.model_validate_json(s3.get_object(Bucket=BUCKET, Key=result.manifest_key)["Body"].read())
    return result, manifest


def picture(s3, key: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(), np.uint8),
                        cv2.IMREAD_COLOR)


def test_given_a_clip_with_cuts_and_a_fade_when_extracted_then_cuts_are_found_and_every_shot_keeps_a_frame(
        s3, uploaded):
    result, manifest = extract(s3, Segment(index=0, start_s=0.0, end_s=12.0, max_frames=50), spec())

    assert len(manifest.cuts) == 3
    assert all(abs(found - true) <= 0.5 for found, true in zip(manifest.cuts, [3.0, 6.0, 9.0]))
    for shot in uploaded.shots:
        assert any(shot.start_s <= f.timestamp_s < shot.end_s for f in manifest.frames), shot
    assert result.manifest_key == f"work/{JOB}/manifests/0.json"
    assert result.frames == len(manifest.frames) and result.chunks == list(range(-(-result.frames // 3)))
    assert [f.key for f in manifest.frames] == [f"work/{JOB}/frames/0/{n}.jpg" for n in range(result.frames)]
    assert [f.timestamp_s for f in manifest.frames] == sorted(f.timestamp_s for f in manifest.frames)


def test_given_a_gemini_plan_when_extracted_then_frames_are_jpegs_at_most_384_px_a_side(s3, uploaded):
    _, manifest = extract(s3, Segment(index=0, start_s=0.0, end_s=12.0, max_frames=50), spec())

    for frame in manifest.frames:
        height, width = picture(s3, frame.key).shape[:2]
        assert (width, height) == (frame.width, frame.height) == (384, 216)


def test_given_an_openai_plan_when_extracted_then_frames_fit_512_px(s3, uploaded):
    _, manifest = extract(s3, Segment(index=0, start_s=0.0, end_s=12.0, max_frames=50),
                          spec(family="openai", size=(512, 288)))

    assert {(f.width, f.height) for f in manifest.frames} == {(512, 288)}


def test_given_two_segments_when_extracted_then_each_owns_the_cuts_and_frames_inside_it(s3, uploaded):
    _, first = extract(s3, Segment(index=0, start_s=0.0, end_s=6.5, max_frames=50), spec())
    _, second = extract(s3, Segment(index=1, start_s=6.5, end_s=12.0, max_frames=50), spec())

    assert all(0.0 <= c < 6.5 for c in first.cuts) and all(6.5 <= c < 12.0 for c in second.cuts)
    assert len(first.cuts) + len(second.cuts) == 3
    assert all(f.timestamp_s < 6.5 for f in first.frames) and all(f.timestamp_s >= 6.5 for f in second.frames)
    assert second.frames[0].key == f"work/{JOB}/frames/1/0.jpg"


def test_given_uniform_sampling_when_extracted_then_the_cuts_are_found_as_with_scene_sampling(s3, uploaded):
    _, manifest = extract(s3, Segment(index=0, start_s=0.0, end_s=12.0, max_frames=50), spec("uniform"))

    assert len(manifest.cuts) == 3
    assert all(abs(found - true) <= 0.5 for found, true in zip(manifest.cuts, [3.0, 6.0, 9.0]))
    assert {f.shot for f in manifest.frames} == {0, 1, 2, 3}


def test_given_a_frame_cap_when_extracted_then_no_more_frames_are_kept(s3, uploaded):
    result, manifest = extract(s3, Segment(index=0, start_s=0.0, end_s=12.0, max_frames=2), spec("uniform", fps=2.0))

    assert result.frames == len(manifest.frames) == 2


def test_given_a_static_shot_sampled_uniformly_when_extracted_then_its_repeats_are_dropped(s3, uploaded):
    _, manifest = extract(s3, Segment(index=0, start_s=6.5, end_s=9.0, max_frames=50), spec("uniform", fps=2.0))

    assert manifest.frames_sampled == 5  # 6.5, 7.0, ... 8.5: the static shot
    assert len(manifest.frames) == 1


def test_given_a_manifest_then_it_is_small_json_with_keys_not_pixels(s3, uploaded):
    result, _ = extract(s3, Segment(index=0, start_s=0.0, end_s=12.0, max_frames=50), spec())

    body = s3.get_object(Bucket=BUCKET, Key=result.manifest_key)["Body"].read()
    assert len(body) < 200 * (result.frames + 5)
    assert json.loads(body)["strategy"] == "scene"


def test_given_keyframes_closer_than_the_planned_fps_when_extracted_then_they_are_thinned_except_at_cuts(
        s3, uploaded):
    # GOP 1 s: keyframes every second; at 0.25 fps at most one every 4 s, plus a new shot's first one.
    _, manifest = extract(s3, Segment(index=0, start_s=0.0, end_s=12.0, max_frames=50),
                          spec("keyframes", fps=0.25))

    times = [f.timestamp_s for f in manifest.frames]
    assert len(times) < manifest.frames_sampled
    for before, after in zip(manifest.frames, manifest.frames[1:]):
        assert after.timestamp_s - before.timestamp_s >= 4.0 - 1e-3 or after.shot != before.shot


# ---------------------------------------------------------------- ranged, version-pinned reads


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """60 s, 320x180, six 10 s shots, a keyframe every second; the index (moov) at the end."""
    path = tmp_path_factory.mktemp("ranged") / "long.mp4"
    shots = [samples.ShotSpec(duration_s=10.0, seed=70 + i) for i in range(6)]
    return samples.make_video(path, shots, fps=15, gop_size=15), path


def probe_then_extract(s3, segments: list[Segment], extract_spec: ExtractSpec, overwrite_with=None):
    """What the state machine does: ProbeVideo, then ExtractFrames per segment with what the probe found."""
    from vidpipe.analysis.models import ProbeEvent
    from vidpipe.analysis.probe import probe_upload
    from vidpipe.config import Settings

    video = probe_upload(ProbeEvent(job_id=JOB, bucket=BUCKET, key=KEY), s3, Settings())
    if overwrite_with is not None:
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=overwrite_with)
    results = [extract_segment(ExtractEvent(job_id=JOB, bucket=BUCKET, key=KEY, segment=segment,
                                            extract=extract_spec, video=video), s3, BUCKET)
               for segment in segments]
    manifests = [Manifest.model_validate_json(s3.get_object(Bucket=BUCKET, Key=r.manifest_key)["Body"].read())
                 for r in results]
    return video, results, manifests


def test_given_a_video_in_six_segments_when_probed_and_extracted_then_the_upload_is_read_at_most_twice_over(
        s3, long_clip):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    truth, path = long_clip
    s3.upload_file(str(path), BUCKET, KEY)
    size = path.stat().st_size
    segments = [Segment(index=i, start_s=10.0 * i, end_s=10.0 * (i + 1), max_frames=50) for i in range(6)]

    video, results, manifests = probe_then_extract(s3, segments, spec("scene"))

    reads = [video.read] + [r.read for r in results]
    assert sum(r.bytes_read for r in reads) <= 2 * size
    assert video.read.bytes_read < size / 10  # header, index and first frame only
    # A 10 s segment of 60 s: its own bytes, up to 3 s read before it (pre-roll from a keyframe) and after
    # it (an open transition), the header and the index; never the whole upload.
    assert all(r.bytes_read < 0.4 * size for r in reads[1:])
    assert all(r.get_requests >= 1 for r in reads) and all(r.head_requests == 0 for r in reads[1:])
    # Ranged reads decode exactly what a local copy decodes.
    local = [[(f.sampled.t_s, f.sampled.shot_index) for f in select_frames(path, seg, spec("scene")).frames]
             for seg in segments]
    assert [[(f.timestamp_s, f.shot) for f in m.frames] for m in manifests] == local
    assert [c for m in manifests for c in m.cuts] == pytest.approx(truth.hard_cuts_s, abs=0.1)


def test_given_the_upload_overwritten_after_the_probe_when_segments_are_extracted_then_the_probed_version_is_read(
        s3, clip, tmp_path):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    _, first_path = clip  # 12 s, cuts at 3, 6 (fade) and 9 s
    s3.upload_file(str(first_path), BUCKET, KEY)
    other = samples.make_video(tmp_path / "other.mp4", [samples.ShotSpec(duration_s=2.0, seed=3)], size=(640, 360))
    segments = [Segment(index=0, start_s=0.0, end_s=6.5, max_frames=50),
                Segment(index=1, start_s=6.5, end_s=12.0, max_frames=50)]

    video, results, manifests = probe_then_extract(s3, segments, spec("scene"),
                                                   overwrite_with=open(other.path, "rb").read())

    latest = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert latest["VersionId"] != video.version_id and latest["ContentLength"] != video.size_bytes
    assert len([c for m in manifests for c in m.cuts]) == 3  # the 12 s clip's cuts, not the 2 s one's
    assert manifests[1].frames and manifests[1].frames[-1].timestamp_s > 9.0
    assert all(r.read.head_requests == 0 for r in results)  # version and size came from the probe
