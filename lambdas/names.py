"""The names every layer must agree on: tag keys, parameter paths, documents, statuses.

The phase functions, the stack (its IAM policies and triggers), the local engine, the
`reset-access` command and the acceptance run each refer to these names; a copy that drifted
would break a run only in AWS. The Lambda asset ships only `lambdas/`, so the one copy lives
here and the other layers import it. Where a name is AWS's own, docs/runbook.md gives the
source.

Also here: the execution's name as every resource name accepts it (`resource_name`), which the
handlers tag with and name their resources after.
"""

from __future__ import annotations

import hashlib
import re

# The CloudFormation stack; the command and the acceptance run find the workflow by its outputs.
STACK_NAME = "ResetAccess"
# The alarm rule starts executions only for alarms named with this prefix (context alarmPrefix).
DEFAULT_ALARM_PREFIX = "ResetAccess-"

# The fleet workflow (a second state machine) and, in each member account and Region, the role
# the fleet's account assumes to start, describe and stop ResetAccess executions there.
MEMBER_ROLE_NAME = f"{STACK_NAME}-FleetMember"
# The accounts and Regions a fleet may reach, when the stack was given them (CDK context
# memberAccounts, memberRegions): comma-separated, in the fleet's first phase's environment.
MEMBER_ACCOUNTS_VARIABLE = "MEMBER_ACCOUNTS"
MEMBER_REGIONS_VARIABLE = "MEMBER_REGIONS"
# The fleet's error count (MaxErrors) lives in the lock table under this key prefix.
FLEET_COUNTER_PREFIX = "fleet#"

# Cleanup finds what an execution created by EXECUTION_TAG; IAM lets it touch only tagged ones.
EXECUTION_TAG = "ResetAccess:Execution"
MANAGED_TAG = "ResetAccess:Managed"
# Mode replace-root: the copy of the root volume names its source; the old root volume, kept
# after the replacement, names the execution that replaced it.
COPY_OF_TAG = "ResetAccess:CopyOf"
REPLACED_BY_TAG = "ResetAccess:ReplacedBy"
# An alarm starts a reset only on an instance that carries this tag with the value "true".
OPT_IN_TAG = "ResetAccess:AutoRecover"
# What `make acceptance` tags its throwaway resources with, to find them again.
ACCEPTANCE_TAG = "ResetAccess:Acceptance"

# AWS's own paths (docs/runbook.md), kept so that existing habits and scripts still work.
KEY_PARAMETERS = "/ec2rl/openssh"
PASSWORD_PARAMETERS = "/EC2Rescue/Passwords"  # noqa: S105 - a path, not a password
# Our own parameters: each instance's last result, and the keys not yet published.
OWN_PARAMETERS = "/reset-access"
# Canonical publishes Ubuntu 24.04 AMI IDs under this public path, one per architecture.
UBUNTU_AMI_PARAMETERS = "/aws/service/canonical/ubuntu/server/24.04/stable/current"


def fleet_machine_name(stack_name: str) -> str:
    """The fleet state machine: named after its stack, so two copies fit one account."""
    return f"{stack_name}Fleet"


FLEET_STATE_MACHINE_NAME = fleet_machine_name(STACK_NAME)


def member_role_name(region: str) -> str:
    """The member stack's role in one Region (IAM names are per account, stacks per Region)."""
    return f"{MEMBER_ROLE_NAME}-{region}"


def key_parameter(instance_id: str) -> str:
    """Where the new SSH private key is published (SecureString), as AWS's runbook does."""
    return f"{KEY_PARAMETERS}/{instance_id}/key"


def password_parameter(instance_id: str) -> str:
    """Where AWS's Windows tool puts the new Administrator password (SecureString)."""
    return f"{PASSWORD_PARAMETERS}/{instance_id}"


def result_parameter(instance_id: str) -> str:
    return f"{OWN_PARAMETERS}/{instance_id}/result"


def pending_parameter(instance_id: str, execution: str) -> str:
    """The private key between CreateKey and PublishResult, one per execution."""
    return f"{OWN_PARAMETERS}/{instance_id}/pending/{execution}"


def ubuntu_ami_parameter(arch: str) -> str:
    """The helper's image for `arch` (amd64 or arm64)."""
    return f"{UBUNTU_AMI_PARAMETERS}/{arch}/hvm/ebs-gp3/ami-id"


# AWS's document that resets a running Windows password into password_parameter (docs/runbook.md).
WINDOWS_TOOL_DOCUMENT = "AWSSupport-RunEC2RescueForWindowsTool"
WINDOWS_TOOL_COMMAND = "ResetAccess"

# The lock table's key (an instance ID, or an execution's in-flight marks) and TTL attribute.
LOCK_KEY = "InstanceId"
LOCK_EXPIRY = "ExpiresAt"


def in_flight_key(execution: str) -> str:
    """The lock table's item of an execution's in-flight marks (lambdas/logic/inflight.py)."""
    return f"in-flight/{execution}"


def breaker_key(instance_id: str) -> str:
    """The lock table's item of an instance's circuit breaker (lambdas/logic/breaker.py)."""
    return f"breaker/{instance_id}"


# Execution statuses after which the janitor restores and cleans up (the EventBridge rule).
JANITOR_STATUSES = ("ABORTED", "TIMED_OUT", "FAILED")

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9_.-]")


def resource_name(execution: str) -> str:
    """The execution's name as SSM parameter and security group names accept it.

    Step Functions allows in an execution name what those refuse (`+ = @ ( ) ! '` and any
    non-ASCII letter). A safe name stays as it is; any other gets its unsafe characters replaced
    and a digest of the original, so two names that differ only there stay two names. Each
    handler sees the execution under this form, so the pending key parameter, the security
    group and the tags all use one name, and cleanup finds by tag what the other phases created.
    """
    if SAFE_NAME.fullmatch(execution):
        return execution
    digest = hashlib.sha256(execution.encode()).hexdigest()[:10]
    return f"{UNSAFE_CHARACTER.sub('-', execution)[:69]}-{digest}"


# StartExecution's `name`: 1-80 characters and none of whitespace, brackets, wildcards, these
# specials, control characters, U+FFFE/U+FFFF or surrogates (Step Functions API reference,
# StartExecution, Request Parameters).
EXECUTION_NAME_REFUSED = re.compile(
    r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]"
)


def execution_name_problem(name: str) -> str | None:
    """Why Step Functions would refuse this execution name, or None if it accepts it."""
    if not 1 <= len(name) <= 80:
        return f"{len(name)} characters; Step Functions takes 1 to 80"
    found = EXECUTION_NAME_REFUSED.search(name)
    if found:
        return (
            f"{found.group()!r} is not allowed (no whitespace, brackets, wildcards, "
            '" # % \\ ^ | ~ ` $ & , ; : / or control characters)'
        )
    return None
