import json
from decimal import Decimal

import cv2
import numpy as np
import pytest
from analysis_fakes import BUCKET, ScriptedGateway, chat_with, jpeg, put_chunk_results, put_segment, summary_reply

from vidpipe.analysis.models import (
    AnalyzeSpec,
    Estimate,
    ExtractSpec,
    Plan,
    Segment,
    SummarizeEvent,
    VideoInfo,
)
from vidpipe.analysis.report import render_markdown, sheet_scenes, summarize_report
from vidpipe.media.contact_sheet import make_contact_sheet

JOB = "job-7"


class SheetRecorder:
    def __init__(self):
        self.calls = []

    def __call__(self, tiles):
        self.calls.append(([image for image, _ in tiles], [caption for _, caption in tiles]))
        return jpeg(200, 100)


def event(segments: list[Segment]) -> SummarizeEvent:
    return SummarizeEvent(
        job_id=JOB, bucket=BUCKET, key="uploads/my clip+1.mp4",
        video=VideoInfo(duration_s=120.0, fps=30.0, frame_count=3600, width=1280, height=720, codec="h264",
                        size_bytes=1_000_000),
        plan=Plan(reservation_id="res-9",
                  extract=ExtractSpec(strategy="scene", fps=1.0, model_family="gemini", frame_width=384, frame_height=216, frames_per_chunk=4),
                  analyze=AnalyzeSpec(model="gemini-2.5-flash", provider="gemini", detail="high"),
                  segments=segments,
                  estimate=Estimate(frames=10, requests=4, input_tokens=5000, output_tokens=900,
                                    cost_usd=Decimal("0.01"))),
    )


@pytest.fixture
def two_segments(s3):
    """Two segments; shots cut at 40 s and 100 s; the shot from 40 s runs across the segment boundary."""
    first = put_segment(s3, JOB, 0, 0.0, 60.0, [1.0, 20.0, 41.0, 55.0], cuts=[40.0], frames_per_chunk=4)
    second = put_segment(s3, JOB, 1, 60.0, 120.0, [61.0, 80.0, 101.0], cuts=[100.0], frames_per_chunk=4)
    for manifest in (first, second):
        put_chunk_results(s3, manifest, describe=lambda f: f"view at {f.timestamp_s:g}s")
    return [first.segment, second.segment]


def run(s3, accounting, segments, sheet=None):
    gateway = ScriptedGateway(summary_reply)
    result = summarize_report(event(segments), s3, BUCKET, chat_with(gateway), accounting, sheet or SheetRecorder())
    return result, gateway


def read(s3, key) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_given_analyzed_segments_when_summarized_then_report_json_has_the_documented_fields(s3, accounting,
                                                                                            two_segments):
    result, _ = run(s3, accounting, two_segments)

    report = json.loads(read(s3, result.report_key))
    assert result.report_key == f"reports/{JOB}/report.json"
    assert {"job_id", "status", "video", "sampling", "scenes", "summary", "tags", "spend"} <= set(report)
    assert report["job_id"] == JOB and report["status"] == "SUCCEEDED"
    assert {k: report["video"][k] for k in ("duration_s", "fps", "width", "height")} == \
        {"duration_s": 120.0, "fps": 30.0, "width": 1280, "height": 720}
    assert report["sampling"]["strategy"] == "scene"
    assert (report["sampling"]["frames_sampled"], report["sampling"]["frames_analyzed"]) == (9, 7)
    assert [(s["index"], s["start_s"], s["end_s"]) for s in report["scenes"]] == \
        [(0, 0.0, 40.0), (1, 40.0, 100.0), (2, 100.0, 120.0)]
    assert [s["keyframe_s"] for s in report["scenes"]] == [20.0, 61.0, 101.0]
    assert report["scenes"][1]["description"] == "view at 41s. view at 61s. view at 80s."
    assert report["summary"] == "A short video." and report["tags"] == ["demo"]


def test_given_a_summary_when_the_report_is_written_then_spend_is_the_settled_ledger_total(s3, accounting,
                                                                                          two_segments):
    result, _ = run(s3, accounting, two_segments)

    report = json.loads(read(s3, result.report_key))
    # Leftover intents recorded, the reservation left to FinalizeJob (SummarizeReport may not settle).
    assert accounting.settled == [(JOB, None)]
    (reduce_call,) = accounting.ledger.values()
    assert report["spend"]["calls"] == 1
    assert report["spend"]["input_tokens"] == reduce_call.input_tokens
    assert report["spend"]["cost_usd"] == pytest.approx(0.001)
    assert result.spend == {k: report["spend"][k] for k in ("input_tokens", "output_tokens", "cost_usd", "calls")}


def test_given_scenes_when_the_report_is_written_then_the_reduce_call_sees_every_scene_in_order(s3, accounting,
                                                                                               two_segments):
    _, gateway = run(s3, accounting, two_segments)

    prompt = gateway.bodies[0]["messages"][0]["content"][0]["text"]
    assert prompt.index("Scene 1 (0:00.0-0:40.0)") < prompt.index("Scene 2 (0:40.0-1:40.0)") < \
        prompt.index("Scene 3 (1:40.0-2:00.0)")


def test_given_a_report_when_rendered_as_markdown_then_it_reads_as_a_titled_scene_table(s3, accounting, two_segments):
    result, _ = run(s3, accounting, two_segments)

    markdown = read(s3, result.report_md_key).decode()
    assert markdown.startswith("# Video report: uploads/my clip+1.mp4\n")
    assert "## Summary\n\nA short video." in markdown
    assert "| 2 | 0:40.0 | 1:40.0 | view at 41s. view at 61s. view at 80s. |" in markdown
    assert "## Spend" in markdown


def test_given_scenes_when_the_report_is_written_then_the_contact_sheet_shows_each_keyframe_captioned(
        s3, accounting, two_segments):
    sheet = SheetRecorder()

    result, _ = run(s3, accounting, two_segments, sheet)

    (images, captions), = sheet.calls
    assert captions == ["1  0:20.0", "2  1:01.0", "3  1:41.0"]
    assert images == [read(s3, f"work/{JOB}/frames/{seg}/{n}.jpg") for seg, n in ((0, 1), (1, 0), (1, 2))]
    stored = s3.get_object(Bucket=BUCKET, Key=result.contact_sheet_key)
    assert stored["ContentType"] == "image/jpeg" and stored["Body"].read()[:2] == b"\xff\xd8"


def test_given_a_description_with_a_pipe_when_rendered_then_the_table_is_not_broken():
    report = {"source": {"key": "k"}, "video": {"duration_s": 1.0, "width": 2, "height": 2, "fps": 1.0,
                                                "codec": "h264"},
              "sampling": {"frames_analyzed": 1, "strategy": "scene"}, "model": "m", "summary": "", "tags": [],
              "scenes": [{"index": 0, "start_s": 0.0, "end_s": 1.0, "description": "a | b\nc"}],
              "spend": {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0, "estimate_usd": 0}}

    assert "| 1 | 0:00.0 | 0:01.0 | a \\| b c |" in render_markdown(report)


def test_given_more_scenes_than_tiles_when_choosing_the_sheet_then_first_and_last_are_kept_evenly():
    chosen = sheet_scenes(list(range(10)), limit=4)

    assert chosen == [0, 3, 6, 9]


def test_given_the_media_contact_sheet_when_the_report_is_written_then_the_sheet_is_a_decodable_grid(
        s3, accounting, two_segments):
    result, _ = run(s3, accounting, two_segments, make_contact_sheet)

    sheet = cv2.imdecode(np.frombuffer(read(s3, result.contact_sheet_key), np.uint8), cv2.IMREAD_COLOR)
    assert sheet is not None and sheet.shape[1] > 3 * 300  # three tiles side by side


def test_given_no_analyzable_frame_when_summarized_then_the_report_says_so_without_a_provider_call(s3, accounting):
    empty = put_segment(s3, JOB, 0, 0.0, 120.0, [])

    result, gateway = run(s3, accounting, [empty.segment])

    report = json.loads(read(s3, result.report_key))
    assert report["scenes"] == [] and "No frame could be analyzed" in report["summary"]
    assert gateway.requests == [] and result.contact_sheet_key is None
