"""Read template.yaml and resolve CloudFormation intrinsics to local values.

Only what the template uses is supported (Ref, GetAtt, Sub, Join, Select,
Split, If/Equals are not used); anything else is an error, so the template
cannot silently drift from what the local stack understands.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class _Tagged:
    """A `!Tag value` node, kept until resolution."""

    def __init__(self, tag: str, value: Any):
        self.tag, self.value = tag, value


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: ~10x faster on the template
    pass


def _construct(loader: yaml.Loader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Fn::" + suffix if suffix not in ("Ref", "Condition") else suffix
    if name == "Fn::GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


_Loader.add_multi_constructor("!", _construct)


def load_template(path: str | Path) -> dict:
    """The template as plain data: a fresh copy on every call (callers may change it),
    parsed once per version of the file."""
    path = Path(path).resolve()
    return copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))


@lru_cache(maxsize=4)
def _parsed(path: Path, mtime_ns: int) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)


class UnsupportedIntrinsic(ValueError):
    pass


@dataclass
class Resolver:
    """Resolves intrinsics. ``refs`` maps logical id → Ref value; ``attrs``
    maps (logical id, attribute) → GetAtt value; both are filled as the local
    stack names resources, before anything is created."""

    stack_name: str
    parameters: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[tuple[str, str], Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)  # the template's Conditions section
    region: str = REGION
    account_id: str = ACCOUNT_ID

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def ref(self, name: str) -> Any:
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"Ref to unknown or not yet named resource {name!r}")

    def get_att(self, name: str, attr: str) -> Any:
        try:
            return self.attrs[(name, attr)]
        except KeyError:
            raise KeyError(f"GetAtt {name}.{attr} is not known to the local stack") from None

    def condition(self, name: str) -> bool:
        """A named condition of the template, evaluated on the parameters."""
        if name not in self.conditions:
            raise KeyError(f"Condition {name!r} is not in the template's Conditions")
        return self._truth(self.conditions[name])

    def _truth(self, node: Any) -> bool:
        if isinstance(node, bool):
            return node
        (key, value), = node.items()
        if key == "Condition":
            return self.condition(value)
        if key == "Fn::Equals":
            left, right = (self.resolve(v) for v in value)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(value[0])
        if key == "Fn::And":
            return all(self._truth(v) for v in value)
        if key == "Fn::Or":
            return any(self._truth(v) for v in value)
        raise UnsupportedIntrinsic(f"{key} is not supported in a condition by the local stack")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                return self.get_att(*value)
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::Join":
                sep, items = value
                return sep.join(str(self.resolve(i)) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = value
                return str(self.resolve(text)).split(sep)
            if key == "Fn::If":  # only the branch taken is resolved (the other may name a resource not created)
                name, if_true, if_false = value
                return self.resolve(if_true if self.condition(name) else if_false)
            if key.startswith("Fn::"):
                raise UnsupportedIntrinsic(f"{key} is not supported by the local stack")
        return {k: self.resolve(v) for k, v in node.items()}

    def _sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, variables = value[0], {k: self.resolve(v) for k, v in value[1].items()}
        else:
            text, variables = value, {}

        def replace(match: re.Match) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and expr.split(".", 1)[0] not in self.pseudo():
                return str(self.get_att(*expr.split(".", 1)))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def substitute_definition(definition: str, substitutions: dict[str, Any]) -> dict:
    """Apply DefinitionSubstitutions the way Step Functions / SAM do (${Name})."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise KeyError(f"DefinitionSubstitution ${{{name}}} has no value in template.yaml")
        return str(substitutions[name])

    return json.loads(re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition))
