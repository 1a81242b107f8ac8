"""The new key pair: made here, private half straight into a SecureString, only the public half
travels through the workflow."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from lambdas import timestamps
from lambdas.errors import UnexpectedState
from lambdas.names import pending_parameter
from lambdas.plan import Plan
from lambdas.records import KeyRecord

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# ssh-keygen's default since OpenSSH 8.0: 128-bit security (NIST SP 800-57), 3x faster than 4096.
RSA_KEY_BITS = 3072


def public_key_fingerprint(line: str) -> str:
    """SHA256 fingerprint as ssh-keygen -l prints it."""
    blob = base64.b64decode(line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def generate_key_pair(key_type: str, comment: str) -> tuple[bytes, str]:
    """(OpenSSH private key bytes, public key line)."""
    private_key: Any = (
        ed25519.Ed25519PrivateKey.generate()
        if key_type == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    )
    private = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, f"{public} {comment}"


def create_key(ssm: SSMClient, plan: Plan, kms_key_arn: str) -> KeyRecord:
    if plan.get("Platform") == "windows":
        # Windows gets a new Administrator password, made on the instance; no key pair here.
        return {"PublicKey": None, "Fingerprint": None, "Generated": False}
    public_key = plan.get("PublicKey")
    if public_key:
        return {
            "PublicKey": public_key,
            "Fingerprint": public_key_fingerprint(public_key),
            "Generated": False,
        }
    name = pending_parameter(plan["InstanceId"], plan["Execution"])
    comment = f"reset-access@{plan['InstanceId']}"
    private, public = generate_key_pair(plan["KeyType"], comment)
    # Overwrite: a retry after a lost response replaces the key nobody has seen yet.
    ssm.put_parameter(
        Name=name,
        Value=private.decode(),
        Type="SecureString",
        KeyId=kms_key_arn,
        Overwrite=True,
        Description=f"ResetAccess key for {plan['InstanceId']}, not yet in the volume",
    )
    return {
        "PublicKey": public,
        "Fingerprint": public_key_fingerprint(public),
        "Generated": True,
        "PendingParameter": name,
    }


def publish_key(ssm: SSMClient, plan: Plan, kms_key_arn: str) -> bool:
    """Move the pending key to the parameter users know, now that it is in the volume."""
    key_parameter = plan.get("KeyParameter")
    if plan.get("PublicKey") or not key_parameter:
        return False
    pending = pending_parameter(plan["InstanceId"], plan["Execution"])
    try:
        value = ssm.get_parameter(Name=pending, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        if _published_since(ssm, key_parameter, timestamps.epoch(plan["StartedAt"])):
            return True  # a retried publish: the first attempt moved it already
        raise UnexpectedState(
            f"the new key's pending parameter {pending} is gone and {key_parameter} was "
            "not written by this run; the key in the volume has no private half to give"
        ) from None
    ssm.put_parameter(
        Name=key_parameter,
        Value=value,
        Type="SecureString",
        KeyId=kms_key_arn,
        Overwrite=True,
        Description=f"SSH private key added to {plan['InstanceId']} by ResetAccess",
    )
    ssm.delete_parameter(Name=pending)
    return True


def _published_since(ssm: SSMClient, name: str, started: float) -> bool:
    # DescribeParameters: the write time without the right to read any published key's value.
    found = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
    )["Parameters"]
    return bool(found) and found[0]["LastModifiedDate"].timestamp() >= started
