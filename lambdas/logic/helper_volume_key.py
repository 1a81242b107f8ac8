"""The helper's root volume is encrypted with the account's EBS default key: check that key in
Preflight, before anything changes, as the target's root volume key is checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambdas.errors import Unsupported

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_kms import KMSClient

UNUSABLE_KEY_STATES = ("Disabled", "PendingDeletion", "PendingImport", "Unavailable")
# AWS's own EBS key: usable by every principal of the account through EC2 (its key policy).
AWS_MANAGED_EBS_KEY = "alias/aws/ebs"


def check_ebs_default_key(ec2: EC2Client, kms: KMSClient, mode: str, notes: list[str]) -> None:
    """mode: the planned mode; "offline" launches the helper now, "online" only on fallback
    (a note then, not a refusal)."""
    key_id = ec2.get_ebs_default_kms_key_id()["KmsKeyId"]
    if key_id.endswith(AWS_MANAGED_EBS_KEY):
        return
    try:
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except kms.exceptions.ClientError as error:
        notes.append(
            f"could not read the account's EBS default KMS key {key_id} "
            f"({error.response['Error']['Code']}); the helper's encrypted root volume needs "
            "that key's policy to allow this stack's LaunchHelper role"
        )
        return
    if metadata.get("KeyState") in UNUSABLE_KEY_STATES or not metadata.get("Enabled", True):
        message = (
            f"the account's EBS default KMS key {metadata.get('KeyId', key_id)} is "
            f"{metadata.get('KeyState')}, so the helper's encrypted root volume cannot be "
            "created. Enable the key, or set a usable default (aws ec2 "
            "modify-ebs-default-kms-key-id / reset-ebs-default-kms-key-id)"
        )
        if mode == "offline":
            raise Unsupported(f"InstanceId: {message}")
        notes.append(f"an offline fallback would fail: {message}")
