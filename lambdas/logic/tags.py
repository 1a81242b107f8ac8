"""The tags that mark what an execution created: cleanup and IAM conditions rely on them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ec2.literals import ResourceTypeType
    from mypy_boto3_ec2.type_defs import FilterTypeDef, TagSpecificationTypeDef, TagTypeDef

from lambdas.names import EXECUTION_TAG, MANAGED_TAG


def execution_tags(execution: str, **extra: str) -> list[TagTypeDef]:
    tags: list[TagTypeDef] = [
        {"Key": EXECUTION_TAG, "Value": execution},
        {"Key": MANAGED_TAG, "Value": "true"},
    ]
    tags += [{"Key": key, "Value": value} for key, value in extra.items()]
    return tags


def tag_specifications(
    resource_type: ResourceTypeType, execution: str, **extra: str
) -> list[TagSpecificationTypeDef]:
    """Tags applied in the create call itself, so no created resource is ever untagged."""
    return [{"ResourceType": resource_type, "Tags": execution_tags(execution, **extra)}]


def execution_filter(execution: str) -> list[FilterTypeDef]:
    return [{"Name": f"tag:{EXECUTION_TAG}", "Values": [execution]}]


def tag_value(resource: Mapping[str, Any], key: str) -> str | None:
    for tag in resource.get("Tags", []):
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None
