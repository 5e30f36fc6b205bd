"""The ``stronglens`` command.

``stronglens demo``
    Materialize every asset, every partition, into the persistent local Dagster instance
    (``$STRONGLENS_HOME/dagster_home``) on the environment's data source (by default the
    embedded mock DR10 survey), with progress and a closing summary.
``stronglens ui``
    Start ``dagster dev`` on the same instance, so the UI shows what the demo made.
``stronglens info``
    Print the resolved environment, storage location, footprint and partitions.
``stronglens sync --from DIR``
    Verify and upload local inputs into the configured S3 bucket (:mod:`stronglens_assets.sync`).
``stronglens paper --results DIR --out DIR [--compare DIR]``
    The paper's figures, tables and ``summary.json`` from a D06 results directory in the
    published layout (local or ``s3://``) (:mod:`stronglens_assets.paper_command`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from stronglens_assets.settings import SettingsError, load_settings


def _directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover


def command_demo(args: argparse.Namespace) -> int:
    settings = load_settings()
    from stronglens_assets.runner import ensure_instance_home

    ensure_instance_home(settings)
    import dagster as dg

    from stronglens_assets.definitions import build_definitions
    from stronglens_assets.runner import plan_stages, run_stages

    started = time.perf_counter()
    defs = build_definitions(settings)
    selection = [dg.AssetKey.from_user_string(k) for k in args.select] if args.select else None
    stages = plan_stages(defs, selection)
    print(
        f"stronglens demo: environment {settings.env!r}, storage {settings.storage_uri}, "
        f"Dagster instance {settings.dagster_home}"
    )
    with dg.DagsterInstance.get() as instance:
        records = run_stages(defs, stages, instance)
    elapsed = time.perf_counter() - started
    ok = bool(records) and all(r.success for r in records)
    print()
    print("Summary")
    assets_done = sorted({k.to_user_string() for r in records if r.success for k in r.asset_keys})
    for stage in stages:
        for key in stage.asset_keys:
            name = key.to_user_string()
            if name in assets_done:
                parts = (
                    ""
                    if stage.partition_keys is None
                    else f" ({len(stage.partition_keys)} partitions)"
                )
                print(f"  materialized {name}{parts}")
    print(
        f"  runs: {sum(r.success for r in records)} succeeded, "
        f"{sum(not r.success for r in records)} failed, {elapsed:.1f} s in all"
    )
    warned = [w for r in records for w in r.warnings]
    if warned:
        print(f"  warnings: {len(warned)} failed WARN-severity checks ({', '.join(warned)})")
    if settings.env == "local":
        print(
            f"  outputs: {settings.storage_root} ({_human_bytes(_directory_bytes(settings.home))} "
            f"under {settings.home})"
        )
    else:
        print(f"  outputs: {settings.storage_uri}")
    print(
        f"  see them in the UI: stronglens ui   (or DAGSTER_HOME={settings.dagster_home} "
        "dagster dev -w workspace.yaml)"
    )
    return 0 if ok else 1


def command_ui(args: argparse.Namespace) -> int:
    settings = load_settings()
    from stronglens_assets.runner import ensure_instance_home

    home = ensure_instance_home(settings)
    command = ["dagster", "dev", "-m", "stronglens_assets.definitions", *args.dagster_args]
    print(f"DAGSTER_HOME={home} {' '.join(command)}")
    os.execvp(command[0], command)
    return 0  # pragma: no cover


def command_info(args: argparse.Namespace) -> int:
    settings = load_settings()
    from stronglens_assets.project import Project

    project = Project.from_settings(settings)
    print(f"environment:     {settings.env}")
    print(f"storage:         {settings.storage_uri}")
    print(f"dagster home:    {settings.dagster_home}")
    print(f"config dir:      {settings.config_dir}")
    print(f"bricks:          {len(project.footprint.bricks)}")
    keys = project.healpix_partitions.get_partition_keys()
    print(f"sky partitions:  {len(keys)} (HEALPix NEST nside {project.footprint.partition_nside})")
    for key in keys:
        print(f"  {key}")
    return 0


def command_sync(args: argparse.Namespace) -> int:
    from stronglens_assets.sync import run_sync

    summary = run_sync(args.source, load_settings())
    return 0 if summary.ok else 1


def command_paper(args: argparse.Namespace) -> int:
    from stronglens_assets.paper_command import run_paper

    return run_paper(
        args.results,
        args.out,
        compare=args.compare,
        embedding=args.embedding,
        label=args.label,
        seed=args.seed,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stronglens",
        description=(
            "Dagster asset graph reproducing a CNN strong-lens finder study in DESI Legacy "
            "Survey DR10. Environment: STRONGLENS_ENV=local (default; embedded mock survey, "
            "outputs under $STRONGLENS_HOME, default ./.stronglens) or s3 "
            "(STRONGLENS_S3_BUCKET, STRONGLENS_S3_PREFIX, STRONGLENS_S3_ENDPOINT_URL)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="materialize every asset and partition into the persistent local instance",
        description=(
            "Materialize every asset, all partitions, in dependency order, into the Dagster "
            "instance in $STRONGLENS_HOME/dagster_home; print progress and a summary. "
            "Afterwards `stronglens ui` shows the materializations."
        ),
    )
    demo.add_argument(
        "--select",
        nargs="+",
        metavar="ASSET_KEY",
        help="only these asset keys (e.g. survey_footprint); their upstream must exist",
    )
    demo.set_defaults(handler=command_demo)
    ui = commands.add_parser(
        "ui",
        help="start `dagster dev` on the persistent instance",
        description="Start `dagster dev` on the instance in $STRONGLENS_HOME/dagster_home; "
        "further arguments (e.g. -p 3001) are passed to dagster dev.",
    )
    ui.set_defaults(handler=command_ui)
    info = commands.add_parser("info", help="show environment, storage, footprint, partitions")
    info.set_defaults(handler=command_info)
    sync = commands.add_parser(
        "sync",
        help="verify and upload local inputs (VAC, lenscat CSV, coadds, checkpoints) to S3",
        description="Upload the inputs under DIR (the seeds' layout: data/external/desi_dr1/, "
        "data/positives/, coadd_cache/<brick>/, checkpoints/<config>/) into the configured "
        "bucket (STRONGLENS_ENV=s3), verifying each file first and skipping unchanged ones.",
    )
    sync.add_argument("--from", dest="source", required=True, metavar="DIR")
    sync.set_defaults(handler=command_sync)
    paper = commands.add_parser(
        "paper",
        help="the paper's figures, tables and summary.json from a D06 results directory",
        description="Read a D06 results directory in the published layout (grid_<partition>/, "
        "ba_<variant>/, linear_probe/, tier_a_scoring/, poisson_diagnostics/; a local path or "
        "s3://bucket/prefix) and write figures/, tables/, summary.json and manifest.json under "
        "--out, saying what it skipped and why. paper/build --generated OUT makes the PDF.",
    )
    paper.add_argument("--results", required=True, metavar="DIR", help="results directory")
    paper.add_argument("--out", required=True, metavar="DIR", help="output directory")
    paper.add_argument(
        "--compare",
        metavar="DIR",
        help="a reference results directory (e.g. the published one): adds a table of "
        "reference vs this run",
    )
    paper.add_argument(
        "--embedding",
        choices=("auto", "umap", "pca"),
        default="auto",
        help="embedding map of Figure 2 (auto: UMAP when umap-learn is installed, else PCA)",
    )
    paper.add_argument("--label", help="name of the results in the comparison table")
    paper.add_argument("--seed", type=int, default=0, help="random state of the UMAP map")
    paper.set_defaults(handler=command_paper)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "ui":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dagster_args = extra
    try:
        return int(args.handler(args))
    except (SettingsError, ValueError) as exc:
        print(f"stronglens: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
