import pytest

from spend_testkit import emf_records
from vidpipe.spend.usage import UsageVerdict, check_usage


def test_given_a_report_far_below_the_image_tokens_when_checked_then_dropped_images_are_flagged(capsys, caplog):
    # 8 frames at 258 tokens (Gemini, ≤384 px) + 120 text tokens, but the gateway billed text only
    verdict = check_usage(8 * 258 + 120, 131, images=8, model="gemini-2.5-flash", job_id="job-1")

    assert verdict is UsageVerdict.IMAGES_DROPPED
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert (warning.verdict, warning.job_id, warning.reported_prompt_tokens) == ("images_dropped", "job-1", 131)
    [metric] = emf_records(capsys.readouterr().out, "UsageAnomaly")
    assert (metric["verdict"], metric["model"], metric["UsageAnomaly"]) == ("images_dropped", "gemini-2.5-flash", [1.0])
    assert metric["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "verdict", "model"]]


def test_given_a_report_far_above_the_estimate_when_checked_then_over_counting_is_flagged(capsys):
    # detail=low (85 a frame) expected, billed as if high detail (765 a frame)
    verdict = check_usage(8 * 85 + 100, 8 * 765 + 100, images=8, model="gpt-4.1")

    assert verdict is UsageVerdict.OVER_COUNTED
    assert emf_records(capsys.readouterr().out, "UsageAnomaly")[0]["verdict"] == "over_counted"


@pytest.mark.parametrize("reported", [2184, 1100, 3200])
def test_given_a_report_within_tolerance_when_checked_then_nothing_is_flagged(reported, capsys, caplog):
    assert check_usage(2184, reported, images=8, model="gemini-2.5-flash") is UsageVerdict.OK
    assert capsys.readouterr().out == "" and not caplog.records


def test_given_a_text_only_call_when_the_report_is_low_then_it_is_not_called_dropped_images():
    assert check_usage(400, 150, images=0, model="deepseek-v3.2") is UsageVerdict.OK
