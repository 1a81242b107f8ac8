"""The tags that mark what an execution created: cleanup and IAM conditions rely on them."""

from __future__ import annotations

from typing import Any

from lambdas.names import EXECUTION_TAG, MANAGED_TAG


def execution_tags(execution: str, **extra: str) -> list[dict[str, str]]:
    tags = [{"Key": EXECUTION_TAG, "Value": execution}, {"Key": MANAGED_TAG, "Value": "true"}]
    tags += [{"Key": key, "Value": value} for key, value in extra.items()]
    return tags


def tag_specifications(resource_type: str, execution: str, **extra: str) -> list[dict[str, Any]]:
    """Tags applied in the create call itself, so no created resource is ever untagged."""
    return [{"ResourceType": resource_type, "Tags": execution_tags(execution, **extra)}]


def execution_filter(execution: str) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{EXECUTION_TAG}", "Values": [execution]}]


def tag_value(resource: dict[str, Any], key: str) -> str | None:
    for tag in resource.get("Tags", []):
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None
