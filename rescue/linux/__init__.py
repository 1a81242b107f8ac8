"""Linux repair: give one public key to the right users of a mounted Linux volume.

users reads the volume's passwd and group, sshd_config what its sshd would read and
sshd_key_login what that means for each user's key, authorized_keys gives the key to the
right users (inject_key), key_paths checks each file as sshd would, key_writer writes it
(selinux labels it), key_lines reads key files' lines, keys parses the key, inroot keeps
every path inside the volume. Design: docs/sshd-config.md.
"""
