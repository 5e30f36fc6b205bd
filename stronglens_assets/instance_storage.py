"""SQLite commit durability of local Dagster instances.

Dagster's SQLite run and event-log storages (WAL journaling, SQLite's default
``synchronous=FULL``, a new connection per operation) flush the disk several times for every
event they store: measured with ``strace -f -e trace=fdatasync`` on
``test_runner.py -k second_run_skips`` (two small runs), 3,055 ``fdatasync`` calls, 2,370 with
``synchronous=NORMAL`` (the WAL is checkpointed and re-created at every connection) and none with
``synchronous=OFF``. A demo stores tens of thousands of events, so on a disk with slow flushes (a
cloud VM's network block device) the instance, not the science, would set the wall time.

Local instances therefore run with ``synchronous=OFF``: SQLite keeps every commit atomic if a
process crashes (a killed run or step loses nothing committed); only an operating-system crash or
power loss can lose the last commits or damage the instance's database, whose content (run
history) is re-made by re-running. Results in storage keep their own flush-and-rename writes
(:mod:`stronglens_assets.resources.object_store`). Production instances use PostgreSQL, which
this does not touch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["SQLITE_SYNCHRONOUS", "relax_sqlite_commit_sync"]

#: PRAGMA synchronous of every SQLite connection this process opens (WAL: no flush per commit).
SQLITE_SYNCHRONOUS = "OFF"


def _set_synchronous(dbapi_connection: Any, _connection_record: Any) -> None:
    if type(dbapi_connection).__module__.split(".")[0] not in {"sqlite3", "pysqlite2"}:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    finally:
        cursor.close()


def relax_sqlite_commit_sync() -> None:
    """Make every SQLite connection SQLAlchemy opens in this process use
    ``PRAGMA synchronous=NORMAL`` (idempotent; other databases are untouched)."""
    if not event.contains(Engine, "connect", _set_synchronous):
        event.listen(Engine, "connect", _set_synchronous)
