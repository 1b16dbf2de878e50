"""What template.yaml promises an operator (issue 10), read from the template itself.

- The alarm topic's key lets CloudWatch publish; alarms reach the topic; only
  system failures are alarmed (a rejected and a failed job on the local stack,
  their emitted metrics compared).
- Every function has a log group with a retention and active tracing.
- Least privilege on the shared table: the DynamoDB requests the real spend code
  makes (recorded against moto) are checked against each function's IAM
  statements, evaluated the way IAM evaluates ``dynamodb:LeadingKeys`` (StringLike)
  and ``dynamodb:Attributes`` (ForAllValues): what a function needs is allowed,
  what it must not do (change a budget's limit, settle a reservation) is not.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from vidpipe.accounting import ProviderCall, reservation_id_for
from vidpipe.spend.accounting import DynamoAccounting
from vidpipe.spend.budgets import Budgets
from vidpipe.spend.ledger import Ledger
from vidpipe.spend.prices import PriceTable
from vidpipe.spend.ratelimit import RateLimiter
from vidpipe.spend.scopes import BudgetConfig
from vidpipe_local.stack.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {name: res for name, res in RESOURCES.items() if res["Type"] == "AWS::Serverless::Function"}
# Functions that read or act on model output (chat answers, provider job states, downloaded clips).
MODEL_OUTPUT = ["AnalyzeChunkFunction", "SummarizeReportFunction", "EnhancePromptFunction",
                "SubmitGenerationFunction", "CheckGenerationFunction", "StoreVideoFunction"]
TABLE = "vidpipe-test"
T0 = 1_795_341_600.0  # 2026-11-22T10:00:00Z


# ----------------------------------------------------------------------------- helpers


def ref_name(node) -> str | None:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return node["Ref"]
    return None


def statements_of(function: str) -> list[dict]:
    """Every IAM statement a function's Policies grant (managed policies resolved)."""
    statements = []
    for policy in FUNCTIONS[function]["Properties"].get("Policies", []):
        name = ref_name(policy)
        if name is not None:
            statements += RESOURCES[name]["Properties"]["PolicyDocument"]["Statement"]
        elif isinstance(policy, dict) and "Statement" in policy:
            statements += policy["Statement"]
    return statements


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def is_table(resource) -> bool:
    return resource == {"Fn::GetAtt": ["JobsTable", "Arn"]}


def allows(statements: list[dict], action: str, pk: str, attributes: set[str]) -> bool:
    """Whether an Allow statement on JobsTable permits ``action`` on an item of partition
    ``pk`` naming ``attributes``, with IAM's semantics for the two condition keys used."""
    for st in statements:
        if st.get("Effect") != "Allow" or action not in _list(st["Action"]):
            continue
        if not any(is_table(r) for r in _list(st["Resource"])):
            continue
        condition = st.get("Condition", {})
        leading = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        if leading is not None and not any(fnmatch.fnmatchcase(pk, pattern) for pattern in leading):
            continue
        allowed = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
        if allowed is not None and not attributes <= set(allowed):
            continue
        return True
    return False


_WORDS = {"SET", "ADD", "REMOVE", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN", "if_not_exists",
          "attribute_not_exists", "attribute_exists", "begins_with", "size", "list_append"}


def attribute_names(request: dict) -> set[str]:
    """The top-level attribute names a write request names: key, item, update and condition."""
    names = set(request.get("Key", {})) | set(request.get("Item", {}))
    aliases = request.get("ExpressionAttributeNames", {})
    for expression in (request.get("UpdateExpression", ""), request.get("ConditionExpression", "")):
        for token in re.findall(r"[#:]?[A-Za-z_][A-Za-z0-9_]*", expression):
            if token.startswith("#"):
                names.add(aliases[token])
            elif not token.startswith(":") and token not in _WORDS:
                names.add(token)
    return names


class RecordingClient:
    """A DynamoDB client that records every item write as (action, pk, attribute names)."""

    def __init__(self, client):
        self._client = client
        self.writes: list[tuple[str, str, frozenset]] = []

    def _record(self, action: str, request: dict) -> None:
        key = request.get("Key") or request.get("Item")
        self.writes.append((f"dynamodb:{action}", key["pk"]["S"], frozenset(attribute_names(request))))

    def transact_write_items(self, TransactItems, **kwargs):  # noqa: N803 (boto3's name)
        for item in TransactItems:
            (kind, request), = item.items()
            self._record({"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem"}[kind], request)
        return self._client.transact_write_items(TransactItems=TransactItems, **kwargs)

    def put_item(self, **request):
        self._record("PutItem", request)
        return self._client.put_item(**request)

    def update_item(self, **request):
        self._record("UpdateItem", request)
        return self._client.update_item(**request)

    def delete_item(self, **request):
        self._record("DeleteItem", request)
        return self._client.delete_item(**request)

    def take(self) -> list[tuple[str, str, frozenset]]:
        writes, self.writes = self.writes, []
        return writes

    def __getattr__(self, name):
        return getattr(self._client, name)


class Clock:
    def __init__(self):
        self.t = T0

    def now(self) -> float:
        return self.t


@pytest.fixture
def recorded(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                        "POWERTOOLS_METRICS_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}])
        recording, clock = RecordingClient(client), Clock()
        config = BudgetConfig(daily_usd=Decimal(50), monthly_usd=Decimal(500), reservation_ttl_s=900)
        accounting = DynamoAccounting(PriceTable.packaged(), Ledger(TABLE, recording, clock),
                                      Budgets(TABLE, config, recording, clock),
                                      RateLimiter(TABLE, 60, 1_000_000, recording, clock, sleep=lambda s: None),
                                      chat_ttl_s=900, video_ttl_s=900)
        yield accounting, recording


def call(job_id: str, key: str, **figures) -> ProviderCall:
    return ProviderCall(job_id=job_id, step="analyze", call_key=key, provider="gemini", model="gemini-2.5-flash",
                        **figures)


def denied(function: str, writes) -> list:
    statements = statements_of(function)
    return [w for w in writes if not allows(statements, w[0], w[1], set(w[2]))]


# ----------------------------------------------------------------------------- alarms reach someone


def test_given_the_alarm_topic_then_its_key_is_the_stacks_own_and_its_policy_lets_cloudwatch_publish():
    topic = RESOURCES["AlarmTopic"]["Properties"]
    assert ref_name(topic["KmsMasterKeyId"]) == "AlarmTopicKey"  # not alias/aws/sns, which CloudWatch cannot use

    key = RESOURCES["AlarmTopicKey"]["Properties"]
    grants = [st for st in key["KeyPolicy"]["Statement"]
              if st["Effect"] == "Allow" and st.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert grants, "no statement of the key policy names CloudWatch"
    actions = {a for st in grants for a in _list(st["Action"])}
    assert "kms:Decrypt" in actions and "kms:GenerateDataKey*" in actions
    assert key["EnableKeyRotation"] is True


def test_given_every_alarm_then_it_notifies_the_alarm_topic_and_none_watches_raw_execution_failures():
    alarms = {name: res["Properties"] for name, res in RESOURCES.items() if res["Type"] == "AWS::CloudWatch::Alarm"}

    assert all([ref_name(a) for a in props["AlarmActions"]] == ["AlarmTopic"] for props in alarms.values())
    # ExecutionsFailed counts a rejected upload too: no alarm may page on it.
    assert not [name for name, props in alarms.items() if props.get("MetricName") == "ExecutionsFailed"]
    for function in FUNCTIONS:
        assert f"{function.removesuffix('Function')}ErrorsAlarm" in alarms, function


def alarmed_metric(alarm: str) -> set[tuple[str, frozenset]]:
    """(metric name, dimensions) of every metric an alarm reads."""
    metrics = set()
    for query in RESOURCES[alarm]["Properties"]["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            metrics.add((metric["MetricName"], frozenset((d["Name"], d["Value"]) for d in metric["Dimensions"])))
    return metrics


def test_given_the_system_failures_alarm_then_it_reads_only_system_failures():
    dimensions = [dict(dims) for name, dims in alarmed_metric("SystemFailuresAlarm")]

    assert {d["kind"] for d in dimensions} == {"analysis", "generation"}
    assert {d["failure_class"] for d in dimensions} == {"system"}


@pytest.mark.integration
def test_given_a_rejected_and_a_failed_job_on_the_local_stack_then_only_the_failure_counts_for_the_alarm(
        make_stack, monkeypatch, tmp_path):
    import vidpipe.observability as observability
    from vidpipe.start_jobs import upload_job_id
    from vidpipe_local import samples

    emitted: list[tuple[str, dict]] = []
    monkeypatch.setattr(observability, "emit_metric",
                        lambda name, unit, value, dimensions=None, metadata=None:
                        emitted.append((name, {"service": "vidpipe", **(dimensions or {})})))
    alarmed = alarmed_metric("SystemFailuresAlarm")

    def alarm_count() -> int:
        return sum(1 for name, dims in emitted if (name, frozenset(dims.items())) in alarmed)

    def run(stack, key: str, body: bytes) -> dict:
        put = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
        job = stack.wait_for_job(upload_job_id(stack.bucket, key, put["ETag"], {}), timeout_s=300)
        # FinalizeJob emits its metric after writing the terminal record: wait for the execution too.
        stack.wait_for_execution(job["execution_arn"])
        return job

    s = make_stack()
    corrupt = tmp_path / "corrupt.mp4"
    samples.truncated_mp4(corrupt)
    rejected = run(s, "uploads/corrupt.mp4", corrupt.read_bytes())
    after_rejection = list(emitted)

    clip = tmp_path / "clip.mp4"
    samples.sample_with_cuts_and_fade(clip, size=(320, 180))
    s.emulator.faults.add_spec("chat:400:times=always")  # the provider refuses: our fault, not the user's
    failed = run(s, "uploads/refused.mp4", clip.read_bytes())

    assert rejected["error"]["error"] == "InputRejected" and failed["error"]["error"] == "ProviderError"
    assert ("JobsFailed", {"service": "vidpipe", "kind": "analysis", "failure_class": "user"}) in after_rejection
    assert ("UserErrors", {"service": "vidpipe", "FunctionName": "local"}) in after_rejection  # ProbeVideo's raise
    assert sum(1 for name, dims in after_rejection if (name, frozenset(dims.items())) in alarmed) == 0
    assert alarm_count() == 1


# ----------------------------------------------------------------------------- logs, traces, concurrency


def test_given_every_function_then_it_has_a_log_group_with_retention_and_active_tracing():
    globals_fn = TEMPLATE["Globals"]["Function"]
    groups = {}
    for name, res in RESOURCES.items():
        if res["Type"] == "AWS::Logs::LogGroup":
            group = res["Properties"]["LogGroupName"]
            groups[group.get("Fn::Sub") if isinstance(group, dict) else group] = res["Properties"]

    for function, res in FUNCTIONS.items():
        group = groups.get(f"/aws/lambda/${{{function}}}")
        assert group is not None, f"{function} has no log group of its own"
        assert ref_name(group["RetentionInDays"]) == "LogRetentionDays"
        assert res["Properties"].get("Tracing", globals_fn["Tracing"]) == "Active"
    assert TEMPLATE["Parameters"]["LogRetentionDays"]["Default"] > 0


def test_given_every_state_machine_then_it_traces_and_logs_to_a_group_with_retention():
    for res in RESOURCES.values():
        if res["Type"] != "AWS::Serverless::StateMachine":
            continue
        props = res["Properties"]
        assert props["Tracing"]["Enabled"] is True
        (destination,) = props["Logging"]["Destinations"]
        group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert "RetentionInDays" in RESOURCES[group]["Properties"]


def test_given_finalize_and_the_sweep_then_their_concurrency_is_reserved_by_parameters():
    for function, parameter in (("FinalizeJobFunction", "FinalizeReservedConcurrency"),
                                ("SweepReservationsFunction", "SweepReservedConcurrency")):
        assert ref_name(FUNCTIONS[function]["Properties"]["ReservedConcurrentExecutions"]) == parameter
        assert TEMPLATE["Parameters"][parameter]["Default"] >= 1


def test_given_every_checkov_suppression_then_it_carries_a_reason():
    for name, res in RESOURCES.items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 30, (name, skip["id"])


def test_given_the_dashboard_then_its_body_is_json_and_covers_jobs_budgets_lambdas_and_dead_letters():
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    titles = " | ".join(w["properties"].get("title", w["properties"].get("markdown", "")) for w in widgets)

    for topic in ("Jobs by kind", "Budget utilisation", "Spend today and this month", "Lambda errors",
                  "Lambda throttles", "Lambda duration", "Dead-letter", "Provider latency", "Tokens"):
        assert topic in titles, topic


def test_given_the_dashboard_then_every_function_and_every_dead_letter_queue_is_on_it():
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = {w["properties"].get("title", ""): json.dumps(w) for w in json.loads(body)["widgets"]}
    functions = [name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"]
    dead_letters = [name for name, r in RESOURCES.items()
                    if r["Type"] == "AWS::SQS::Queue" and name.endswith("DeadLetterQueue")]

    for title in ("Lambda errors", "Lambda throttles", "Lambda duration p95 (ms)"):
        assert [f for f in functions if "${%s}" % f not in widgets[title]] == [], title
    dlq_widget = next(text for title, text in widgets.items() if title.startswith("Dead-letter"))
    assert [q for q in dead_letters if "${%s.QueueName}" % q not in dlq_widget] == []


# ----------------------------------------------------------------------------- least privilege


def test_given_the_real_spend_requests_then_each_function_may_make_exactly_its_own(recorded):
    accounting, ddb = recorded
    job = "job-1"

    accounting.reserve(job, Decimal("1.00"), "gemini-2.5-flash")
    reserve = ddb.take()
    accounting.begin_call(call(job, "k1", input_tokens=1000, output_tokens=500))
    accounting.record_call(call(job, "k1", input_tokens=900, output_tokens=300))
    record = ddb.take()
    accounting.acquire("gemini", 100)
    rate_limit = ddb.take()
    accounting.settle(job, None)  # SummarizeReport: leftover intents only
    summarize = ddb.take()
    accounting.settle(job, reservation_id_for(job))
    settle = ddb.take()

    assert reserve and record and settle
    for function in ("PlanAnalysisFunction", "ReserveGenerationFunction"):
        assert denied(function, reserve) == []
    for function in ("AnalyzeChunkFunction", "SummarizeReportFunction", "EnhancePromptFunction",
                     "FinalizeJobFunction"):
        assert denied(function, record) == [], function
    for function in ("AnalyzeChunkFunction", "SummarizeReportFunction", "EnhancePromptFunction",
                     "SubmitGenerationFunction", "CheckGenerationFunction", "StoreVideoFunction",
                     "SweepReservationsFunction"):
        assert denied(function, rate_limit) == [], function
    assert denied("SummarizeReportFunction", summarize) == []
    for function in ("FinalizeJobFunction", "SweepReservationsFunction"):
        assert denied(function, settle) == [], function
    for function in MODEL_OUTPUT:  # settling moves reserved money: Finalize and the sweep only
        assert denied(function, settle), function


def test_given_a_function_that_handles_model_output_then_it_cannot_touch_a_budgets_limit_or_a_job_record():
    for function in MODEL_OUTPUT:
        statements = statements_of(function)
        assert not allows(statements, "dynamodb:UpdateItem", "BUDGET#global", {"pk", "sk", "limit"}), function
        assert not allows(statements, "dynamodb:UpdateItem", "BUDGET#global", {"pk", "sk", "headroom", "limit"})
        assert not allows(statements, "dynamodb:UpdateItem", "JOB#j", {"pk", "sk", "status"}), function
        assert not allows(statements, "dynamodb:DeleteItem", "RESERVATIONS#LIVE", {"pk", "sk"}), function
        assert not allows(statements, "dynamodb:UpdateItem", "RESERVATION#r", {"pk", "sk", "state", "ttl"})
        assert not allows(statements, "dynamodb:PutItem", "BUDGET#global", {"pk", "sk"}), function


def test_given_every_table_write_except_start_jobs_then_it_is_conditioned_on_its_key_prefixes():
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    for function in FUNCTIONS:
        if function == "StartJobsFunction":  # its grants are the intake's (issue 9), not changed here
            continue
        for st in statements_of(function):
            if writes & set(_list(st["Action"])) and any(is_table(r) for r in _list(st["Resource"])):
                leading = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
                assert leading and "*" not in leading, (function, st.get("Sid"))


def test_given_functions_that_never_use_the_table_or_bedrock_broadly_then_they_hold_no_such_grant():
    probe = statements_of("ProbeVideoFunction")
    assert not [st for st in probe if any(a.startswith("dynamodb:") for a in _list(st["Action"]))]
    for function in FUNCTIONS:
        for st in statements_of(function):
            if any(a.startswith("bedrock:") for a in _list(st["Action"])):
                for resource in _list(st["Resource"]):
                    assert not str(resource.get("Fn::Sub", resource)).endswith("foundation-model/*"), function


def test_given_the_real_watch_requests_then_submit_check_and_the_sweep_may_make_them(recorded):
    from vidpipe.generation.watch import Watch, WatchStore

    _, ddb = recorded
    watches = WatchStore(TABLE, client=ddb)
    watch = Watch(job_id="job-1", provider_job_id="vid-1", provider="generic", model="vidgen-1", seconds=4.0,
                  resolution="1280x720", fps=24, idempotency_key="idem-1", submitted_at=T0)

    watches.add(watch)
    watches.mark_lost("job-1", "idem-2")
    watches.clear_lost("job-1", "idem-2")
    watches.remove("job-1", "vid-1")
    writes = ddb.take()

    assert len(writes) == 6
    for function in ("SubmitGenerationFunction", "CheckGenerationFunction", "SweepReservationsFunction"):
        assert denied(function, writes) == [], function
    assert denied("PlanAnalysisFunction", writes)  # reserving grants nothing of the kind


@pytest.mark.built  # `make lint` runs it right after `sam build`; `make test` leaves it out
def test_given_the_sam_build_output_then_it_deploys_the_same_keys_logs_alarms_and_grants():
    built_path = Path(os.environ.get("VIDPIPE_SAM_BUILD_DIR", ROOT / ".aws-sam" / "build")) / "template.yaml"
    assert built_path.exists(), f"no sam build output at {built_path}: run `make lint`"
    built = load_template(built_path)["Resources"]
    checked = [name for name, res in RESOURCES.items()
               if res["Type"] in ("AWS::KMS::Key", "AWS::SNS::Topic", "AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm",
                                  "AWS::IAM::ManagedPolicy")]
    assert checked
    for name in checked:
        assert built[name]["Properties"] == RESOURCES[name]["Properties"], name
    for function in FUNCTIONS:
        for field in ("Policies", "ReservedConcurrentExecutions"):
            assert built[function]["Properties"].get(field) == FUNCTIONS[function]["Properties"].get(field)
