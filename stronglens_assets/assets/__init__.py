"""Thin Dagster layer: one module per pipeline stage, each exposing ``build_assets(project)``."""
