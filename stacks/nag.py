"""cdk-nag acknowledgements, derived from the reasons the constructs already state."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def flatten_reference(node: Any) -> str:
    """Render a resolved CloudFormation value as cdk-nag names it in a finding ID.

    A port of cdk-nag's `flattenCfnReference` (utils/flatten-cfn-reference.ts): Ref becomes
    `<Name>`, GetAtt `<Name.Attr>`, Join is joined and Sub's `${X}` becomes `<X>`.
    """
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def wildcard_finding(scope: IConstruct, resource: str) -> str:
    """The AwsSolutions-IAM5 finding ID that `resource` (a string, maybe with tokens) raises."""
    return f"AwsSolutions-IAM5[Resource::{flatten_reference(Stack.of(scope).resolve(resource))}]"


def acknowledge(scope: IConstruct, reasons: Mapping[str, Iterable[str]]) -> None:
    """Acknowledge findings on `scope` (and what it contains), one reason line per cause."""
    for finding, why in sorted(reasons.items()):
        reason = " ".join(dict.fromkeys(why))  # several rules may share a resource: keep each once
        # The "AwsSolutions::" prefix names cdk-nag's pack as the rule's owner.
        acknowledgment = Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason)
        Validations.of(scope).acknowledge(acknowledgment)
