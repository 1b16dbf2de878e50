"""Budget utilisation: a metric on every change, an SNS alarm once per crossing.

After a reservation, a charge beyond it or a settlement changes a scope, its item is read back and
``BudgetUtilization`` (percent of the limit spent or reserved) is emitted as an
EMF metric with the one dimension ``service`` (what the template's
BudgetUtilizationAlarm watches: one metric, however many models) and the scope
and period as log properties, for Logs Insights. When a scope reaches
``alarm_ratio`` of its limit, the first writer to set the item's
``alarmed_at`` (a conditional write, so one winner across all Lambdas)
publishes to the alarm topic. Each day / month is a new item, which re-arms
the alarm; a scope that dips below the ratio and rises again within its period
does not alarm twice (reservations released and retaken would otherwise page
someone on every flap).

Job scopes are left out: a job near its own cap is normal (a refusal is
recorded on the job), and a page per job would bury the fleet's budgets.
"""

from __future__ import annotations

import json
from decimal import Decimal

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from vidpipe import aws
from vidpipe.jobs import from_item
from vidpipe.observability import emit_metric, logger
from vidpipe.spend.ddb import Clock, clock_fn, error_code
from vidpipe.spend.scopes import ScopeRef


class BudgetAlarm:
    def __init__(self, table: str, client, topic_arn: str = "", sns=None, ratio: Decimal = Decimal("0.8"),
                 clock: Clock | None = None):
        self.table = table
        self.ddb = client
        self.topic_arn = topic_arn
        self._sns = sns
        self.ratio = ratio
        self._now = clock_fn(clock)

    def observe(self, refs: list[ScopeRef]) -> None:
        refs = [ref for ref in refs if not ref.is_job]
        if not refs:
            return
        response = self.ddb.batch_get_item(RequestItems={self.table: {"Keys": [ref.key for ref in refs]}})
        items = {(i["pk"]["S"], i["sk"]["S"]): from_item(i) for i in response["Responses"].get(self.table, [])}
        for ref in refs:
            item = items.get((ref.key["pk"]["S"], ref.period))
            if not item or item["limit"] <= 0:
                continue
            utilization = (item["spent"] + item["reserved"]) / item["limit"]
            self._emit(ref, utilization)
            if utilization >= self.ratio and self.topic_arn and "alarmed_at" not in item and self._claim(ref):
                self._publish(ref, item, utilization)

    @staticmethod
    def _emit(ref: ScopeRef, utilization: Decimal) -> None:
        emit_metric("BudgetUtilization", MetricUnit.Percent, float(utilization * 100),
                    metadata={"scope": ref.name, "period": ref.period})

    def _claim(self, ref: ScopeRef) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.table, Key=ref.key, UpdateExpression="SET alarmed_at = :now",
                ConditionExpression="attribute_not_exists(alarmed_at)",
                ExpressionAttributeValues={":now": {"N": str(round(self._now(), 3))}},
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def _publish(self, ref: ScopeRef, item: dict, utilization: Decimal) -> None:
        message = {"scope": ref.name, "period": ref.period, "utilization_pct": f"{utilization * 100:.1f}",
                   "limit_usd": str(item["limit"]), "spent_usd": str(item["spent"]),
                   "reserved_usd": str(item["reserved"])}
        try:
            sns = self._sns or aws.client("sns")
            sns.publish(TopicArn=self.topic_arn, Subject=f"vidpipe budget {ref.label} at {utilization:.0%}"[:100],
                        Message=json.dumps(message))
        except (BotoCoreError, ClientError):
            # Hand the crossing back so the next change of this scope tries again.
            logger.exception("budget alarm not published", extra=message)
            self.ddb.update_item(TableName=self.table, Key=ref.key, UpdateExpression="REMOVE alarmed_at")
