from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ticketsys.storage.journal import FsyncPolicy, Journal, StoreCorrupt, StoreLocked, decode_log


def test_a_new_journal_recovers_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "s")
    recovered = journal.open()
    assert (recovered.snapshot, recovered.records) == (None, [])
    asyncio.run(journal.close())


def test_records_survive_reopening(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "s")
    journal.open()
    journal.append({"n": 1})
    journal.append({"n": 2})
    asyncio.run(journal.close())  # closed without compaction: records stay in the log
    again = Journal(tmp_path, "s")
    assert again.open().records == [{"n": 1}, {"n": 2}]
    asyncio.run(again.close())


def test_records_survive_a_process_that_never_closed(tmp_path: Path) -> None:
    code = (
        "import os, sys; from pathlib import Path; from ticketsys.storage.journal import Journal; "
        f"j = Journal(Path({str(tmp_path)!r}), 's'); j.open(); j.append({{'n': 7}}); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    journal = Journal(tmp_path, "s")
    assert journal.open().records == [{"n": 7}]
    asyncio.run(journal.close())


def test_compaction_replaces_logs_with_a_snapshot(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "s")
    journal.open()
    journal.append({"n": 1})
    journal.compact({"total": 1})
    journal.append({"n": 2})
    asyncio.run(journal.close())
    again = Journal(tmp_path, "s")
    recovered = again.open()
    assert recovered.snapshot == {"total": 1}
    assert recovered.records == [{"n": 2}]
    assert sorted(p.name for p in tmp_path.glob("s.*.log")) == ["s.000001.log"]
    asyncio.run(again.close())


def test_a_crash_mid_compaction_never_applies_a_record_twice(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "s")
    journal.open()
    journal.append({"n": 1})
    journal.compact({"total": 1})
    asyncio.run(journal.close())
    # As if the old log's deletion had not happened before the crash:
    (tmp_path / "s.000000.log").write_bytes(b'{"n":1}\n')
    again = Journal(tmp_path, "s")
    assert again.open().records == []
    asyncio.run(again.close())


def test_close_with_state_compacts(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "s")
    journal.open()
    journal.append({"n": 1})
    asyncio.run(journal.close({"total": 1}))
    again = Journal(tmp_path, "s")
    recovered = again.open()
    assert (recovered.snapshot, recovered.records) == ({"total": 1}, [])
    asyncio.run(again.close())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b'{"n":1}\n{"n":2}\n', [{"n": 1}, {"n": 2}], id="whole"),
        pytest.param(b'{"n":1}\n{"n":', [{"n": 1}], id="torn-tail"),
        pytest.param(b'{"n":1}\n{"n":2}', [{"n": 1}], id="unterminated-tail"),
        pytest.param(b'{"n":1}\n\x00\x00\x00\n', [{"n": 1}], id="zeroed-tail"),
        pytest.param(b"", [], id="empty"),
    ],
)
def test_decode_tolerates_only_a_damaged_tail(data: bytes, expected: list[object]) -> None:
    assert decode_log(data, "x") == expected


def test_damage_before_the_tail_is_an_error() -> None:
    with pytest.raises(StoreCorrupt, match="line 1"):
        decode_log(b'{"n":\n{"n":2}\n', "x")


def test_a_torn_tail_is_cut_so_the_next_record_is_whole(tmp_path: Path) -> None:
    (tmp_path / "s.000000.log").write_bytes(b'{"n":1}\n{"n":')
    journal = Journal(tmp_path, "s")
    assert journal.open().records == [{"n": 1}]
    journal.append({"n": 3})
    asyncio.run(journal.close())
    again = Journal(tmp_path, "s")
    assert again.open().records == [{"n": 1}, {"n": 3}]
    asyncio.run(again.close())


def test_one_owner_per_store(tmp_path: Path) -> None:
    first = Journal(tmp_path, "s")
    first.open()
    with pytest.raises(StoreLocked, match="another process"):
        Journal(tmp_path, "s").open()
    asyncio.run(first.close())
    second = Journal(tmp_path, "s")
    second.open()  # free again once closed
    asyncio.run(second.close())


def test_one_owner_across_processes(tmp_path: Path) -> None:
    first = Journal(tmp_path, "s")
    first.open()
    code = (
        "from pathlib import Path; from ticketsys.storage.journal import Journal; "
        f"Journal(Path({str(tmp_path)!r}), 's').open()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "StoreLocked" in result.stderr
    asyncio.run(first.close())


def test_always_groups_concurrent_commits_into_few_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    journal = Journal(tmp_path, "s", FsyncPolicy.ALWAYS)
    journal.open()
    monkeypatch.setattr(os, "fsync", counting_fsync)

    async def commit(n: int) -> None:
        journal.append({"n": n})
        await journal.durable()

    async def main() -> None:
        await asyncio.gather(*(commit(n) for n in range(100)))

    asyncio.run(main())
    assert 1 <= len(calls) <= 3  # 100 commits, a handful of fsyncs
    asyncio.run(journal.close())


def test_everysec_and_no_do_not_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for policy in (FsyncPolicy.EVERYSEC, FsyncPolicy.NO):
        journal = Journal(tmp_path / policy.value, "s", policy)
        journal.open()
        monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("fsync on the hot path"))
        journal.append({"n": 1})
        asyncio.run(journal.durable())
        monkeypatch.undo()
        asyncio.run(journal.close())
