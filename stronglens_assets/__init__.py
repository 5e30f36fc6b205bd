"""stronglens_assets: a Dagster asset graph reproducing a DR10 strong-lens finder study."""

__version__ = "0.1.0"
