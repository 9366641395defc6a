"""One SQLite store file owned by this process: opening it safely, and group commit.

Group commit. Every change made during one event-loop tick joins one transaction, committed
by a callback at the start of the next tick; a change is acknowledged only once its
transaction has committed (``wait``). Commit writes the transaction's WAL frames to the
kernel, so from then on a dead process cannot lose it. How it reaches the disk is the
``FSYNC`` policy: ``always`` waits for an fsync of the log that covers the commit (one fsync,
in a thread, serves every commit made before it started); ``everysec`` checkpoints once a
second, which syncs the log first; ``no`` checkpoints only when the log grows past a few MB.
Checkpoints run in a thread on their own connection (``PASSIVE``: never blocking the writer),
at a lower CPU priority (nice +10), so neither they nor an fsync ever stall the event loop. A
passive checkpoint never empties a log that is written to all the time (SQLite starts the log
over only when a transaction begins after every frame is copied), so when the log in use passes
``LOG_RESTART_BYTES`` the thread first copies what it can while the changes go on (a few
passes, each copying what was committed during the one before), then asks the loop for a pause:
changes wait (``ready``) until the open transaction has committed, a thread at the loop's own
priority copies the frames left (``RESTART``), and the changes go on, writing the log from its
start again. The file is never cut while the store is open: cutting 32 MB took 23 ms here, and
SQLite would do it in the writer, on the event loop. The pause is two fdatasyncs and the copy
of what is left: 1-8 ms in Vacancy under load on this shared 2-core machine (20-80 ms before
the passes and the priority), once per ``LOG_RESTART_BYTES`` written, and the log file stays at
about that size until a clean close removes it.

If anything in a transaction fails (disk full, an I/O error), the whole transaction rolls
back and every change in it is answered ``StoreUnavailable``: nothing half-done is ever
acknowledged or left behind.

Opening. The file is locked with ``flock`` on the database file itself (not a pidfile that
could be deleted): one owner per store. Before SQLite reads anything, the file's header and
the WAL index a crashed owner left are read (see files.py); after SQLite's recovery the store
refuses to open, with one line naming the file and the problem, when it is foreign, of
another kind, cut short, lost its log, or moved elsewhere. A store that opens is marked
"in use" on disk until it is closed cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketsys.domain.errors import StoreRefused, StoreUnavailable
from ticketsys.storage.fsync import FsyncPolicy
from ticketsys.storage.sqlite import files, schema

log = logging.getLogger("ticketsys.storage")

# A checkpoint once a second bounds what `everysec` may lose; under `no`, only a log in use past
# this size is checkpointed (SQLite's own default: 1000 pages of 4 KiB).
CHECKPOINT_EVERY = 1.0
LOG_LIMIT_BYTES = 4 * 1024 * 1024
# A log in use past this size is started over in a pause of the writes (see the module
# docstring): it bounds the disk the log takes and the time recovery reads it after a crash.
LOG_RESTART_BYTES = 32 * 1024 * 1024
# The pause copies at most about this much of the log (see _restart_log), after at most this
# many passive checkpoints while the changes go on.
PAUSE_COPY_BYTES = 128 * 1024
CATCH_UP_PASSES = 8
# Pages cached by the writer: the hot ones (the stock row, the tips of the append-only
# tables, the key index) fit, and the cache is memory that does not grow with the sale.
CACHE_KIB = 4096

# SQLite's result codes, by what they mean for a change (sqlite3 exceptions carry them).
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_TRANSIENT = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


@dataclass(frozen=True, slots=True)
class Identity:
    kind: str
    store_id: str
    created_at: float
    capacity: int
    secret: bytes
    peer: str | None


# Told how long each commit and each fsync took: (database kind, "commit" or "fsync", seconds).
Timer = Callable[[str, str, float], None]


class Database:
    def __init__(
        self, path: Path, kind: str, fsync: FsyncPolicy = FsyncPolicy.EVERYSEC, *, timer: Timer | None = None
    ) -> None:
        assert kind in schema.KINDS
        self.path = path
        self.kind = kind
        self.fsync = fsync
        self.timer = timer
        self.identity: Identity | None = None
        self.damaged: str | None = None  # why the store stopped taking changes, if it did
        self._moving_to: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock_fd = -1
        self._log_fd = -1
        self._shm_fd = -1
        self._batch: asyncio.Future[int] | None = None
        self._commits = 0  # transactions committed
        self._synced = 0  # of those, how many an fsync of the log covers
        self._sync_task: asyncio.Task[None] | None = None
        self._checkpointer: threading.Thread | None = None
        self._restarter: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._maintenance: list[Callable[[], bool]] = []
        self._maintenance_task: asyncio.Task[None] | None = None
        self.log_restart_bytes = LOG_RESTART_BYTES
        self.restarts = 0  # logs started over in a pause of the writes
        self._frame_bytes = 0  # a log frame: a page and its header
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused: asyncio.Future[None] | None = None  # set while the log starts over
        self._quiet: threading.Event | None = None  # the thread's: no transaction is open

    # -- opening ------------------------------------------------------------------------------

    def open(self, capacity: int | None, *, moving_to: str | None = None) -> Identity:
        """Lock, check and open the store, creating it with ``capacity`` if it does not exist
        (``None``: it must exist). Raises ``StoreRefused`` with one line when the store cannot
        prove its state. ``moving_to``: a move to that URL may resume on a store it marked."""
        self._moving_to = moving_to
        if capacity is None and not self.path.exists():
            raise StoreRefused(f"{self.path}: no store here")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self.identity = self._open(capacity)
        except BaseException:
            self._close_files()
            raise
        return self.identity

    def _lock(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreRefused(
                f"{self.path}: another process owns this store (one process per store; "
                "use a shared store such as Redis to run several)"
            ) from None
        self._lock_fd = fd

    def _open(self, capacity: int | None) -> Identity:
        problem = files.check_database_file(self.path)
        if problem is not None:
            raise StoreRefused(f"{self.path} {problem}")
        new = self.path.stat().st_size == 0
        if new and capacity is None:
            raise StoreRefused(f"{self.path}: no store here (an empty file)")
        if new and files.wal_path(self.path).exists():
            raise StoreRefused(f"{self.path} is empty but its log {files.wal_path(self.path).name} is not")
        left_behind = files.read_wal_index(self.path)
        had_log = files.wal_path(self.path).exists()
        conn = self._conn = self._connect()
        with self._refusing():
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]  # runs recovery
        # Open until SQLite closes (closing any descriptor of it drops SQLite's locks on it).
        self._shm_fd = os.open(files.shm_path(self.path), os.O_RDONLY | os.O_CLOEXEC)
        recovered = files.read_wal_index_at(self._shm_fd)
        if new:
            assert capacity is not None
            with self._refusing(), self._transaction():
                schema.create(conn, self.kind, capacity, files.boot_id())
            log.info("created the %s store %s with %d tickets", self.kind, self.path, capacity)
        else:
            with self._refusing():
                schema.check_format(conn, application_id, self.path)
                identity = schema.read_identity(conn, self.path)
            self._check_identity(identity, had_log, left_behind, recovered)
        with self._refusing(), self._transaction():
            conn.execute("UPDATE identity SET clean = 0, boot_id = ?", (files.boot_id(),))
        with self._refusing():
            # The "in use" mark goes into the database file itself, not only the log: a log
            # that goes missing after a crash must be noticed at the next open.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._log_fd = os.open(files.wal_path(self.path), os.O_RDONLY | os.O_CLOEXEC)
            self._frame_bytes = conn.execute("PRAGMA page_size").fetchone()[0] + 24
            row = schema.read_identity(conn, self.path)
        return Identity(
            row["kind"], row["store_id"], row["created_at"], row["capacity"], row["secret"], row["peer"]
        )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreRefused(f"{self.path}: cannot use write-ahead logging (journal mode {mode})")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints are the thread's job
            # Never cut the log when it starts over: the writer would do it, on the event loop.
            conn.execute("PRAGMA journal_size_limit=-1")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            conn.execute("PRAGMA busy_timeout=0")  # never wait inside the event loop
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreRefused(f"{self.path}: {exc}") from None
        return conn

    def _check_identity(
        self,
        identity: dict[str, Any],
        had_log: bool,
        left_behind: files.WalIndex | None,
        recovered: files.WalIndex | None,
    ) -> None:
        if identity["kind"] != self.kind:
            raise StoreRefused(
                f"{self.path} is a {identity['kind']} store, not a {self.kind} store "
                f"(made by {schema.MADE_BY[identity['kind']]})"
            )
        if identity["moved_to"] and identity["moved_to"] != self._moving_to:
            raise StoreRefused(
                f"{self.path} was moved to {identity['moved_to']}: serve the sale from there "
                f"(STOCK_STORE={identity['moved_to']})"
            )
        if identity["clean"]:
            return
        log_file = files.wal_path(self.path)
        if not had_log:
            raise StoreRefused(
                f"{self.path} was not closed cleanly and its log {log_file.name} is missing: "
                "acknowledged changes may be lost (restore the log, or the store from a backup)"
            )
        lost = files.lost_frames(left_behind, recovered)
        if lost and identity["boot_id"] == files.boot_id():
            raise StoreRefused(
                f"{log_file} is cut short or damaged: {lost} frame(s) of committed changes cannot be "
                "read back (restore the store from a backup)"
            )
        log.warning("%s was not closed cleanly: recovered from its log", self.path)

    @contextlib.contextmanager
    def _refusing(self) -> Iterator[None]:
        """While opening, any SQLite error means the store cannot be trusted."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreRefused(f"{self.path}: {exc}") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A synchronous transaction, for opening and closing (outside group commit)."""
        conn = self._require()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def start(self) -> None:
        """Start the background work (inside the event loop, after ``open``)."""
        self._loop = asyncio.get_running_loop()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name=f"checkpoint {self.path.name}", daemon=True
        )
        self._checkpointer.start()
        # The log's restart, in a pause of the writes, runs at the loop's priority, not the
        # checkpoint thread's lower one: at nice 19 on a busy shared core the writes waited
        # 20-80 ms (Vacancy under load) for work that takes 1-5 ms. Its thread is made here, by
        # the loop's thread, whose nice it inherits (on Linux each thread has its own, inherited
        # at creation; raising it back needs privileges).
        self._restarter = ThreadPoolExecutor(1, thread_name_prefix=f"log restart {self.path.name}")
        self._restarter.submit(int).result()
        self._maintenance_task = asyncio.get_running_loop().create_task(self._maintain())

    def every_second(self, job: Callable[[], bool]) -> None:
        """Run ``job`` once a second while open. It runs on the event loop, so each call
        must be short; it returns True when more is left, and is called again next tick."""
        self._maintenance.append(job)

    # -- group commit -------------------------------------------------------------------------

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """A statement that changes nothing (it sees the changes of the open transaction)."""
        try:
            return self._require().execute(sql, params)
        except sqlite3.Error as exc:
            raise self._failure(exc, "read") from exc

    async def ready(self) -> None:
        """Wait while the log starts over. Every method that changes the store awaits
        this first, then makes its changes without awaiting anything in between."""
        while self._paused is not None:
            await asyncio.shield(self._paused)

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """A change, joining this tick's transaction. Acknowledge it only after ``wait``."""
        if self.damaged is not None:
            raise StoreUnavailable(self.damaged)
        conn = self._require()
        try:
            if self._batch is None:
                if self._paused is not None:
                    raise RuntimeError(f"{self.path}: a change made without awaiting ready()")
                conn.execute("BEGIN IMMEDIATE")
                loop = asyncio.get_running_loop()
                self._batch = loop.create_future()
                loop.call_soon(self._commit)
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            failure = self._failure(exc, "record the change")
            self._abort(failure)
            raise failure from exc

    def pending(self) -> asyncio.Future[int] | None:
        """The transaction this tick's changes are in (None: no change since the last commit)."""
        return self._batch

    async def wait(self, batch: asyncio.Future[int] | None) -> None:
        """Return once ``batch`` has committed (and, under ``always``, is on the disk)."""
        if batch is None:
            return
        number = await asyncio.shield(batch)
        if self.fsync is FsyncPolicy.ALWAYS:
            await self._durable(number)

    async def flush(self) -> None:
        """Wait for every change made so far."""
        await self.wait(self._batch)

    def _commit(self) -> None:
        batch, self._batch = self._batch, None
        if batch is None:  # aborted already
            return
        conn = self._require()
        began = time.perf_counter()
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            failure = self._failure(exc, "commit")
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            batch.set_exception(failure)
            batch.exception()  # retrieved: a batch may have no waiter left
            self._transaction_ended()
            return
        if self.timer is not None:
            self.timer(self.kind, "commit", time.perf_counter() - began)
        self._commits += 1
        batch.set_result(self._commits)
        self._transaction_ended()

    def _transaction_ended(self) -> None:
        """No transaction is open now: a pause waiting for that may begin."""
        if self._quiet is not None:
            self._quiet.set()

    def _abort(self, failure: StoreUnavailable) -> None:
        batch, self._batch = self._batch, None
        conn = self._require()
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if batch is not None:
            batch.set_exception(failure)
            batch.exception()
        self._transaction_ended()

    async def _durable(self, number: int) -> None:
        while self._synced < number:
            if self._sync_task is None:
                self._sync_task = asyncio.get_running_loop().create_task(self._sync())
            await asyncio.shield(self._sync_task)

    async def _sync(self) -> None:
        upto = self._commits
        began = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, self._log_fd)
            if self.timer is not None:
                self.timer(self.kind, "fsync", time.perf_counter() - began)
        except OSError as exc:
            # After a failed fsync the kernel may have dropped the dirty pages: what was
            # committed is not known to be on the disk, and a retry cannot tell (PostgreSQL's
            # "fsyncgate"). Stop taking changes; a restart recovers from what is on disk.
            self.damaged = f"{files.wal_path(self.path)}: fsync failed ({exc.strerror or exc})"
            log.critical("%s: refusing further changes", self.damaged)
            raise StoreUnavailable(self.damaged) from exc
        finally:
            self._sync_task = None
        self._synced = max(self._synced, upto)

    def _failure(self, exc: sqlite3.Error, doing: str) -> StoreUnavailable:
        """The engine's one error boundary: a SQLite error, by its result code."""
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary in _DAMAGED:
            self.damaged = f"{self.path} is damaged ({exc}): refusing further changes"
            log.critical("%s", self.damaged)
            return StoreUnavailable(self.damaged)
        if primary not in _TRANSIENT:
            log.error("%s: cannot %s: %s", self.path, doing, exc)
        return StoreUnavailable(f"cannot {doing}: {exc}")

    # -- background work ----------------------------------------------------------------------

    def _checkpoint_loop(self) -> None:
        # Nice +10 (per thread on Linux): on a shared core, the event loop preempts the copy
        # as soon as a request arrives; at nice 0 the loop waited 4-8 ms behind it, every
        # second. At nice 19 the copies got ~1.5 % of a core that two busy services share
        # (microservices) and fell behind Vacancy's writes: its log grew to 135 MB, and the
        # pause that starts it over (see _restart_log) had it all left to copy.
        thread = threading.get_native_id()  # relative: a process started at nice 15 may not go to 10
        os.setpriority(os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + 10, 19))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=0")
        done = 0
        try:
            while not self._stop.wait(CHECKPOINT_EVERY):
                commits = self._commits
                if commits == done:
                    continue
                if self.fsync is FsyncPolicy.NO and self._log_in_use() < LOG_LIMIT_BYTES:
                    continue
                copied = self._passive(conn)
                if copied is None:
                    continue
                done = commits
                self._synced = max(self._synced, commits)
                if self._log_in_use() > self.log_restart_bytes:
                    self._restart_log(conn, copied)
        finally:
            conn.close()

    def _passive(self, conn: sqlite3.Connection) -> int | None:
        """One passive checkpoint: the frames it copied, or None if it failed (logged)."""
        try:
            # PASSIVE: copies what it can without waiting for the writer; with
            # synchronous=NORMAL it fsyncs the log before and the database after.
            copied: int = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[2]
        except sqlite3.Error as exc:
            log.warning("%s: checkpoint failed: %s", self.path, exc)
            return None
        return copied

    def _log_in_use(self) -> int:
        """Bytes of the log since it last started over (its file may be longer)."""
        index = files.read_wal_index_at(self._shm_fd)
        return 0 if index is None else index.frames * self._frame_bytes

    def _restart_log(self, conn: sqlite3.Connection, copied: int) -> None:
        """Start the log over while the loop makes no change (in the checkpoint thread, after a
        passive checkpoint that copied ``copied`` frames)."""
        # The pause copies what the last passive checkpoint left: the frames committed while
        # it ran, many on a store whose commits touch scattered pages (Vacancy's key index).
        # Passes while the changes go on copy less each time, until what is left is a
        # moment's worth.
        for _ in range(CATCH_UP_PASSES):
            if self._log_in_use() - copied * self._frame_bytes <= PAUSE_COPY_BYTES:
                break
            passed = self._passive(conn)
            if passed is None:
                break
            copied = passed
        assert self._restarter is not None  # made by start(), before this thread runs
        self._restarter.submit(self._restart_paused, conn).result()

    def _restart_paused(self, conn: sqlite3.Connection) -> None:
        """The pause, and the restart in it (in the restarter's thread, at normal priority)."""
        loop = self._loop
        assert loop is not None  # set by start(), before any checkpoint
        quiet = threading.Event()
        try:
            loop.call_soon_threadsafe(self._pause, quiet)
        except RuntimeError:  # the loop has closed
            return
        try:
            while not quiet.wait(0.1):  # the open transaction commits within a tick
                if self._stop.is_set():
                    return
            # The loop's reads are single statements: wait out the one that may be running.
            conn.execute("PRAGMA busy_timeout=100")
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            except sqlite3.Error as exc:
                log.warning("%s: starting the log over failed: %s", self.path, exc)
            else:
                if not busy:
                    self.restarts += 1
                    self._synced = max(self._synced, self._commits)  # synced by the checkpoint
            finally:
                conn.execute("PRAGMA busy_timeout=0")
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._resume)

    def _pause(self, quiet: threading.Event) -> None:
        """In the loop: hold new changes, and say so once no transaction is open."""
        assert self._loop is not None
        if self._paused is None:
            self._paused = self._loop.create_future()
        self._quiet = quiet
        if self._batch is None:
            quiet.set()

    def _resume(self) -> None:
        paused, self._paused, self._quiet = self._paused, None, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            busy = True
            while busy:  # each round is short; requests are served between rounds
                await self.ready()
                busy = False
                for job in self._maintenance:
                    try:
                        busy = bool(job()) or busy
                    except StoreUnavailable as exc:
                        log.warning("%s: background work failed: %s", self.path, exc)
                if busy:
                    await asyncio.sleep(0)

    # -- closing ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Wait for the last commit, checkpoint everything, mark the store closed cleanly."""
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance_task
            self._maintenance_task = None
        if self._batch is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.flush()
        if self._sync_task is not None:
            with contextlib.suppress(StoreUnavailable):
                await asyncio.shield(self._sync_task)
        self._stop.set()
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.join)
            self._checkpointer = None
        if self._restarter is not None:
            self._restarter.shutdown()
            self._restarter = None
        self.close_now()

    def close_now(self) -> None:
        """Close a store with no background work running (``start`` never called, or
        stopped): mark it closed cleanly, checkpoint, release the files."""
        try:
            if self._conn is not None and self.damaged is None:
                with self._transaction() as conn:
                    conn.execute("UPDATE identity SET clean = 1")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: could not close cleanly: {exc}") from exc
        finally:
            self._close_files()

    def mark_moved(self, url: str) -> None:
        """Record that the sale now lives at ``url``: no service opens this store again."""
        with self._transaction() as conn:
            conn.execute("UPDATE identity SET moved_to = ?", (url,))

    @property
    def connection(self) -> sqlite3.Connection:
        """For operators' tools (check, export): the open store's connection."""
        return self._require()

    def _close_files(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the last connection: SQLite checkpoints and removes the log
            self._conn = None
        # After SQLite has closed: closing a descriptor of its files drops its POSIX locks.
        for fd in (self._shm_fd, self._log_fd, self._lock_fd):  # the lock last
            if fd >= 0:
                os.close(fd)
        self._shm_fd = self._log_fd = self._lock_fd = -1

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"{self.path} is not open")
        return self._conn

    def __repr__(self) -> str:
        return (
            f"<Database {self.path} kind={self.kind} fsync={self.fsync} commits={self._commits} "
            f"synced={self._synced}{' DAMAGED' if self.damaged else ''}>"
        )
