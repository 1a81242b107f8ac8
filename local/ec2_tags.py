"""EC2 DescribeTags lists only resources that exist: a resource's tags go with it when it is
deleted (Amazon EC2 User Guide, "Tag your Amazon EC2 resources": tags are metadata of the
resource). moto 5.2.5 keeps listing a deleted VPC's, subnet's, route table's, gateway's and
security group's tags, so cleanup would act on pieces that are gone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _exists(backend: Any, resource_id: str) -> bool:
    prefix = resource_id.split("-", 1)[0]
    if prefix == "vpc":
        return resource_id in backend.vpcs
    if prefix == "subnet":
        return any(resource_id in zone for zone in backend.subnets.values())
    if prefix == "rtb":
        return resource_id in backend.route_tables
    if prefix == "igw":
        return resource_id in backend.internet_gateways
    if prefix == "sg":
        return any(resource_id in groups for groups in backend.groups.values())
    return True  # other kinds: as moto answers


@contextlib.contextmanager
def enforced() -> Iterator[None]:
    from unittest import mock

    from moto.ec2.models.tags import TagBackend

    original = TagBackend.describe_tags

    def describe_tags(self: Any, filters: Any = None) -> list[dict[str, str]]:
        found: list[dict[str, str]] = original(self, filters)
        return [tag for tag in found if _exists(self, tag["resource_id"])]

    with mock.patch.object(TagBackend, "describe_tags", describe_tags):
        yield
