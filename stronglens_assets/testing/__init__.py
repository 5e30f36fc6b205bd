"""Synthetic inputs shared by the test suite and the benchmarks (never used by the pipeline).

One home for generators of test data (synthetic sweeps, random arc parameters, ...) so that
``stronglens_assets_tests`` and ``bench/`` draw the same inputs without importing each other.
"""
