"""EC2 AttachVolume of a volume that is already attached: AWS refuses it with VolumeInUse ("The
specified EBS volume is attached to an instance. Ensure that the specified volume is detached
before attempting to attach it to an instance.", Error codes for the Amazon EC2 API,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). moto 5.2.5 moves
the volume to the new instance instead, which would let a phase attach a volume in use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def enforced() -> Iterator[None]:
    from unittest import mock

    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_block_store import EBSBackend

    original = EBSBackend.attach_volume

    def attach_volume(self: Any, volume_id: str, instance_id: str, *args: Any, **kw: Any) -> Any:
        volume = self.get_volume(volume_id)
        if volume.attachment is not None:
            raise EC2ClientError(
                "VolumeInUse",
                f"{volume_id} is already attached to an instance",
            )
        return original(self, volume_id, instance_id, *args, **kw)

    with mock.patch.object(EBSBackend, "attach_volume", attach_volume):
        yield
