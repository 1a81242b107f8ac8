"""AssumeRole as AWS allows it: only a principal the role's trust policy names may assume it.

moto 5.2.5 hands out credentials for any role to any caller; AWS evaluates the role's trust
policy (its resource-based policy) against the caller: "The trust policy ... specifies which
principals can assume the role ... If the principal is not allowed, the call fails with
AccessDenied" (STS API reference, AssumeRole:
https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html). A principal of
another account also needs sts:AssumeRole in its own identity policy (local/iam.py checks the
functions'). Evaluated here: Allow statements whose Action matches sts:AssumeRole, whose
Principal names the caller (its role ARN, its account as ID or `:root`, or `*`), and whose
conditions hold on aws:PrincipalArn and aws:PrincipalAccount.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from local.iam import _as_list, _condition_holds, _matches


def _principal_named(principal: Any, caller_arn: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    account = caller_arn.split(":")[4]
    named = _as_list(principal.get("AWS", []))
    return any(p in ("*", account, caller_arn, f"arn:aws:iam::{account}:root") for p in named)


def allows(policy: dict[str, Any], caller_arn: str) -> bool:
    """Whether the trust policy lets this role (by ARN) assume the role it belongs to."""
    context = {
        "aws:PrincipalArn": (caller_arn,),
        "aws:PrincipalAccount": (caller_arn.split(":")[4],),
    }
    allowed = False
    for statement in policy.get("Statement", []):
        if not _matches(_as_list(statement.get("Action", [])), "sts:AssumeRole", False):
            continue
        if not _principal_named(statement.get("Principal"), caller_arn):
            continue
        if not all(
            _condition_holds(operator, key, _as_list(wanted), context)
            for operator, keys in statement.get("Condition", {}).items()
            for key, wanted in keys.items()
        ):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


def trust_policy(role_arn: str) -> dict[str, Any] | None:
    """The role's trust policy from moto's IAM, None when there is no such role."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return None
    name = parts[5].rsplit("/", 1)[-1]
    role = next((r for r in iam_backends[parts[4]]["aws"].roles.values() if r.name == name), None)
    if role is None:
        return None
    document = role.assume_role_policy_document
    parsed: dict[str, Any] = json.loads(document) if isinstance(document, str) else document
    return parsed


def check(role_arn: str, caller_arn: str) -> None:
    """Raise AWS's AccessDenied when the caller may not assume the role."""
    policy = trust_policy(role_arn)
    if policy is not None and allows(policy, caller_arn):
        return
    raise ClientError(
        {
            "Error": {
                "Code": "AccessDenied",
                "Message": f"User: {caller_arn} is not authorized to perform: sts:AssumeRole "
                f"on resource: {role_arn}",
            },
            # moto's interpreter reads the request ID of a Task's failed call.
            "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": str(uuid.uuid4())},
        },
        "AssumeRole",
    )


def caller_role(client: Any, location_account: str, function_role: str) -> str:
    """The role a call is made as: an assumed role's (its credentials say which), else the
    calling function's own role in its account."""
    from moto.iam.models import get_account_id_from, iam_backends

    credentials = client._request_signer._credentials
    key = getattr(credentials, "access_key", "") if credentials else ""
    account = get_account_id_from(key)
    found = iam_backends[account]["aws"].access_keys.get(key)
    role_arn = getattr(found, "role_arn", None)
    return str(role_arn) if role_arn else f"arn:aws:iam::{location_account}:role/{function_role}"
