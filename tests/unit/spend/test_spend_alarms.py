import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from spend_testkit import T0, TABLE, RecordingSns, accounting_with, emf_records, gpt_call
from vidpipe.errors import BudgetExceeded
from vidpipe.spend.budgets import Budgets
from vidpipe.spend.scopes import BudgetConfig
from vidpipe_local.clock import VirtualClock

TOPIC = "arn:aws:sns:us-east-1:123456789012:vidpipe-alarms"


def budgets_with(ddb, sns, topic=TOPIC, clock=None):
    config = BudgetConfig(daily_usd=Decimal("10"), monthly_usd=Decimal("1000"), alarm_topic_arn=topic)
    return Budgets(TABLE, config, client=ddb, clock=clock or VirtualClock(T0), sns=sns)


def test_given_a_scope_crossing_80_percent_when_more_is_reserved_then_the_alarm_is_published_once(ddb, capsys):
    sns = RecordingSns()
    budgets = budgets_with(ddb, sns)

    budgets.reserve("job-1", Decimal("5"), "gpt-4.1")
    assert sns.messages == []
    budgets.reserve("job-2", Decimal("3.5"), "gpt-4.1")  # 85 %
    budgets.reserve("job-3", Decimal("1"), "gpt-4.1")  # 95 %

    [alarm] = sns.messages
    assert alarm["TopicArn"] == TOPIC
    assert alarm["Subject"] == "vidpipe budget day:2026-11-22 global at 85%"
    assert json.loads(alarm["Message"]) == {"scope": "global", "period": "day:2026-11-22", "utilization_pct": "85.0",
                                            "limit_usd": "10", "spent_usd": "0", "reserved_usd": "8.500000"}
    records = emf_records(capsys.readouterr().out, "BudgetUtilization")
    day = [r for r in records if r["period"] == "day:2026-11-22"]
    assert [r["BudgetUtilization"] for r in day] == [[50.0], [85.0], [95.0]]
    # the template's BudgetUtilizationAlarm matches namespace vidpipe, dimensions {service}
    assert {json.dumps(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"]) for r in records} == {'[["service"]]'}
    assert {(r["_aws"]["CloudWatchMetrics"][0]["Namespace"], r["service"]) for r in records} == {("vidpipe", "vidpipe")}


def test_given_many_lambdas_crossing_together_when_they_reserve_then_one_alarm_is_published(ddb, atomic_requests):
    sns = RecordingSns()
    budgets = budgets_with(ddb, sns)

    def reserve(i):
        try:
            return budgets.reserve(f"job-{i}", Decimal("0.5"), "gpt-4.1")
        except BudgetExceeded:
            return None

    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(reserve, range(25)))

    assert len(sns.messages) == 1


def test_given_a_call_above_the_estimate_when_it_crosses_80_percent_then_it_alarms(ddb):
    sns = RecordingSns()
    accounting = accounting_with(ddb, budgets_with(ddb, sns).config, VirtualClock(T0), sns=sns)
    accounting.reserve("job-1", Decimal("5"), "gpt-4.1")

    accounting.record_call(gpt_call("job-1", "ccr-1", "8.25"))

    assert json.loads(sns.messages[0]["Message"])["spent_usd"] == "8.250000"


def test_given_no_alarm_topic_when_a_scope_crosses_then_only_the_metric_is_emitted(ddb, capsys):
    sns = RecordingSns()
    budgets = budgets_with(ddb, sns, topic="")

    budgets.reserve("job-1", Decimal("9"), "gpt-4.1")

    assert sns.messages == []
    assert [90.0] in [r["BudgetUtilization"] for r in emf_records(capsys.readouterr().out, "BudgetUtilization")]


def test_given_sns_down_when_the_alarm_fires_then_the_next_change_publishes_it(ddb):
    sns = RecordingSns(fail_first=True)
    budgets = budgets_with(ddb, sns)

    budgets.reserve("job-1", Decimal("8"), "gpt-4.1")
    assert sns.messages == []
    budgets.reserve("job-2", Decimal("0.5"), "gpt-4.1")

    assert len(sns.messages) == 1


def test_given_a_job_at_its_own_cap_when_reserving_then_no_alarm_or_metric_is_per_job(ddb, capsys):
    sns = RecordingSns()
    budgets = budgets_with(ddb, sns)

    budgets.reserve("job-1", Decimal("0.95"), "gpt-4.1", job_limit=Decimal("1"))

    assert sns.messages == []
    assert {r["scope"] for r in emf_records(capsys.readouterr().out, "BudgetUtilization")} == {"global"}
