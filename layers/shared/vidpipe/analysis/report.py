"""The Summarize step: read what extraction and analysis left in S3, stitch
the scenes, reduce them to a summary, settle the spend, and write
report.md, report.html, contact_sheet.jpg and report.json (each a single
whole-object put; report.json last).

The report says when the provider emulator produced the answers, and restates
the usage check (vidpipe.spend.usage) for every chunk: a gateway reporting 10
prompt tokens for 6 images dropped the images, and the report says so.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from vidpipe.accounting import Accounting
from vidpipe.analysis import keys
from vidpipe.analysis.models import (
    AnalyzedFrame,
    ChunkResult,
    Manifest,
    Scene,
    SummarizeEvent,
    SummarizeResult,
    SummaryAnswer,
    VideoInfo,
)
from vidpipe.analysis.objects import get_bytes, get_model, put_bytes, put_json
from vidpipe.analysis.report_html import anomaly_notes, emulator_note, plural, render_html
from vidpipe.analysis.summarize import Reducer, build_scenes, clock, scene_line
from vidpipe.jobs import json_safe, now_iso
from vidpipe.providers.chat import ChatClient
from vidpipe.spend.usage import UsageVerdict, usage_verdict

# [(image, caption), ...] -> JPEG bytes of a captioned grid (vidpipe.media.contact_sheet.make_contact_sheet).
ContactSheetFn = Callable[[list[tuple[bytes, str]]], bytes]

MAX_SHEET_TILES = 64  # a longer video's sheet shows scenes spread evenly over it


def load_results(s3, bucket: str, event: SummarizeEvent) -> tuple[list[Manifest], list[AnalyzedFrame]]:
    """Every segment's manifest and every analyzed frame, in segment order."""
    manifests, chunks = load_chunks(s3, bucket, event)
    return manifests, [frame for chunk in chunks for frame in chunk.frames]


def load_chunks(s3, bucket: str, event: SummarizeEvent) -> tuple[list[Manifest], list[ChunkResult]]:
    """Every segment's manifest and every chunk result, in segment order."""
    manifests = [get_model(s3, bucket, keys.manifest_key(event.job_id, seg.index), Manifest)
                 for seg in event.plan.segments]
    chunks = [get_model(s3, bucket, keys.chunk_key(event.job_id, manifest.segment.index, chunk), ChunkResult)
              for manifest in manifests for chunk in range(manifest.chunk_count)]
    return manifests, chunks


def usage_check(manifests: list[Manifest], chunks: list[ChunkResult], detail: str) -> dict:
    """The usage check of every chunk call: prompt tokens the provider reported against
    what the image-token rules give for the frames it was sent."""
    from vidpipe.analysis.analyze import expected_prompt_tokens

    by_segment = {m.segment.index: m for m in manifests}
    anomalies = []
    for chunk in chunks:
        frames = by_segment[chunk.segment].chunk(chunk.chunk)
        expected = expected_prompt_tokens(chunk.model, frames, detail)
        verdict = usage_verdict(expected, chunk.input_tokens, len(frames))
        if verdict is not UsageVerdict.OK:
            anomalies.append({"segment": chunk.segment, "chunk": chunk.chunk, "images": len(frames),
                              "expected_prompt_tokens": expected, "reported_prompt_tokens": chunk.input_tokens,
                              "verdict": str(verdict)})
    verdicts = {a["verdict"] for a in anomalies}
    overall = UsageVerdict.OK if not verdicts else UsageVerdict(sorted(verdicts)[0])
    return {"verdict": str(overall), "calls_checked": len(chunks), "anomalies": anomalies}


def spend_figures(totals: dict) -> dict:
    """The report's spend block from Accounting.settle()'s job totals."""
    return {
        "input_tokens": int(totals.get("input_tokens", 0)),
        "output_tokens": int(totals.get("output_tokens", 0)),
        "cost_usd": json_safe(Decimal(str(totals.get("cost_usd", 0)))),
        "calls": int(totals.get("calls", 0)),
    }


def build_report(event: SummarizeEvent, manifests: list[Manifest], frames: list[AnalyzedFrame],
                 scenes: list[Scene], summary: SummaryAnswer, spend: dict, *, emulated: bool = False,
                 usage: dict | None = None) -> dict:
    plan, video = event.plan, event.video
    return {
        "job_id": event.job_id,
        "status": "SUCCEEDED",
        "created_at": now_iso(),
        "source": {"bucket": event.bucket, "key": event.key},
        "model": plan.analyze.model,
        "emulated": emulated,  # the answers came from the provider emulator, not a model
        "video": {"duration_s": video.duration_s, "fps": video.fps, "width": video.width,
                  "height": video.height, "codec": video.codec, "frame_count": video.frame_count},
        "sampling": {
            "strategy": plan.extract.strategy,
            "fps": plan.extract.fps,
            "frames_sampled": sum(m.frames_sampled for m in manifests),
            "frames_analyzed": len(frames),
            "frame_size": [plan.extract.frame_width, plan.extract.frame_height],
            "detail": plan.analyze.detail,
            "segments": len(manifests),
        },
        "scenes": [scene.model_dump(exclude={"keyframe_key"}) for scene in scenes],
        "summary": summary.summary,
        "tags": summary.tags,
        "spend": {**spend, "model": plan.analyze.model, "estimate_usd": json_safe(plan.estimate.cost_usd)},
        "usage_check": usage or {"verdict": "ok", "calls_checked": 0, "anomalies": []},
        "upload_read": upload_read(video, manifests),
    }


def upload_read(video: VideoInfo, manifests: list[Manifest]) -> dict:
    """What reading the upload cost the job: ProbeVideo's and every ExtractFrames' ranged GETs."""
    reads = [r for r in [video.read, *(m.read for m in manifests)] if r is not None]
    bytes_read = sum(r.bytes_read for r in reads)
    return {"bytes": bytes_read, "get_requests": sum(r.get_requests for r in reads),
            "times_the_upload": round(bytes_read / video.size_bytes, 3) if video.size_bytes else None}


def render_markdown(report: dict) -> str:
    video, sampling, spend = report["video"], report["sampling"], report["spend"]
    lines = [
        f"# Video report: {report['source']['key']}",
        "",
        f"{clock(video['duration_s'])} long, {video['width']}x{video['height']} at {video['fps']:.3g} fps "
        f"({video['codec']}). {plural(len(report['scenes']), 'scene')}; "
        f"{plural(sampling['frames_analyzed'], 'frame')} analyzed by {report['model']} "
        f"({sampling['strategy']} sampling).",
        "",
    ]
    notes = [note for note in (emulator_note(report),) if note] + anomaly_notes(report)
    lines += [f"> **{note}**\n" for note in notes]
    lines += [
        "## Summary",
        "",
        report["summary"] or "_No summary._",
        "",
    ]
    if report["tags"]:
        lines += [f"Tags: {', '.join(report['tags'])}", ""]
    lines += ["## Scenes", "", "| # | Start | End | Description |", "|---|---|---|---|"]
    for scene in report["scenes"]:
        description = scene["description"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {scene['index'] + 1} | {clock(scene['start_s'])} | {clock(scene['end_s'])} | {description} |")
    lines += [
        "",
        "## Spend",
        "",
        f"{plural(spend['calls'], 'provider call')}, {spend['input_tokens']} input and "
        f"{spend['output_tokens']} output tokens, ${spend['cost_usd']} (reserved estimate ${spend['estimate_usd']}).",
        "",
    ]
    return "\n".join(lines)


def report_html_key(job_id: str) -> str:
    return keys.report_prefix(job_id) + "report.html"


def sheet_scenes(scenes: list[Scene], limit: int = MAX_SHEET_TILES) -> list[Scene]:
    if len(scenes) <= limit:
        return scenes
    step = (len(scenes) - 1) / (limit - 1)
    return [scenes[round(i * step)] for i in range(limit)]


def summarize_report(event: SummarizeEvent, s3, bucket: str, chat: ChatClient, accounting: Accounting,
                     contact_sheet: ContactSheetFn, emulated: bool = False) -> SummarizeResult:
    """``emulated``: the chat answers come from the provider emulator (the local profile says so)."""
    manifests, chunks = load_chunks(s3, bucket, event)
    frames = [frame for chunk in chunks for frame in chunk.frames]
    scenes = build_scenes(frames, [cut for m in manifests for cut in m.cuts], event.video.duration_s)
    if scenes:
        summary = Reducer(event.job_id, event.plan.analyze, chat, accounting).reduce([scene_line(s) for s in scenes])
    else:
        summary = SummaryAnswer(summary="No frame could be analyzed: the video shows only blank or transition frames.",
                                tags=[])
    # Every provider call of the job is behind us: its leftover intents are recorded now so the
    # report carries the final figures. The reservation is FinalizeJob's to settle: this function
    # handles model output and holds no right to settle (template.yaml, LedgerWritePolicy).
    spend = spend_figures(accounting.settle(event.job_id, None))
    report = build_report(event, manifests, frames, scenes, summary, spend, emulated=emulated,
                          usage=usage_check(manifests, chunks, event.plan.analyze.detail))

    result = SummarizeResult(report_key=keys.report_json_key(event.job_id),
                             report_md_key=keys.report_md_key(event.job_id),
                             contact_sheet_key=keys.contact_sheet_key(event.job_id) if scenes else None,
                             scenes=len(scenes), spend=spend, upload_read=report["upload_read"])
    keyframes = {s.index: get_bytes(s3, bucket, s.keyframe_key) for s in scenes}
    if result.contact_sheet_key:
        tiles = [(keyframes[s.index], f"{s.index + 1}  {clock(s.keyframe_s)}") for s in sheet_scenes(scenes)]
        put_bytes(s3, bucket, result.contact_sheet_key, contact_sheet(tiles), "image/jpeg")
    put_bytes(s3, bucket, result.report_md_key, render_markdown(report).encode(), "text/markdown; charset=utf-8")
    put_bytes(s3, bucket, report_html_key(event.job_id), render_html(report, keyframes).encode(),
              "text/html; charset=utf-8")
    # report.json last: its presence means the whole report is there.
    put_json(s3, bucket, result.report_key, report)
    return result
