"""EC2 AttachVolume and DetachVolume as AWS refuses them, which moto 5.2.5 does not:

- AttachVolume of a volume attached anywhere: VolumeInUse ("The specified EBS volume is
  attached to an instance. Ensure that the specified volume is detached before attempting to
  attach it to an instance."); moto moves the volume to the new instance instead.
- DetachVolume naming an instance the volume is not attached to: InvalidAttachment.NotFound;
  moto detaches it from its real instance (and drops the named instance's own mapping at the
  same device). A volume attached nowhere: IncorrectState, as AWS names it.

Source: Error codes for the Amazon EC2 API,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html. The phases ask
EC2 directly and read these refusals (lambdas/logic/volumes.py), so moto must give them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def enforced() -> Iterator[None]:
    from unittest import mock

    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_block_store import EBSBackend

    attach, detach = EBSBackend.attach_volume, EBSBackend.detach_volume

    def attach_volume(self: Any, volume_id: str, instance_id: str, *args: Any, **kw: Any) -> Any:
        attached = self.get_volume(volume_id).attachment
        if attached is not None:
            raise EC2ClientError(
                "VolumeInUse", f"{volume_id} is already attached to {attached.instance.id}"
            )
        return attach(self, volume_id, instance_id, *args, **kw)

    def detach_volume(self: Any, volume_id: str, instance_id: str, *args: Any, **kw: Any) -> Any:
        attached = self.get_volume(volume_id).attachment
        if attached is None:
            raise EC2ClientError(
                "IncorrectState", f"Volume '{volume_id}' is in the 'available' state."
            )
        if instance_id and attached.instance.id != instance_id:
            raise EC2ClientError(
                "InvalidAttachment.NotFound",
                f"The volume {volume_id} is not attached to instance {instance_id}",
            )
        return detach(self, volume_id, instance_id, *args, **kw)

    with (
        mock.patch.object(EBSBackend, "attach_volume", attach_volume),
        mock.patch.object(EBSBackend, "detach_volume", detach_volume),
    ):
        yield
