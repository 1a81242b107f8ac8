"""Disk handling: find the volume's block device, read its LVM and fstab, mount its root.

devices finds the disk, mounts probes and mounts its filesystems (with lvm and fstab),
proc runs the helper's tools. Design: docs/rescue-disks.md.
"""
