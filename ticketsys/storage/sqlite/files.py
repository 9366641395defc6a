"""What the files of a SQLite store say before SQLite reads them: sans-IO parsers of the
database header and of the WAL index, and the checks the store runs with them.

Why look ourselves. SQLite treats the first unreadable frame of its write-ahead log as the end
of the log, which is right after a power loss (that frame was never made durable) but silently
drops acknowledged transactions when the log was cut short or damaged on a machine that kept
running. The WAL index (``-shm``) that a killed process leaves behind still says how many frames
it had committed; on the same boot its word is good, so reading it before SQLite opens the
store, and again after SQLite's recovery, tells a lost tail from a clean one. After a reboot the
index is not trusted (it is never synced) and SQLite's own rule stands.

The database header gives the page size and, when valid, the number of pages: a file shorter
than that was cut short.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100
WAL_INDEX_VERSION = 3007000
_WAL_INDEX_HEADER = struct.Struct("=IIIBBHIIIIIIII")  # native order, as SQLite maps it: 48 bytes


@dataclass(frozen=True, slots=True)
class DatabaseHeader:
    page_size: int
    pages: int | None  # None: the in-header size is not valid (an older writer)


def parse_database_header(data: bytes) -> DatabaseHeader | None:
    """The header of a SQLite database file, or None if ``data`` is not one."""
    if len(data) < HEADER_SIZE or not data.startswith(SQLITE_MAGIC):
        return None
    (raw_page_size,) = struct.unpack_from(">H", data, 16)
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    change_counter, pages = struct.unpack_from(">II", data, 24)
    (valid_for,) = struct.unpack_from(">I", data, 92)
    return DatabaseHeader(page_size, pages if pages and valid_for == change_counter else None)


@dataclass(frozen=True, slots=True)
class WalIndex:
    frames: int  # mxFrame: frames of committed transactions in the current log
    salts: tuple[int, int]


def parse_wal_index(data: bytes) -> WalIndex | None:
    """The WAL index header, or None when it cannot be trusted: SQLite writes two copies and
    a reader may rely on it only if both agree and it is initialised."""
    size = _WAL_INDEX_HEADER.size
    if len(data) < 2 * size or data[:size] != data[size : 2 * size]:
        return None
    version, _, _, is_init, _, _, frames, _, _, _, salt1, salt2, _, _ = _WAL_INDEX_HEADER.unpack_from(data)
    if version != WAL_INDEX_VERSION or not is_init:
        return None
    return WalIndex(frames, (salt1, salt2))


def read_wal_index(database: Path) -> WalIndex | None:
    """The WAL index a crashed owner left, read before SQLite opens the store. Never call it
    while this process has the store open: closing a file drops every POSIX lock the process
    holds on it, SQLite's too (see ``read_wal_index_at``)."""
    try:
        fd = os.open(shm_path(database), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return read_wal_index_at(fd)
    finally:
        os.close(fd)


def read_wal_index_at(fd: int) -> WalIndex | None:
    """The WAL index through ``fd``, a descriptor of the ``-shm`` file that stays open until
    SQLite has closed the store. Closing any descriptor of that file would release SQLite's
    locks on it, for the whole process: the next process to open the store (``ticketsys
    orders export``, ``check``) would take itself for the first, rebuild the index under the
    owner's feet, and the owner would die of SIGBUS on its shrunken mapping."""
    return parse_wal_index(os.pread(fd, 2 * _WAL_INDEX_HEADER.size, 0))


def check_database_file(path: Path) -> str | None:
    """What is wrong with the database file, read as bytes, or None. A missing or empty file
    is fine (a new store); so is a file longer than its header says."""
    try:
        size = path.stat().st_size
        if size == 0:
            return None
        with open(path, "rb") as file:
            header = parse_database_header(file.read(HEADER_SIZE))
    except FileNotFoundError:
        return None
    if header is None:
        return "is not a SQLite database (a foreign or damaged file)"
    if header.pages is not None and size < header.pages * header.page_size and not wal_path(path).exists():
        # With a log present, pages past the end may still be in it (a checkpoint cut short).
        return f"is cut short: {size} bytes of the {header.pages * header.page_size} its header names"
    return None


def lost_frames(before: WalIndex | None, after: WalIndex | None) -> int:
    """How many committed frames recovery could not read back, given the WAL index a killed
    process left (``before``) and the one SQLite rebuilt from the log (``after``)."""
    if before is None or before.frames == 0:
        return 0
    if after is None or after.salts != before.salts:
        return before.frames
    return max(0, before.frames - after.frames)


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def shm_path(database: Path) -> Path:
    """The WAL index (SQLite's shared memory)."""
    return database.with_name(database.name + "-shm")


def disk_bytes(database: Path) -> int:
    """What the store takes on disk: the database, its write-ahead log and its index."""
    total = 0
    for path in (database, wal_path(database), shm_path(database)):
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def boot_id() -> str:
    """Changes at every boot of the machine (Linux); empty where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
