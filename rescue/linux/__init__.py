"""Linux repair: give one public key to the right users of a mounted Linux volume.

users reads the volume's passwd and group, sshd_config what its sshd would read,
authorized_keys writes the key (inject_key), keys parses it, inroot keeps every path
inside the volume. Design: docs/sshd-config.md.
"""
