"""Step inputs and outputs of the Analysis state machine, and the JSON
documents the steps leave in S3 (segment manifests, chunk results).

Step payloads stay small (Step Functions allows 256 KB): frames travel as S3
keys inside the manifests, never through the state machine.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vidpipe.config import get_settings
from vidpipe.input_fields import Money, NotBool, priced_model
from vidpipe.s3_file import ReadStats

Strategy = Literal["uniform", "scene", "keyframes"]


class Step(BaseModel):
    """Step events ignore extra fields: the state machine may pass more than a step reads."""

    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- state input


class AnalysisOptions(BaseModel):
    """What a caller may choose about an analysis: the one model behind upload
    metadata (x-amz-meta-vidpipe-options), ``analyze`` job messages and the
    state machine's input. Omitted: the Settings' defaults apply."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    sampling: Strategy | None = None
    fps: Annotated[float | None, NotBool] = Field(default=None, gt=0, le=30, allow_inf_nan=False)
    model: str | None = Field(default=None, min_length=1, max_length=128)
    budget_usd: Money | None = Field(default=None, description="per-job cap; the daily/monthly budgets apply regardless")
    frames_per_chunk: Annotated[int | None, NotBool] = Field(default=None, ge=1, le=64)
    # [ROUTING] a tier of the routing table: its analysis / summary models (and escalation model);
    # omitted: CHAT_MODEL as before tiers.
    tier: str | None = Field(default=None, max_length=128)

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str | None, info: ValidationInfo) -> str | None:
        from vidpipe.input_fields import quoted
        from vidpipe.routing import routing_table

        tiers = routing_table((info.context or {}).get("settings") or get_settings()).tiers
        if value is not None and value not in tiers:
            raise ValueError(f"unknown tier {quoted(value)}; known tiers: {', '.join(sorted(tiers))}")
        return value

    @field_validator("model")
    @classmethod
    def _priced(cls, value: str | None, info: ValidationInfo) -> str | None:
        settings = (info.context or {}).get("settings") or get_settings()
        return None if value is None else priced_model(value, "chat", settings)


class VideoInfo(Step):
    """What the probe found. ``width``/``height`` are as displayed (rotation applied).
    ``version_id`` is the version of the upload that was probed: every segment reads that one."""

    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str
    rotation: int = 0
    size_bytes: int
    version_id: str | None = None  # None: the bucket keeps no versions (reads are pinned by ETag)
    read: ReadStats | None = None  # what probing cost in S3 reads


# ---------------------------------------------------------------- plan


class Segment(Step):
    index: int
    start_s: float
    end_s: float
    max_frames: int  # extraction never keeps more: the reservation is an upper bound


class ExtractSpec(Step):
    strategy: Strategy
    fps: float
    model_family: str  # frames are shrunk to the size this family charges least for...
    frame_width: int  # ...which, for the probed video, is this size
    frame_height: int
    frames_per_chunk: int


class AnalyzeSpec(Step):
    model: str
    provider: str  # the rate-limit bucket and ledger provider name
    detail: str  # OpenAI image detail ("low" / "high")
    # [ROUTING] the tier's summary model (None: ``model``), and the model a chunk whose answer
    # failed validation is retried on once (None: no escalation).
    summary_model: str | None = None
    escalation_model: str | None = None

    def using(self, model: str) -> AnalyzeSpec:
        """The same spec for another model (its own rate bucket and ledger provider)."""
        from vidpipe.providers.image_tokens import family_of

        return self.model_copy(update={"model": model, "provider": str(family_of(model))})


class Estimate(Step):
    frames: int
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


class Plan(Step):
    reservation_id: str
    extract: ExtractSpec
    analyze: AnalyzeSpec
    segments: list[Segment]
    estimate: Estimate


# ---------------------------------------------------------------- step events


class JobRef(Step):
    job_id: str = Field(min_length=1)


class ProbeEvent(JobRef):
    bucket: str
    key: str
    version_id: str | None = None  # the version the upload notification named; None: the version there now


class PlanEvent(JobRef):
    video: VideoInfo
    options: AnalysisOptions = AnalysisOptions()


class ExtractEvent(JobRef):
    bucket: str
    key: str
    segment: Segment
    extract: ExtractSpec
    video: VideoInfo | None = None  # what ProbeVideo returned: the version and size to read (None: HEAD now)


class ExtractResult(Step):
    manifest_key: str
    frames: int
    chunks: list[int]  # chunk indices: the inner Map's items
    read: ReadStats | None = None  # what reading this segment of the upload cost


class AnalyzeEvent(JobRef):
    manifest_key: str
    chunk: int = Field(ge=0)
    analyze: AnalyzeSpec


class AnalyzeResult(Step):
    chunk_key: str
    frames: int
    input_tokens: int
    output_tokens: int
    reused: bool  # the chunk was already analyzed (a retried or redriven execution)


class SummarizeEvent(JobRef):
    bucket: str
    key: str
    video: VideoInfo
    plan: Plan


class SummarizeResult(Step):
    report_key: str
    report_md_key: str
    contact_sheet_key: str | None  # None when no frame could be analyzed (e.g. an all-black video)
    scenes: int
    spend: dict
    upload_read: dict | None = None  # what reading the upload cost the job (report.upload_read)


# ---------------------------------------------------------------- S3 documents


class FrameRef(Step):
    n: int  # position in the segment's manifest
    timestamp_s: float
    shot: int  # shot index within the segment (0 before the segment's first cut)
    key: str
    width: int
    height: int


class Manifest(Step):
    job_id: str
    segment: Segment
    strategy: Strategy
    frames_sampled: int  # sampled before near-duplicates were dropped
    frames: list[FrameRef]
    cuts: list[float]  # absolute timestamps of the cuts detected inside the segment
    frames_per_chunk: int
    read: ReadStats | None = None  # what reading this segment of the upload cost

    @property
    def chunk_count(self) -> int:
        return -(-len(self.frames) // self.frames_per_chunk)

    def chunk(self, index: int) -> list[FrameRef]:
        if not 0 <= index < self.chunk_count:
            raise IndexError(f"segment {self.segment.index} has {self.chunk_count} chunks, not chunk {index}")
        start = index * self.frames_per_chunk
        return self.frames[start:start + self.frames_per_chunk]


class FrameAnalysis(BaseModel):
    """The model's answer for one frame (strict structured output)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(description="the frame's index as labelled in the request")
    description: str = Field(description="one or two sentences on what the frame shows")
    subjects: list[str] = Field(description="people, animals or objects in focus")
    actions: list[str] = Field(description="what is happening")
    setting: str = Field(description="where it takes place")
    text_on_screen: str = Field(description="legible text, empty if none")
    tags: list[str] = Field(description="short lowercase keywords")


class ChunkAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frames: list[FrameAnalysis]


class AnalyzedFrame(FrameAnalysis):
    model_config = ConfigDict(extra="ignore")

    segment: int
    n: int
    timestamp_s: float
    key: str


class ChunkResult(Step):
    job_id: str
    segment: int
    chunk: int
    model: str
    frames: list[AnalyzedFrame]
    input_tokens: int
    output_tokens: int
    request_id: str | None = None
    escalated_from: str | None = None  # [ROUTING] the model whose answers failed validation first


class SummaryAnswer(BaseModel):
    """The reduce call's answer."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="a short paragraph on the whole video")
    tags: list[str] = Field(description="short lowercase keywords for the whole video")


class Scene(BaseModel):
    index: int
    start_s: float
    end_s: float
    keyframe_s: float
    keyframe_key: str  # the analyzed frame shown on the contact sheet
    description: str
    subjects: list[str]
    actions: list[str]
    text_on_screen: list[str]
    tags: list[str]
    frames: int  # analyzed frames inside the scene
