import math
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from vidpipe.accounting import reservation_id_for
from vidpipe.accounting import reservation_id_for
from vidpipe.analysis.analyze import OUTPUT_TOKENS_PER_FRAME
from vidpipe.analysis.models import AnalysisOptions, VideoInfo
from vidpipe.analysis.plan import estimate, plan_analysis, split_segments
from vidpipe.analysis.summarize import REDUCE_OUTPUT_TOKENS, SCENE_LINE_TOKENS, reduce_cost
from vidpipe.config import Settings
from vidpipe.errors import BudgetExceeded
from vidpipe.jobs import from_item
from vidpipe.providers.image_tokens import family_of, image_tokens
from vidpipe.spend.accounting import DynamoAccounting
from vidpipe.spend.prices import PriceTable


def video(duration_s=150.0, width=1920, height=1080) -> VideoInfo:
    return VideoInfo(duration_s=duration_s, fps=30.0, frame_count=int(duration_s * 30), width=width, height=height,
                     codec="h264", size_bytes=10_000_000)


class RecordingPrice:
    def __init__(self):
        self.calls = []

    def __call__(self, model, input_tokens, output_tokens):
        self.calls.append((model, input_tokens, output_tokens))
        return Decimal(input_tokens) / 1000 + Decimal(output_tokens) / 100


def test_given_a_long_video_when_splitting_then_segments_cover_it_in_order_with_per_segment_frame_caps():
    segments = split_segments(150.0, 60.0, fps=1.0, max_frames=45)

    assert [(s.index, s.start_s, s.end_s) for s in segments] == [(0, 0.0, 60.0), (1, 60.0, 120.0), (2, 120.0, 150.0)]
    assert [s.max_frames for s in segments] == [45, 45, 30]


def test_given_a_short_tail_when_splitting_then_it_joins_the_segment_before():
    segments = split_segments(130.0, 60.0, fps=2.0, max_frames=500)

    assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 60.0), (60.0, 130.0)]
    assert segments[-1].max_frames == 140


def test_given_the_same_plan_when_estimating_for_two_families_then_they_differ_by_the_image_token_rules():
    segments = split_segments(90.0, 60.0, fps=0.5, max_frames=120)  # 30 + 15 frames
    price = RecordingPrice()

    gemini = estimate(segments, "gemini-2.5-flash", (384, 216), "high", frames_per_chunk=8, price=price)
    openai = estimate(segments, "gpt-4.1", (512, 288), "low", frames_per_chunk=8, price=price)

    assert gemini.frames == openai.frames == 45
    assert gemini.requests == math.ceil(30 / 8) + math.ceil(15 / 8) + 1  # chunks + one reduce call
    assert gemini.input_tokens - openai.input_tokens == 45 * (258 - 85)
    # RecordingPrice charges $1 per 1000 input and $1 per 100 output tokens: each at its own rate.
    assert gemini.cost_usd == Decimal(gemini.input_tokens) / 1000 + Decimal(gemini.output_tokens) / 100
    assert [call[0] for call in price.calls] == ["gemini-2.5-flash", "gpt-4.1"]


def test_given_more_scenes_than_one_reduce_call_takes_when_estimating_then_the_reduce_tree_is_counted():
    assert reduce_cost(80, overhead_tokens=100) == (1, 80 * SCENE_LINE_TOKENS + 100, REDUCE_OUTPUT_TOKENS)
    calls, input_tokens, output_tokens = reduce_cost(200, overhead_tokens=100)
    assert calls == 3 + 1
    assert input_tokens == 200 * SCENE_LINE_TOKENS + 3 * 100 + 3 * REDUCE_OUTPUT_TOKENS + 100
    assert output_tokens == 4 * REDUCE_OUTPUT_TOKENS


def test_given_an_openai_model_when_planning_then_frames_are_512_low_detail_and_cheaper_than_gemini(accounting):
    settings = Settings(segment_seconds=60.0, default_fps=1.0, frames_per_chunk=8)
    prices = RecordingPrice()

    openai = plan_analysis("job-1", video(), AnalysisOptions(model="gpt-4.1"), settings, accounting, prices)
    gemini = plan_analysis("job-2", video(), AnalysisOptions(model="gemini-2.5-flash"), settings, accounting, prices)

    assert (openai.extract.frame_width, openai.extract.frame_height, openai.analyze.detail) == (512, 288, "low")
    assert (gemini.extract.frame_width, gemini.extract.frame_height) == (384, 216)
    assert openai.analyze.provider == "openai" and gemini.analyze.provider == "gemini"
    assert openai.estimate.input_tokens < gemini.estimate.input_tokens


def test_given_options_when_planning_then_they_override_the_settings_and_the_estimate_is_reserved(accounting):
    settings = Settings(default_sampling="scene", default_fps=1.0, frames_per_chunk=8)
    table = PriceTable.packaged()
    options = AnalysisOptions(sampling="uniform", fps=2.0, frames_per_chunk=4, budget_usd=Decimal("5"))

    plan = plan_analysis("job-1", video(60.0), options, settings, accounting, table.chat_cost)

    assert (plan.extract.strategy, plan.extract.fps, plan.extract.frames_per_chunk) == ("uniform", 2.0, 4)
    assert plan.segments[0].max_frames == 120
    assert plan.reservation_id == reservation_id_for("job-1")  # the job's one reservation (money design §1)
    assert accounting.reservations == [("job-1", plan.estimate.cost_usd, "gemini-2.5-flash", Decimal("5"))]


def test_given_a_plan_when_estimated_then_it_covers_every_planned_frame_at_its_image_size_and_output(accounting):
    settings = Settings(default_fps=1.0, frames_per_chunk=8)
    table = PriceTable.packaged()

    plan = plan_analysis("job-1", video(60.0), AnalysisOptions(model="gpt-4.1"), settings, accounting,
                         table.chat_cost)

    # The least the 60 frames can cost: their image tokens at the planned size, and their answers.
    frames = sum(s.max_frames for s in plan.segments)
    tokens = image_tokens(family_of("gpt-4.1"), plan.extract.frame_width, plan.extract.frame_height,
                          plan.analyze.detail)
    floor = table.chat_cost("gpt-4.1", frames * tokens, frames * OUTPUT_TOKENS_PER_FRAME)
    assert frames == 60 and plan.estimate.frames == frames
    assert plan.estimate.cost_usd > floor > 0  # strictly: labels, prompts and the reduce call come on top


def test_given_a_job_limit_below_the_estimate_when_planning_then_budget_exceeded_and_nothing_reserved():
    # The real DynamoDB budgets decide, not a fake: the job's budget_usd must reach them as its limit.
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName="jobs", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}])
        settings = Settings(table_name="jobs")
        accounting = DynamoAccounting.from_settings(settings, client=ddb)

        with pytest.raises(BudgetExceeded, match="job"):
            plan_analysis("job-1", video(), AnalysisOptions(budget_usd=Decimal("0.0001")), settings, accounting,
                          PriceTable.packaged().chat_cost)
        items = [from_item(item) for item in ddb.scan(TableName="jobs")["Items"]]

        plan = plan_analysis("job-2", video(), AnalysisOptions(budget_usd=Decimal("5")), settings, accounting,
                             PriceTable.packaged().chat_cost)
        held = [from_item(item) for item in ddb.scan(TableName="jobs")["Items"]]

    assert not any(item.get("reserved") for item in items) and not any("reservation_id" in i for i in items)
    assert any(item.get("reservation_id") == plan.reservation_id for item in held)  # the check could see one


def test_given_a_plan_when_serialised_for_the_state_machine_then_it_stays_small(accounting):
    settings = Settings(segment_seconds=60.0)
    plan = plan_analysis("job-1", video(3 * 3600.0), AnalysisOptions(), settings, accounting, RecordingPrice())

    assert len(plan.segments) == 180
    assert len(plan.model_dump_json()) < 32_000
