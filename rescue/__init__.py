"""The rescue agent: finds a detached root volume, mounts it and gives access back.

It runs on the helper instance (or, online, on the instance itself) with nothing but a
Python 3.7+ standard library, so every module here imports only the standard library.
"""

from __future__ import annotations


class RescueError(Exception):
    """A failure the agent explains: the message names the cause and what to do."""
