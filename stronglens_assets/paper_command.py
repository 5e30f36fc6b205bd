"""``stronglens paper``: the paper's figures, tables and summary from a D06 results directory.

The results directory is in the published layout (:mod:`stronglens_assets.science.reporting.
d06_results`): a local path, or ``s3://bucket/prefix`` read through the project's S3 object
store (endpoint and region from the usual ``STRONGLENS_S3_*`` settings, credentials from the
AWS chain). Everything is read and rendered in memory first; only then are ``figures/``,
``tables/``, ``summary.json``, ``manifest.json`` (and ``comparison.json``) replaced under
``--out`` (a malformed input therefore leaves earlier outputs untouched). Other files in
``--out`` are left alone.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TextIO

from stronglens_assets.science.reporting.d06_results import (
    D06Results,
    ResultsSource,
    read_d06_results,
)
from stronglens_assets.science.reporting.paper_outputs import PaperOutputs, render_paper

__all__ = ["MANAGED_OUTPUTS", "open_results", "run_paper", "write_outputs"]

MANAGED_OUTPUTS: tuple[str, ...] = (
    "figures",
    "tables",
    "summary.json",
    "manifest.json",
    "comparison.json",
)
"""Entries of ``--out`` that ``stronglens paper`` owns and replaces on every run."""


def open_results(location: str) -> str | ResultsSource:
    """A local directory as is; ``s3://bucket/prefix`` as a read-only S3 object store. A
    location holding our D06 result sets (``<name>.json`` pointers, e.g. the demo's
    ``.stronglens/storage/results/D06``) is read through their pointers, in the published
    layout (:class:`~stronglens_assets.resources.result_sets.ResultSetSource`)."""
    from stronglens_assets.resources.result_sets import ResultSetSource, holds_result_sets

    if not location.startswith("s3://"):
        if "://" in location:
            raise ValueError(f"{location!r}: only local directories and s3:// URIs are supported")
        from stronglens_assets.resources.object_store import LocalObjectStore

        path = Path(location).expanduser().resolve()
        if path.is_dir() and holds_result_sets(LocalObjectStore(path.parent), path.name):
            return ResultSetSource(LocalObjectStore(path.parent), path.name)
        return location
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{location!r} names no bucket")
    from stronglens_assets.resources.object_store import S3ObjectStore, make_s3_client
    from stronglens_assets.settings import load_settings

    settings = load_settings()
    client = make_s3_client(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
    parent, _, name = prefix.strip("/").rpartition("/")
    if name:
        store = S3ObjectStore(client, bucket, parent)
        if holds_result_sets(store, name):
            return ResultSetSource(store, name)
    return S3ObjectStore(client, bucket, prefix.strip("/"))


def write_outputs(out_dir: str | os.PathLike[str], outputs: PaperOutputs) -> list[Path]:
    """Write ``outputs`` under ``out_dir``, replacing the :data:`MANAGED_OUTPUTS` entries.

    The new files are written to a staging folder inside ``out_dir`` first; each managed entry
    is then swapped in by renames, so a failure while writing leaves the previous outputs.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".paper-staging-{os.getpid()}"
    retired = out / f".paper-previous-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(retired, ignore_errors=True)
    written = []
    try:
        for relative, data in sorted(outputs.files.items()):
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(out / relative)
        retired.mkdir()
        for name in MANAGED_OUTPUTS:
            if (out / name).exists():
                (out / name).rename(retired / name)
            if (staging / name).exists():
                (staging / name).rename(out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    return written


def _describe(results: D06Results, stream: TextIO) -> None:
    print(
        f"stronglens paper: read {len(results.inputs)} files from {results.location}", file=stream
    )
    if results.layout == "flat":
        print("  (flattened names <subdir>_<file>, as in the project's test data)", file=stream)
    published = [m for m in results.missing if not m.optional]
    optional = [m for m in results.missing if m.optional]
    if published:
        print(f"  absent from the published layout ({len(published)}):", file=stream)
        for item in published:
            print(f"    {item.key}: {item.description}", file=stream)
    if optional:
        print(f"  absent optional per-object inputs ({len(optional)}):", file=stream)
        for item in optional:
            print(f"    {item.key}: {item.description}", file=stream)


def run_paper(
    results: str,
    out: str,
    *,
    compare: str | None = None,
    embedding: str = "auto",
    label: str | None = None,
    seed: int = 0,
    stream: TextIO | None = None,
) -> int:
    """Read ``results`` (and ``compare``), render, write under ``out``; 0 on success.
    Progress goes to ``stream`` (default: standard output)."""
    stream = sys.stdout if stream is None else stream
    try:
        model = read_d06_results(open_results(results))
        reference = read_d06_results(open_results(compare)) if compare else None
    except FileNotFoundError as exc:
        print(f"stronglens paper: error: {exc}", file=sys.stderr)
        return 2
    if not model.inputs:
        print(
            f"stronglens paper: error: no D06 results in {model.location}: none of "
            f"{', '.join(m.key for m in model.missing)} (nor their flattened names "
            "<subdir>_<file>)",
            file=sys.stderr,
        )
        return 2
    _describe(model, stream)
    if reference is not None:
        print(f"  comparing with {reference.location} ({len(reference.inputs)} files)", file=stream)
    outputs = render_paper(
        model,
        reference=reference,
        embedding_method=embedding,
        seed=seed,
        label=label,
        reference_label=compare,
    )
    write_outputs(out, outputs)
    tables = sorted(p for p in outputs.files if p.startswith("tables/"))
    figures = sorted({p.rsplit(".", 1)[0] for p in outputs.files if p.startswith("figures/")})
    print(f"  wrote {len(outputs.files)} files under {Path(out).resolve()}:", file=stream)
    print(f"    summary.json, manifest.json; tables: {', '.join(tables)}", file=stream)
    print(f"    figures (pdf, png, tex): {', '.join(figures) or 'none'}", file=stream)
    if outputs.skipped:
        print(f"  skipped {len(outputs.skipped)}:", file=stream)
        for item in outputs.skipped:
            print(f"    {item.output}: {item.reason}", file=stream)
    failed = [c for c in outputs.checks if not c.ok]
    print(
        f"  published numbers recomputed from their counts: {len(outputs.checks) - len(failed)} "
        f"of {len(outputs.checks)} agree (manifest.json lists them)",
        file=stream,
    )
    for check in failed:
        print(
            f"  WARNING: {check.name}: file says {check.stated}, recomputed {check.recomputed}",
            file=stream,
        )
    print(f"  PDF: paper/build --generated {out}", file=stream)
    return 0
