"""Local Dagster instances commit SQLite without a disk flush per event."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import DagsterInstance

import stronglens_assets  # noqa: F401  (importing the project sets the pragma)

# SQLite's codes for PRAGMA synchronous
OFF = 0


def test_a_local_instance_storage_commits_without_a_flush(tmp_path):
    instance = DagsterInstance.local_temp(str(tmp_path))
    try:
        with instance.run_storage.connect() as connection:
            assert connection.execute(sa.text("PRAGMA synchronous")).scalar() == OFF
            assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        instance.dispose()
