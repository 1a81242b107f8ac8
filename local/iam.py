"""The engine's IAM: each handler's call is authorized against its own function's policy.

moto 5.2.5 enforces no identity policy on our calls (its own check knows actions only, with
Resource "*"), so a green workflow test said nothing about AccessDenied in a real account.
Here every AWS call a handler makes becomes the authorizations AWS makes for it (Service
Authorization Reference: action, resource ARNs, condition keys, and the actions AWS checks on
the caller while serving it), each checked against the function's policy rendered from
stacks/permissions.py, the table the stack's template is made from. A denied one raises what
AWS answers; an operation this map does not know fails loudly, so a new call cannot slip past.

Evaluation follows AWS's policy evaluation logic for one identity policy: an explicit Deny
wins, else an Allow whose Action, Resource and every Condition match, else implicit deny.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from local.iam_operations import OPERATIONS, UnknownOperation
from local.iam_world import PARTITION, Check, World
from stacks.permissions import PERMISSIONS, Rule, render, render_conditions
from statemachine import phases


# -- evaluation ---------------------------------------------------------------------------------
@cache
def _glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def _matches(patterns: Iterable[str], value: str, case_sensitive: bool) -> bool:
    return any(_glob(p, case_sensitive).match(value) for p in patterns)


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _condition_holds(
    operator: str, key: str, wanted: list[str], context: Mapping[str, tuple[str, ...]]
) -> bool:
    """One condition key under one operator (IAM reference: condition operators). A key the
    request lacks fails every operator but Null; several policy values are an OR."""
    present = context.get(key)
    if operator.startswith("ForAllValues:"):
        # Every value the request has matches some policy value (true when it has none: IAM
        # User Guide, "Multivalued context keys").
        single = operator.removeprefix("ForAllValues:")
        return all(_condition_holds(single, key, wanted, {key: (v,)}) for v in present or ())
    if operator == "Null":
        return (present is None) == (wanted[0].lower() == "true")
    if operator == "ForAllValues:StringEquals":
        # IAM: true when every request value is allowed, also when the request has none (so
        # policies pair it with Null).
        return all(v in wanted for v in present or ())
    if present is None:
        return False
    if operator == "StringEquals":
        return any(v in wanted for v in present)
    if operator == "StringLike":
        return any(_matches(wanted, v, True) for v in present)
    if operator == "ArnLike":
        return any(_matches(wanted, v, True) for v in present)
    if operator == "Bool":
        return any(v.lower() in [w.lower() for w in wanted] for v in present)
    raise ValueError(f"condition operator {operator} is not evaluated locally: add it here")


def statement_allows(statement: Mapping[str, Any], check: Check) -> bool:
    """Action (case-insensitive) and Resource (case-sensitive) wildcards, then all conditions."""
    if not _matches(_as_list(statement["Action"]), check.action, False):
        return False
    if not _matches(_as_list(statement["Resource"]), check.resource, True):
        return False
    return all(
        _condition_holds(operator, key, _as_list(wanted), check.context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, wanted in keys.items()
    )


def decide(statements: Sequence[Mapping[str, Any]], check: Check) -> list[int]:
    """Indexes of the Allow statements that allow the check; [] when denied (none allows it,
    or an explicit Deny matches)."""
    matching = [i for i, s in enumerate(statements) if statement_allows(s, check)]
    if any(statements[i].get("Effect") == "Deny" for i in matching):
        return []
    return matching


def policy(rules: Iterable[Rule], values: Mapping[str, str]) -> list[dict[str, Any]]:
    """The function's statements, rendered as stacks/functions.py renders them for its role."""
    return [
        {
            "Effect": "Allow",
            "Action": list(rule.actions),
            "Resource": [render(r, values) for r in rule.resources],
            "Condition": render_conditions(rule.conditions, values),
        }
        for rule in rules
    ]


def _handler_name(function: str, stack: str) -> str:
    """`ResetAccess-CheckVolume` -> `check_volume`, the permission table's key."""
    return phases.by_name(function.removeprefix(f"{stack}-")).handler


class Authorizer:
    """Checks each handler call; counts allowed and denied, and which rule allowed what."""

    def __init__(
        self,
        stack: str,
        account: str,
        region: str,
        values: Callable[[], Mapping[str, str]],
        locate: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self.stack = stack
        self.world = World(account, region)
        self.account = account
        self._values = values
        # Where the call being checked is made (each function in its own account and Region).
        self._locate = locate
        # Swap this (a test removing one rule) and the next call sees the new table.
        self.permissions: Mapping[str, tuple[Rule, ...]] = PERMISSIONS
        self.checked: Counter[str] = Counter()  # "allowed" / "denied"
        self.denied: list[tuple[str, Check]] = []
        # (handler, rule index) -> how many checks that rule allowed.
        self.granted: Counter[tuple[str, int]] = Counter()
        self.sole_grants: defaultdict[tuple[str, int], int] = defaultdict(int)

    def reset(self) -> None:
        self.checked.clear()
        self.denied.clear()
        self.granted.clear()
        self.sole_grants.clear()

    def authorize(
        self, function: str | None, service: str, operation: str, params: Mapping[str, Any]
    ) -> None:
        """Raise what AWS answers when the function's policy does not allow the call."""
        if not function:
            return  # the engine's own calls (world building, the interpreter) run as admin
        action = f"{service}:{operation}"
        try:
            authorize = OPERATIONS[action]
        except KeyError:
            raise UnknownOperation(
                f"the local engine has no IAM mapping for {action}: add its resources and "
                "condition keys to OPERATIONS in local/iam.py (Service Authorization Reference)"
            ) from None
        handler = _handler_name(function, self.stack)
        statements = policy(self.permissions.get(handler, ()), self._values())
        world = World(*self._locate()) if self._locate else self.world
        principal = f"arn:{PARTITION}:sts::{world.account}:assumed-role/{function}/{function}"
        for check in authorize(world, params):
            allowing = decide(statements, check)
            if not allowing:
                self.checked["denied"] += 1
                self.denied.append((handler, check))
                raise self._denied(principal, service, operation, check)
            self.checked["allowed"] += 1
            for index in allowing:
                self.granted[(handler, index)] += 1
            if len(allowing) == 1:
                self.sole_grants[(handler, allowing[0])] += 1

    def authorize_role(
        self,
        role_arn: str,
        statements: Sequence[Mapping[str, Any]],
        region: str,
        call: tuple[str, str, Mapping[str, Any]],
    ) -> None:
        """A call made with an assumed role's credentials, checked against that role's policy
        in the role's account and the client's Region."""
        service, operation, params = call
        action = f"{service}:{operation}"
        if action not in OPERATIONS:
            raise UnknownOperation(f"the local engine has no IAM mapping for {action}")
        world = World(role_arn.split(":")[4], region)
        name = role_arn.rsplit("/", 1)[-1]
        principal = f"arn:{PARTITION}:sts::{world.account}:assumed-role/{name}/session"
        for check in OPERATIONS[action](world, params):
            if not decide(statements, check):
                self.checked["denied"] += 1
                self.denied.append((name, check))
                raise self._denied(principal, service, operation, check)
            self.checked["allowed"] += 1

    def _denied(self, principal: str, service: str, operation: str, check: Check) -> ClientError:
        message = (
            f"User: {principal} is not authorized to perform: {check.action} on "
            f"resource: {check.resource} because no identity-based policy allows the "
            f"{check.action} action"
        )
        # EC2 answers UnauthorizedOperation; the JSON services AccessDeniedException.
        if service == "ec2":
            code, message = (
                "UnauthorizedOperation",
                (f"You are not authorized to perform this operation. {message}"),
            )
        else:
            code = "AccessDeniedException"
        return ClientError(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            operation,
        )


def for_engine(engine: Any) -> Authorizer:
    """The engine's authorizer: the stack's values as the engine names its resources."""
    from local import locations, stack_twin
    from local.emulator import ACCOUNT, REGION

    stack = stack_twin.STACK

    def values() -> dict[str, str]:
        # The stack's values where the calling function is deployed.
        where = locations.current()
        account, region = where
        member = engine.members.get(where)
        return {
            "partition": PARTITION,
            "region": region,
            "account": account,
            "lock_table_arn": (
                f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{stack_twin.LOCK_TABLE}"
            ),
            "key_arn": member.kms_key_arn if member else engine.kms_key_arn,
            "helper_role_arn": f"arn:{PARTITION}:iam::{account}:role/{stack}-Helper",
            "document_arn": (
                f"arn:{PARTITION}:ssm:{region}:{account}:document/{stack_twin.RESCUE_DOCUMENT}"
            ),
            "state_machine_name": stack,
            "topic_arn": f"arn:{PARTITION}:sns:{region}:{account}:{stack_twin.NOTIFY_TOPIC}",
        }

    return Authorizer(stack, ACCOUNT, REGION, values, locations.current)
