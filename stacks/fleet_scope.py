"""Where a fleet may reach, when it is known at synth: CDK context `memberAccounts` (the member
accounts' IDs), `organizationId` (their AWS Organizations organization) and `memberRegions`
(the Regions besides this stack's). Each narrows the rules that name member roles and other
Regions' ResetAccess (stacks/permissions.py), and the fleet's first phase refuses a target
outside them before it starts anything (lambdas/logic/fleet.py check_reach).

Without them the rules keep their wildcards, each with its reason (cdk-nag acknowledges it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from constructs import Construct

from lambdas.logic.fleet import ACCOUNT, REGION
from lambdas.names import MEMBER_ACCOUNTS_VARIABLE, MEMBER_REGIONS_VARIABLE, MEMBER_ROLE_NAME
from stacks.context import ContextError
from stacks.permissions import (
    MEMBER_MACHINE_EXECUTIONS,
    MEMBER_MACHINES,
    MEMBER_ROLES,
    Conditions,
    Rule,
)

# AWS Organizations: "o-" and 10 to 32 lowercase letters or digits.
ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
# The member role's ARN, by account and Region (`*`: any), as names.member_role_name makes it.
ROLE = "arn:{{partition}}:iam::{account}:role/{name}-{region}"
WHY_ROLES_IN = (
    "Only the member stack's role ({name}-<Region>) in the accounts -c memberAccounts lists; "
    "its Region suffix is any Region the fleet's input names."
)
WHY_ROLES_IN_ORGANIZATION = (
    "The fleet's target accounts are named in its input; the member stack's role "
    "({name}-<Region>) only in accounts of organization {organization} (aws:ResourceOrgID)."
)
WHY_MACHINES_IN = (
    "Only the member stack's ResetAccess state machine of this account in the Regions "
    "-c memberRegions lists; its executions are named at run time, one per instance."
)


def _listed(scope: Construct, key: str, pattern: re.Pattern[str], example: str) -> tuple[str, ...]:
    """A context list, given as `a,b` (-c) or a JSON list (cdk.json); () when absent."""
    value: Any = scope.node.try_get_context(key)
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        items = [value]
    names = [item.strip() if isinstance(item, str) else item for item in items]
    wrong = [item for item in names if not isinstance(item, str) or not pattern.match(item)]
    if wrong:
        raise ContextError(
            f"{key}: {wrong[0]!r} is not valid; give {example}, separated by commas "
            f"(-c {key}=...), or leave {key} out"
        )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class FleetScope:
    """The accounts, organization and Regions a fleet may reach; empty: any its input names."""

    accounts: tuple[str, ...] = ()
    organization_id: str | None = None
    regions: tuple[str, ...] = ()

    @classmethod
    def from_context(cls, scope: Construct) -> FleetScope:
        organization = scope.node.try_get_context("organizationId")
        if organization is not None and (
            not isinstance(organization, str) or not ORGANIZATION_ID.match(organization)
        ):
            raise ContextError(
                f"organizationId: {organization!r} is not an AWS Organizations ID (o- and 10 "
                "to 32 lowercase letters or digits, like o-a1b2c3d4e5); leave it out to allow "
                "any account"
            )
        return cls(
            accounts=_listed(scope, "memberAccounts", ACCOUNT, "12-digit account IDs"),
            organization_id=organization,
            regions=_listed(scope, "memberRegions", REGION, "Region names like eu-west-1"),
        )

    def environment(self) -> dict[str, str]:
        """For the fleet's first phase, which refuses a target outside them up front."""
        variables = {}
        if self.accounts:
            variables[MEMBER_ACCOUNTS_VARIABLE] = ",".join(self.accounts)
        if self.regions:
            variables[MEMBER_REGIONS_VARIABLE] = ",".join(self.regions)
        return variables

    def role_arns(self) -> tuple[str, ...]:
        """The member roles as resource templates ({partition}; {region}: this stack's)."""
        accounts = self.accounts or ("*",)
        # Cross-account targets in this stack's own Region use that Region's member role.
        regions = ("{region}", *self.regions) if self.regions else ("*",)
        return tuple(
            ROLE.format(account=account, name=MEMBER_ROLE_NAME, region=region)
            for account in accounts
            for region in regions
        )

    def role_conditions(self) -> Conditions:
        if not self.organization_id:
            return {}
        # StringEquals, not ...IfExists: where AWS gave no org ID the call is denied, never allowed.
        return {"StringEquals": {"aws:ResourceOrgID": self.organization_id}}

    def role_why(self) -> str:
        if self.accounts:
            return WHY_ROLES_IN.format(name=MEMBER_ROLE_NAME)
        if self.organization_id:
            return WHY_ROLES_IN_ORGANIZATION.format(
                name=MEMBER_ROLE_NAME, organization=self.organization_id
            )
        return MEMBER_ROLES.why

    def narrow(self, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        """The rules with member roles and other Regions' ResetAccess narrowed to this scope."""
        return tuple(self._narrow(rule) for rule in rules)

    def _narrow(self, rule: Rule) -> Rule:
        if rule == MEMBER_ROLES:
            return Rule(rule.actions, self.role_arns(), self.role_conditions(), why=self.role_why())
        machines = {MEMBER_MACHINES, MEMBER_MACHINE_EXECUTIONS} & set(rule.resources)
        if not machines or not self.regions:
            return rule
        (template,) = machines
        resources = tuple(template.replace(":states:*:", f":states:{r}:") for r in self.regions)
        # A state machine's ARN has no wildcard left; its executions' names still do.
        why = WHY_MACHINES_IN if any("*" in r for r in resources) else ""
        return replace(rule, resources=resources, why=why)
