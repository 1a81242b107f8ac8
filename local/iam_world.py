"""What the engine's IAM check reads to authorize a call, as AWS does: the resources' ARNs, the
tags on existing resources (`aws:ResourceTag/*`) and on ones a request creates
(`aws:RequestTag/*`), KMS keys and whether AWS manages them, parameters, instance profiles'
roles, all from moto's current state.

Apart from the map of operations (local/iam_operations.py) that uses it, so that map reads as
the Service Authorization Reference does: one entry per operation, no moto in sight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PARTITION = "aws"
EXECUTION_TAG_KEYS = "aws:TagKeys"
AWS_MANAGED_ALIAS = "alias/aws/"


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a request: action on resource, with its context."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class World:
    """Reads what AWS reads to authorize: tags on existing resources, keys, profiles."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def ec2(self) -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[self.account][self.region]

    def ec2_arn(self, kind: str, resource_id: str) -> str:
        # AMI and snapshot ARNs have no account (Service Authorization Reference, EC2).
        account = "" if kind in ("image", "snapshot") else self.account
        return f"arn:{PARTITION}:ec2:{self.region}:{account}:{kind}/{resource_id}"

    def existing(
        self,
        action: str,
        kind: str,
        resource_id: str,
        extra: Mapping[str, tuple[str, ...]] | None = None,
    ) -> Check:
        tags = self.ec2().tags.get(resource_id, {})
        context = {f"aws:ResourceTag/{k}": (v,) for k, v in tags.items()}
        return Check(action, self.ec2_arn(kind, resource_id), {**context, **(extra or {})})

    def new(
        self,
        action: str,
        kind: str,
        tags: Mapping[str, str],
        extra: Mapping[str, tuple[str, ...]] | None = None,
    ) -> Check:
        # A resource not yet created is authorized as <type>/* (its ID does not exist yet).
        context: dict[str, tuple[str, ...]] = {f"aws:RequestTag/{k}": (v,) for k, v in tags.items()}
        if tags:
            context[EXECUTION_TAG_KEYS] = tuple(tags)
        return Check(action, self.ec2_arn(kind, "*"), {**context, **(extra or {})})

    def key(self, key_id: str) -> Any | None:
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][self.region]
        try:
            return backend.describe_key(key_id)
        except (KeyError, Exception):  # noqa: BLE001 - a key that is not there is checked by ARN
            return None

    def key_arn(self, key_id: str) -> str:
        key = self.key(key_id)
        if key is not None:
            return str(key.arn)
        if key_id.startswith("arn:"):
            return key_id
        return f"arn:{PARTITION}:kms:{self.region}:{self.account}:key/{key_id}"

    def customer_managed(self, key_id: str) -> bool:
        """AWS managed keys (aws/ebs, aws/ssm) are opened by their key policy to every principal
        of the account through the service; only customer managed keys need IAM rights."""
        key = self.key(key_id)
        if key is None:
            return not key_id.startswith(AWS_MANAGED_ALIAS)
        aliases = getattr(key, "aliases", {}) or {}
        return key.key_manager != "AWS" and not any(
            str(a).startswith(AWS_MANAGED_ALIAS) for a in aliases
        )

    def ebs_default_key(self) -> str:
        backend = self.ec2()
        return str(backend.default_kms_key_id or "alias/aws/ebs")

    def parameter(self, name: str) -> Any | None:
        from moto.ssm.models import ssm_backends

        return ssm_backends[self.account][self.region].get_parameter(name)

    def parameter_arn(self, name: str) -> str:
        # AWS's public parameters live in no account; a name without "/" gets one.
        account = "" if name.startswith("/aws/") else self.account
        slash = "" if name.startswith("/") else "/"
        return f"arn:{PARTITION}:ssm:{self.region}:{account}:parameter{slash}{name}"

    def role_of_profile(self, profile: Mapping[str, str]) -> str:
        from moto.iam.models import iam_backends

        backend = iam_backends[self.account][PARTITION]
        found = (
            backend.get_instance_profile_by_arn(profile["Arn"])
            if "Arn" in profile
            else backend.get_instance_profile(profile["Name"])
        )
        return str(found.roles[0].arn)
