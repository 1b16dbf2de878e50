"""Probe and ExtractFrames read the upload by ranged GETs, pinned to one version
(local stack: the real ASL, start_jobs, the handlers, moto's versioned bucket)."""

from __future__ import annotations

import json

import pytest

from vidpipe.start_jobs import upload_job_id
from vidpipe_local import samples

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def minute(tmp_path_factory) -> bytes:
    """60 s, 320x180, six 10 s shots joined by hard cuts, a keyframe every second."""
    path = tmp_path_factory.mktemp("reads") / "minute.mp4"
    samples.make_video(path, [samples.ShotSpec(duration_s=10.0, seed=80 + i) for i in range(6)], fps=15, gop_size=15)
    return path.read_bytes()


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("reads") / "other.mp4"
    samples.make_video(path, [samples.ShotSpec(duration_s=2.0, seed=99)], fps=15)
    return path.read_bytes()


@pytest.fixture
def opened(monkeypatch) -> dict[str, list]:
    """Every S3RangeFile the Probe and ExtractFrames steps opened, by step: their versions and read counts."""
    import vidpipe.analysis.extract
    import vidpipe.analysis.probe

    files: dict[str, list] = {"probe": [], "extract": []}
    for step, module in (("probe", vidpipe.analysis.probe), ("extract", vidpipe.analysis.extract)):
        def recording(*args, _real=module.open_s3_object, _step=step, **kwargs):
            files[_step].append(_real(*args, **kwargs))
            return files[_step][-1]

        monkeypatch.setattr(module, "open_s3_object", recording)
    return files


def probe_inputs(stack, execution_arn: str) -> list[dict]:
    name = stack.built.functions["ProbeVideoFunction"].function_name
    return [json.loads(e["lambdaFunctionScheduledEventDetails"]["input"]) for e in stack.history(execution_arn)
            if e["type"] == "LambdaFunctionScheduled" and name in e["lambdaFunctionScheduledEventDetails"]["resource"]]


def test_given_an_upload_overwritten_once_its_job_started_when_analyzed_then_the_notified_version_is_read_at_most_twice(
        local_stack, minute, other, opened, monkeypatch):
    import vidpipe.runtime

    s = local_stack
    monkeypatch.setenv("SEGMENT_SECONDS", "15")  # four segments
    vidpipe.runtime.reset()
    key = "uploads/minute.mp4"
    put = s.s3.put_object(Bucket=s.bucket, Key=key, Body=minute)
    job_id = upload_job_id(s.bucket, key, put["ETag"])
    s.drain()  # StartJobs starts the job with the version it was notified of
    s.s3.put_object(Bucket=s.bucket, Key=key, Body=other)  # overwritten while the job runs

    job = s.wait_for_job(job_id, timeout_s=300)

    assert job["status"] == "SUCCEEDED", job.get("error")
    (execution,) = [e for e in s.executions(s.analysis_arn) if e["name"] == job_id]
    (probe_input,) = probe_inputs(s, execution["executionArn"])
    assert probe_input["version_id"] == put["VersionId"]
    reads = [f for f in opened["probe"] + opened["extract"] if f.version_id == put["VersionId"]]
    assert len(reads) == 5  # the probe and four segments, all of the notified version
    assert all(f.stats.head_requests == 0 for f in reads[1:])  # segments got version and size from the probe
    assert sum(f.stats.bytes_read for f in reads) <= 2 * len(minute)
    report = json.loads(s.s3.get_object(Bucket=s.bucket, Key=f"reports/{job_id}/report.json")["Body"].read())
    assert len(report["scenes"]) == 6  # the minute's six shots, not the 2 s clip written over it
    # The job records what reading its upload cost: the probe's and every segment's reads.
    read = {"bytes": sum(f.stats.bytes_read for f in reads), "get_requests": sum(f.stats.get_requests for f in reads)}
    assert report["upload_read"] == {**read, "times_the_upload": round(read["bytes"] / len(minute), 3)}
    assert job["outputs"]["upload_read"]["bytes"] == read["bytes"]  # on the job record too
