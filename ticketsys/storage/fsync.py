"""How much of what was acknowledged survives a power loss or a kernel crash (``FSYNC``).

A process that dies (``kill -9``, OOM, a crash) loses nothing acknowledged under any policy:
every change is in the kernel before its answer is sent. The policy decides what is on the
disk itself, in the spirit of Redis's ``appendfsync``.
"""

from __future__ import annotations

import enum


class FsyncPolicy(enum.StrEnum):
    ALWAYS = "always"  # an answer waits for an fsync covering its change (shared: group commit)
    EVERYSEC = "everysec"  # an fsync every second: a power loss loses up to the last second
    NO = "no"  # the log is synced only at checkpoints (every few MB), as the kernel writes back
