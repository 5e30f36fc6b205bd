"""stronglens_assets: a Dagster asset graph reproducing a DR10 strong-lens finder study."""

from stronglens_assets.instance_storage import relax_sqlite_commit_sync

__version__ = "0.1.0"

# Every process that loads the project (CLI, run and step workers, tests) commits Dagster's
# local SQLite storage without a flush per event: see stronglens_assets.instance_storage.
relax_sqlite_commit_sync()
