"""An append-only journal of JSON records with snapshots: the embedded durable store.

Durability. Every ``append`` is an ``os.write`` to a file opened with ``O_APPEND`` before the
change it records is acknowledged, so a process that dies (``kill -9``, OOM, a crash) loses
nothing it acknowledged: the bytes are in the kernel. What survives a power loss or a kernel
crash depends on the fsync policy, in the spirit of Redis's ``appendfsync``:

- ``always``: ``durable()`` waits for an fsync covering the record (group commit: one fsync in
  a worker thread serves every record appended before it started);
- ``everysec`` (default): a background fsync once a second; a power loss can lose the last
  second of acknowledged changes;
- ``no``: the kernel writes back when it likes (Linux: within ~30 s).

Layout in the directory, for a journal named N: ``N.lock`` (held with ``flock`` while open: one
owner per store), ``N.snapshot`` (the state up to a generation, replaced atomically), and
``N.<generation>.log`` files. Compaction opens generation g+1, writes a snapshot saying "logs
before g+1 are included", then deletes the older logs; a crash at any point leaves a
snapshot plus exactly the logs it does not include.

A torn last line (power loss mid-write) is dropped at open; a damaged line elsewhere stops
the open with an error rather than silently losing records.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("ticketsys.storage")


class FsyncPolicy(enum.StrEnum):
    ALWAYS = "always"
    EVERYSEC = "everysec"
    NO = "no"


class StoreLocked(RuntimeError):
    """Another process owns this store."""


class StoreCorrupt(RuntimeError):
    """A record other than the last cannot be read."""


@dataclass(frozen=True, slots=True)
class Recovered:
    snapshot: dict[str, Any] | None
    records: list[dict[str, Any]]


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def decode_log(data: bytes, name: str) -> list[dict[str, Any]]:
    """Records of one log file; a torn final line (no newline, or unparsable) is dropped."""
    lines = data.split(b"\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        is_last = number >= len(lines) - 1
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            if is_last:
                log.warning("%s: dropping a torn final record (%d bytes)", name, len(line))
                break
            raise StoreCorrupt(f"{name}: line {number} is damaged") from None
        if number == len(lines):  # no trailing newline: the write did not finish
            log.warning("%s: dropping an unterminated final record", name)
            break
        records.append(record)
    return records


class Journal:
    def __init__(self, directory: Path, name: str, fsync: FsyncPolicy = FsyncPolicy.EVERYSEC) -> None:
        self.directory = directory
        self.name = name
        self.fsync = fsync
        self.generation = 0
        self._fd = -1
        self._lock_fd = -1
        self._written = 0  # appends so far
        self._synced = 0  # appends covered by a finished fsync
        self._sync_task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None

    # -- open / recover ----------------------------------------------------------------------

    def open(self) -> Recovered:
        """Take the lock, read the snapshot and the logs it does not include, open for append."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        snapshot = self._read_snapshot()
        first = int(snapshot["generation"]) if snapshot else 0
        records: list[dict[str, Any]] = []
        generations = sorted(g for g in self._log_generations() if g >= first)
        for generation in generations:
            path = self._log_path(generation)
            records += decode_log(path.read_bytes(), path.name)
        self.generation = generations[-1] if generations else first
        self._open_log(self.generation, truncate_torn=True)
        return Recovered(snapshot["state"] if snapshot else None, records)

    def _lock(self) -> None:
        path = self.directory / f"{self.name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(
                f"{path} is held by another process: one process owns a store "
                "(use a shared store such as Redis to run several)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._lock_fd = fd

    def _read_snapshot(self) -> dict[str, Any] | None:
        path = self.directory / f"{self.name}.snapshot"
        if not path.exists():
            return None
        try:
            snapshot = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            raise StoreCorrupt(f"{path} is damaged") from None
        if not isinstance(snapshot, dict) or "generation" not in snapshot or "state" not in snapshot:
            raise StoreCorrupt(f"{path} is not a snapshot")
        return snapshot

    def _log_generations(self) -> Iterator[int]:
        prefix, suffix = f"{self.name}.", ".log"
        for path in self.directory.glob(f"{self.name}.*.log"):
            middle = path.name[len(prefix) : -len(suffix)]
            if middle.isdigit():
                yield int(middle)

    def _log_path(self, generation: int) -> Path:
        return self.directory / f"{self.name}.{generation:06d}.log"

    def _open_log(self, generation: int, *, truncate_torn: bool = False) -> None:
        path = self._log_path(generation)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if truncate_torn:
            # Cut a torn tail so the next record starts on a line of its own.
            size = os.fstat(fd).st_size
            data = path.read_bytes() if size else b""
            keep = data.rfind(b"\n") + 1
            if keep != size:
                os.ftruncate(fd, keep)
        self._fd = fd
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- writing -----------------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` to the kernel. Once this returns, a process death cannot lose it."""
        data = encode(record)
        written = os.write(self._fd, data)
        if written != len(data):  # a regular file short-writes only when the disk is full
            raise OSError(f"short write to {self.name} journal ({written} of {len(data)} bytes)")
        self._written += 1

    async def durable(self) -> None:
        """With ``always``: return once an fsync covers every record appended so far."""
        if self.fsync is not FsyncPolicy.ALWAYS:
            return
        target = self._written
        while self._synced < target:
            if self._sync_task is None:
                self._sync_task = asyncio.get_running_loop().create_task(self._sync())
            await asyncio.shield(self._sync_task)

    async def _sync(self) -> None:
        upto = self._written
        try:
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, self._fd)
            self._synced = upto
        finally:
            self._sync_task = None

    def start_background_sync(self) -> None:
        """With ``everysec``: fsync once a second while open (call inside the event loop)."""
        if self.fsync is FsyncPolicy.EVERYSEC and self._timer_task is None:
            self._timer_task = asyncio.get_running_loop().create_task(self._every_second())

    async def _every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._synced < self._written:
                await self._sync()

    # -- compaction and close ------------------------------------------------------------------

    def compact(self, state: dict[str, Any]) -> None:
        """Record ``state`` (everything appended so far) as the snapshot; drop the old logs."""
        old = self.generation
        os.fsync(self._fd)
        os.close(self._fd)
        self.generation = old + 1
        self._open_log(self.generation)
        path = self.directory / f"{self.name}.snapshot"
        tmp = path.with_suffix(".snapshot.tmp")
        with open(tmp, "wb") as file:
            file.write(orjson.dumps({"generation": self.generation, "state": state}))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        self._fsync_directory()
        for generation in self._log_generations():
            if generation < self.generation:
                with contextlib.suppress(FileNotFoundError):
                    self._log_path(generation).unlink()
        self._synced = self._written

    async def close(self, state: dict[str, Any] | None = None) -> None:
        """Stop the background sync, compact into ``state`` if given, fsync, release the lock."""
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
            self._timer_task = None
        if self._sync_task is not None:
            await asyncio.shield(self._sync_task)
        if self._fd >= 0:
            if state is not None:
                self.compact(state)
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = -1

    def __repr__(self) -> str:
        return (
            f"<Journal {self.directory / self.name} gen={self.generation} fsync={self.fsync} "
            f"written={self._written} synced={self._synced}>"
        )
