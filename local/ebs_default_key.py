"""EC2 GetEbsDefaultKmsKeyId, which moto 5.2.5 lacks: the account's EBS default key, or AWS's
managed aws/ebs alias when none was set (as AWS answers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def served() -> Iterator[None]:
    from unittest import mock

    from moto.core.responses import ActionResult
    from moto.ec2.responses import EC2Response

    def get_ebs_default_kms_key_id(self: Any) -> ActionResult:
        self.error_on_dryrun()
        backend = self.ec2_backend
        key = backend.default_kms_key_id or (
            f"arn:aws:kms:{backend.region_name}:{backend.account_id}:alias/aws/ebs"
        )
        return ActionResult({"KmsKeyId": key})

    with mock.patch.object(
        EC2Response, "get_ebs_default_kms_key_id", get_ebs_default_kms_key_id, create=True
    ):
        yield
