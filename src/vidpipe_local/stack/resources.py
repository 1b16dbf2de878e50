"""Create the template's resources in moto.

Two passes: first every resource gets its physical name, ARN and Ref value
(so intrinsics resolve whatever the order), then each is created. Resource
types that only matter on AWS (IAM policies, alarms, bucket/queue policies,
layers, log groups) are named but not created; IAM is not enforced locally.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from vidpipe_local.stack.lambdas import InProcessLambdas, LocalFunction
from vidpipe_local.stack.pollers import SqsMapping
from vidpipe_local.stack.template import ACCOUNT_ID, REGION, Resolver, substitute_definition

LOCAL_ROLE = "vidpipe-local-role"


@dataclass
class BuiltStack:
    resolver: Resolver
    functions: dict[str, LocalFunction] = field(default_factory=dict)  # by logical id
    function_env: dict[str, dict[str, str]] = field(default_factory=dict)  # by logical id
    sqs_mappings: list[SqsMapping] = field(default_factory=list)
    url_functions: list[str] = field(default_factory=list)  # logical ids with FunctionUrlConfig [WEBHOOKS]

    def ref(self, logical_id: str) -> Any:
        return self.resolver.refs[logical_id]

    def att(self, logical_id: str, attr: str) -> Any:
        return self.resolver.get_att(logical_id, attr)


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{resource}"


def name_resources(template: dict, resolver: Resolver) -> None:
    """Pass 1: physical names, Ref values and GetAtt values for every resource
    (except those whose ``Condition`` is false: they are not created)."""
    stack = resolver.stack_name
    resolver.conditions = resolver.conditions or template.get("Conditions", {})
    for logical_id, res in template["Resources"].items():
        if not _wanted(res, resolver):
            continue
        kind, props = res["Type"], res.get("Properties", {})

        def named(prop: str, default: str, props: dict = props) -> str:
            return str(resolver.resolve(props[prop])) if prop in props else default

        refs, attrs = resolver.refs, resolver.attrs
        if kind == "AWS::S3::Bucket":
            name = named("BucketName", f"{stack}-{logical_id}".lower())
            refs[logical_id] = name
            attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        elif kind == "AWS::SQS::Queue":
            name = named("QueueName", f"{stack}-{logical_id}")
            refs[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
            attrs[(logical_id, "Arn")] = _arn("sqs", name)
            attrs[(logical_id, "QueueName")] = name
        elif kind == "AWS::DynamoDB::Table":
            name = named("TableName", f"{stack}-{logical_id}")
            refs[logical_id] = name
            attrs[(logical_id, "Arn")] = _arn("dynamodb", f"table/{name}")
        elif kind == "AWS::SNS::Topic":
            name = named("TopicName", f"{stack}-{logical_id}")
            refs[logical_id] = attrs[(logical_id, "TopicArn")] = _arn("sns", name)
        elif kind == "AWS::SecretsManager::Secret":
            name = named("Name", f"{stack}-{logical_id}")
            refs[logical_id] = name  # replaced by the real ARN once created
        elif kind == "AWS::Serverless::Function":
            name = named("FunctionName", f"{stack}-{logical_id}")
            refs[logical_id] = name
            attrs[(logical_id, "Arn")] = _arn("lambda", f"function:{name}")
        elif kind == "AWS::Serverless::StateMachine":
            name = named("Name", f"{stack}-{logical_id}")
            refs[logical_id] = _arn("states", f"stateMachine:{name}")
            attrs[(logical_id, "Name")] = name
            attrs[(logical_id, "Arn")] = refs[logical_id]
        elif kind == "AWS::Logs::LogGroup":
            name = named("LogGroupName", f"{stack}-{logical_id}")
            refs[logical_id] = name
            attrs[(logical_id, "Arn")] = _arn("logs", f"log-group:{name}:*")
        elif kind == "AWS::Serverless::LayerVersion":
            refs[logical_id] = _arn("lambda", f"layer:{stack}-{logical_id}:1")
        elif kind == "AWS::Events::EventBus":
            name = named("Name", f"{stack}-{logical_id}")
            refs[logical_id] = attrs[(logical_id, "Name")] = name
            attrs[(logical_id, "Arn")] = _arn("events", f"event-bus/{name}")
        elif kind == "AWS::Events::Rule":
            name = named("Name", f"{stack}-{logical_id}")
            refs[logical_id] = name
            bus = str(resolver.resolve(props.get("EventBusName", "default")))
            path = f"rule/{name}" if bus == "default" else f"rule/{bus.rsplit('/', 1)[-1]}/{name}"
            attrs[(logical_id, "Arn")] = _arn("events", path)
        else:
            refs[logical_id] = f"{stack}-{logical_id}"


def _zip_placeholder() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("README.txt", "vidpipe local stack: the handler runs in-process from functions/")
    return buffer.getvalue()


class ResourceBuilder:
    def __init__(self, template: dict, resolver: Resolver, root: Path, clients: dict, lambdas: InProcessLambdas):
        self.template, self.resolver, self.root = template, resolver, root
        self.c, self.lambdas = clients, lambdas
        self.built = BuiltStack(resolver)

    def resources(self, kind: str):
        for logical_id, res in self.template["Resources"].items():
            if res["Type"] == kind and _wanted(res, self.resolver):
                yield logical_id, res.get("Properties", {})

    def build(self, secret_string: str) -> BuiltStack:
        name_resources(self.template, self.resolver)
        self.c["iam"].create_role(RoleName=LOCAL_ROLE, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
        self._secrets(secret_string)
        self._topics()
        self._tables()
        self._queues()
        self._buckets()
        self._event_buses()
        self._functions()
        self._state_machines()
        return self.built

    def _secrets(self, secret_string: str) -> None:
        for logical_id, _ in self.resources("AWS::SecretsManager::Secret"):
            arn = self.c["secretsmanager"].create_secret(
                Name=self.resolver.refs[logical_id], SecretString=secret_string)["ARN"]
            self.resolver.refs[logical_id] = arn

    def _topics(self) -> None:
        for logical_id, _ in self.resources("AWS::SNS::Topic"):
            self.c["sns"].create_topic(Name=self.resolver.refs[logical_id].rsplit(":", 1)[1])

    def _tables(self) -> None:
        for logical_id, props in self.resources("AWS::DynamoDB::Table"):
            props = self.resolver.resolve(props)
            kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
                                            "LocalSecondaryIndexes") if k in props}
            self.c["dynamodb"].create_table(TableName=self.resolver.refs[logical_id],
                                            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"), **kwargs)
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                self.c["dynamodb"].update_time_to_live(TableName=self.resolver.refs[logical_id],
                                                       TimeToLiveSpecification=ttl)

    def _queues(self) -> None:
        queues = list(self.resources("AWS::SQS::Queue"))
        # Dead-letter queues first: a redrive policy must point at an existing queue.
        queues.sort(key=lambda q: "RedrivePolicy" in q[1])
        for logical_id, props in queues:
            props = self.resolver.resolve(props)
            attributes = {k: str(props[k]) for k in ("VisibilityTimeout", "MessageRetentionPeriod",
                                                     "DelaySeconds", "ReceiveMessageWaitTimeSeconds") if k in props}
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            url = self.c["sqs"].create_queue(QueueName=self.resolver.attrs[(logical_id, "QueueName")],
                                             Attributes=attributes)["QueueUrl"]
            self.resolver.refs[logical_id] = url

    def _buckets(self) -> None:
        for logical_id, props in self.resources("AWS::S3::Bucket"):
            props = self.resolver.resolve(props)
            name = self.resolver.refs[logical_id]
            self.c["s3"].create_bucket(Bucket=name)
            if props.get("VersioningConfiguration"):
                self.c["s3"].put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
            queue_configs = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
            if queue_configs:
                self.c["s3"].put_bucket_notification_configuration(
                    Bucket=name,
                    NotificationConfiguration={"QueueConfigurations": [_s3_queue_config(q) for q in queue_configs]},
                )

    def _event_buses(self) -> None:
        """Buses, then rules with their targets. moto 5.2.5 delivers a matching event to SQS
        targets (checked in tests/integration/test_completion_events.py); other target
        types are created but deliver nothing locally (docs/local-stack-limits.md)."""
        for logical_id, _ in self.resources("AWS::Events::EventBus"):
            self.c["events"].create_event_bus(Name=self.resolver.refs[logical_id])
        for logical_id, props in self.resources("AWS::Events::Rule"):
            props = self.resolver.resolve(props)
            name, bus = self.resolver.refs[logical_id], str(props.get("EventBusName", "default"))
            rule: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
            if "EventPattern" in props:
                pattern = props["EventPattern"]
                rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
            if "ScheduleExpression" in props:
                rule["ScheduleExpression"] = props["ScheduleExpression"]
            self.c["events"].put_rule(**rule)
            targets = [{k: t[k] for k in ("Id", "Arn", "Input", "InputPath") if k in t}
                       for t in props.get("Targets", [])]
            if targets:
                self.c["events"].put_targets(Rule=name, EventBusName=bus, Targets=targets)

    def _function_env(self, props: dict) -> dict[str, str]:
        globals_env = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own_env = props.get("Environment", {}).get("Variables", {})
        return {k: str(v) for k, v in self.resolver.resolve({**globals_env, **own_env}).items()}

    def _functions(self) -> None:
        globals_fn = self.template.get("Globals", {}).get("Function", {})
        code = _zip_placeholder()
        for logical_id, props in self.resources("AWS::Serverless::Function"):
            name = self.resolver.refs[logical_id]
            env = self._function_env(props)
            fn = LocalFunction(
                logical_id=logical_id, function_name=name,
                code_dir=(self.root / props["CodeUri"]).resolve(),
                handler=props.get("Handler", globals_fn.get("Handler", "app.handler")),
                memory_mb=int(self.resolver.resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)))),
                timeout_s=int(self.resolver.resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))),
                reserved_concurrency=_optional_int(self.resolver.resolve(
                    props.get("ReservedConcurrentExecutions", globals_fn.get("ReservedConcurrentExecutions")))),
            )
            self.c["lambda"].create_function(
                FunctionName=name, Runtime=props.get("Runtime", globals_fn.get("Runtime", "python3.12")),
                Role=f"arn:aws:iam::{ACCOUNT_ID}:role/{LOCAL_ROLE}", Handler=fn.handler,
                Code={"ZipFile": code}, Timeout=fn.timeout_s, MemorySize=fn.memory_mb,
                Environment={"Variables": env},
            )
            self.lambdas.register(fn)
            self.built.functions[logical_id] = fn
            self.built.function_env[logical_id] = env
            if props.get("FunctionUrlConfig"):  # served on 127.0.0.1 by the stack (function_urls.py)
                self.built.url_functions.append(logical_id)
            for event in props.get("Events", {}).values():
                if event["Type"] == "SQS":
                    ev = self.resolver.resolve(event["Properties"])
                    queue_logical = _queue_by_arn(self.resolver, ev["Queue"])
                    self.built.sqs_mappings.append(SqsMapping(
                        function_name=name, queue_url=self.resolver.refs[queue_logical],
                        queue_arn=ev["Queue"], batch_size=int(ev.get("BatchSize", 10))))

    def _state_machines(self) -> None:
        for logical_id, props in self.resources("AWS::Serverless::StateMachine"):
            props = self.resolver.resolve(props)
            definition = (self.root / props["DefinitionUri"]).read_text()
            asl = substitute_definition(definition, props.get("DefinitionSubstitutions", {}))
            self.c["stepfunctions"].create_state_machine(
                name=self.resolver.attrs[(logical_id, "Name")], definition=json.dumps(asl),
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{LOCAL_ROLE}", type=props.get("Type", "STANDARD"),
            )


def _wanted(resource: dict, resolver: Resolver) -> bool:
    """False for a resource whose ``Condition`` is false for these parameters."""
    return "Condition" not in resource or resolver.condition(resource["Condition"])


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _queue_by_arn(resolver: Resolver, arn: str) -> str:
    for (logical_id, attr), value in resolver.attrs.items():
        if attr == "Arn" and value == arn:
            return logical_id
    raise KeyError(f"no queue with ARN {arn}")


def _s3_queue_config(config: dict) -> dict:
    out: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
    if rules:
        out["Filter"] = {"Key": {"FilterRules": rules}}
    return out
