"""Disk handling: find the volume's block device, read its LVM and fstab, mount its root.

devices finds the disk, partitions reads its partitions, volumes the filesystems on them
(with lvm), root_probe finds the root (xfs_log), mounting mounts one filesystem, mounts
mounts the root and its homes (with fstab), proc runs the helper's tools.
Design: docs/rescue-disks.md.
"""
