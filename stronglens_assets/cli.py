"""The ``stronglens`` command.

``stronglens demo [--select KEY ...] [--partition KEY ...] [--force]``
    Materialize every asset (or the selected ones), every partition (or the given ones), into
    the environment's Dagster instance (:attr:`Settings.dagster_home`) on the environment's
    data source (by default the embedded mock DR10 survey), skipping what Dagster reports up
    to date (:mod:`stronglens_assets.runner`), with progress, a log file and a summary.
``stronglens ui [ARGS]``
    ``dagster dev -w workspace.yaml`` on the same instance, started through this interpreter;
    every argument goes to ``dagster dev``.
``stronglens info``
    Print the resolved environment, home, storage, the instance's last run, footprint and
    partitions.
``stronglens sync --from DIR [--check]``
    Verify local inputs and upload them into the configured S3 bucket
    (:mod:`stronglens_assets.sync`).
``stronglens footprint --survey-bricks FILE --out FILE [--cells KEY ...] [--urls FILE]``
    A footprint file of the bricks covered in g, r and z of a Legacy Surveys survey-bricks
    summary (:mod:`stronglens_assets.science.catalogs.footprint`).
``stronglens paper --results DIR --out DIR [--compare DIR]``
    The paper's figures, tables and ``summary.json`` from a D06 results directory in the
    published layout (local or ``s3://``) (:mod:`stronglens_assets.paper_command`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from stronglens_assets.settings import Settings, SettingsError, load_settings


def _directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover


def _console_script(name: str) -> str:
    """How to call console script ``name`` of the running environment, as a user types it:
    ``.venv/bin/<name>`` relative to the working directory when inside it."""
    script = Path(sys.executable).parent / name
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def ui_hint(settings: Settings) -> list[str]:
    """The commands that open the UI on this instance, working as printed from here."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.environment_variables().items())
    prefix = f"{prefix} " if prefix else ""
    workspace = workspace_file(settings.dagster_home)
    return [
        f"{prefix}{_console_script('stronglens')} ui",
        f"{prefix}DAGSTER_HOME={shlex.quote(str(settings.dagster_home))} "
        f"{_console_script('dagster')} dev -w {shlex.quote(_relative(workspace))}",
    ]


def command_demo(args: argparse.Namespace) -> int:
    settings = load_settings()
    from stronglens_assets.runner import ensure_instance_home

    ensure_instance_home(settings)
    import dagster as dg

    from stronglens_assets.definitions import build_definitions
    from stronglens_assets.runner import parse_asset_keys, plan_stages, run_stages

    started = time.perf_counter()
    defs = build_definitions(settings)
    selection = parse_asset_keys(args.select, defs) if args.select else None
    stages = plan_stages(defs, selection, args.partition)
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"demo-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    print(
        f"stronglens demo: environment {settings.env!r}, storage {settings.storage_uri}, "
        f"Dagster instance {settings.dagster_home}"
    )
    log_file.write_text(f"stronglens demo, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    print(f"  log (every message and traceback): {log_file}")
    if args.force:
        print("  --force: materializing everything selected, up to date or not")
    with dg.DagsterInstance.get() as instance:
        records = run_stages(
            defs, stages, instance, force=args.force, log_file=log_file, environment=settings.env
        )
    elapsed = time.perf_counter() - started
    ok = bool(records) and all(r.success for r in records)
    print()
    print("Summary")
    for stage in stages:
        for key in stage.asset_keys:
            ran = sum(r.success and key in r.asset_keys for r in records)
            fresh = sum(key in r.up_to_date for r in records)
            name = key.to_user_string()
            of = (
                ""
                if stage.partition_keys is None
                else f" ({{}} of {len(stage.partition_keys)} partitions)"
            )
            if ran:
                print(f"  materialized {name}{of.format(ran)}")
            if fresh:
                print(f"  up to date   {name}{of.format(fresh)}")
    runs = [r for r in records if not r.skipped]
    print(
        f"  runs: {sum(r.success for r in runs)} succeeded, "
        f"{sum(not r.success for r in runs)} failed, "
        f"{sum(r.skipped for r in records)} skipped as up to date, {elapsed:.1f} s in all"
    )
    warned = [w for r in records for w in r.warnings]
    if warned:
        print(f"  warnings: {len(warned)} failed WARN-severity checks ({', '.join(warned)})")
    for record in records:
        if not record.success:
            where = f" [{record.partition_key}]" if record.partition_key else ""
            print(f"  FAILED{where}: {record.error}")
            print(f"  the full error and traceback: {log_file}")
    if settings.env == "local":
        print(
            f"  outputs: {settings.storage_root} ({_human_bytes(_directory_bytes(settings.home))} "
            f"under {settings.home})"
        )
    else:
        print(f"  outputs: {settings.storage_uri}")
    ui, dev = ui_hint(settings)
    print(f"  see them in the UI: {ui}")
    print(f"    (the same as: {dev})")
    return 0 if ok else 1


#: Name of the code location, the same under ``stronglens ui`` and ``dagster dev -w
#: workspace.yaml`` (schedule and sensor state are stored per location name).
CODE_LOCATION_NAME = "stronglens_assets"


def workspace_file(dagster_home: Path) -> Path:
    """The checkout's ``workspace.yaml``, or (installed without a checkout) the same workspace
    written into ``dagster_home``: either way one code location, :data:`CODE_LOCATION_NAME`."""
    from stronglens_assets.settings import PROJECT_ROOT

    checkout = PROJECT_ROOT / "workspace.yaml"
    if checkout.is_file():
        return checkout
    generated = dagster_home / "workspace.yaml"
    generated.write_text(
        "load_from:\n  - python_module:\n      module_name: stronglens_assets.definitions\n"
        f"      attribute: defs\n      location_name: {CODE_LOCATION_NAME}\n"
    )
    return generated


def ui_command(dagster_home: Path, dagster_args: Sequence[str]) -> list[str]:
    """``dagster dev`` on the code location, started through this interpreter (the venv's
    console scripts need not be on ``PATH``); ``dagster_args`` go to ``dagster dev`` as given."""
    workspace = workspace_file(dagster_home)
    return [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), *dagster_args]


def command_ui(args: argparse.Namespace) -> int:
    settings = load_settings()
    from stronglens_assets.runner import ensure_instance_home

    home = ensure_instance_home(settings)
    import dagster as dg

    from stronglens_assets.runner import clear_dead_runs

    with dg.DagsterInstance.from_config(str(home)) as instance:
        # runs whose process was killed would hold their pool and queue slots forever
        clear_dead_runs(instance, print, single_machine=settings.env == "local")
    command = ui_command(home, args.dagster_args)
    print(f"DAGSTER_HOME={home} {shlex.join(command)}", flush=True)
    os.execv(command[0], command)
    return 0  # pragma: no cover


def last_run_summary(dagster_home: Path) -> str:
    """What the instance in ``dagster_home`` holds: its latest run (time, status, what it
    materialized), or that there is none."""
    if not (dagster_home / "dagster.yaml").is_file():
        return "none (no Dagster instance here yet: run `stronglens demo`)"
    import datetime

    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        from stronglens_assets.runner import OBSERVATION_TAG

        records = [
            r
            for r in instance.get_run_records(limit=50)
            if OBSERVATION_TAG not in r.dagster_run.tags
        ]
        if not records:
            return "none (the instance holds no run yet: run `stronglens demo`)"
        run = records[0].dagster_run
        ended = records[0].end_time or records[0].start_time or records[0].create_timestamp
        when = datetime.datetime.fromtimestamp(ended, tz=datetime.UTC)
        selection = ", ".join(k.to_user_string() for k in sorted(run.asset_selection or ()))
        count = instance.get_runs_count()
        return (
            f"{when:%Y-%m-%d %H:%M} UTC, {run.status.value.lower()} "
            f"({selection or run.job_name}); {count} run(s) in all"
        )


def command_info(args: argparse.Namespace) -> int:
    settings = load_settings()
    from stronglens_assets.project import Project

    project = Project.from_settings(settings)
    print(f"environment:     {settings.env} (profile {settings.profile})")
    home_note = (
        ""
        if "STRONGLENS_HOME" in settings.environment_variables()
        else (" (default ./.stronglens of the current directory; set STRONGLENS_HOME elsewhere)")
    )
    print(f"home:            {settings.home}{home_note}")
    print(f"storage:         {settings.storage_uri}")
    print(f"dagster home:    {settings.dagster_home}")
    print(f"last run:        {last_run_summary(settings.dagster_home)}")
    print(f"config dir:      {settings.config_dir}")
    print(f"bricks:          {len(project.footprint.bricks)}")
    keys = project.healpix_partitions.get_partition_keys()
    print(f"sky partitions:  {len(keys)} (HEALPix NEST nside {project.footprint.partition_nside})")
    for key in keys[:20]:
        print(f"  {key}")
    if len(keys) > 20:
        print(f"  ... and {len(keys) - 20} more")
    return 0


def command_sync(args: argparse.Namespace) -> int:
    from stronglens_assets.sync import run_sync

    summary = run_sync(args.source, load_settings(), check=args.check)
    return 0 if summary.ok else 1


def download_urls(bricks: Sequence[str]) -> list[str]:
    """Legacy Surveys DR10 south URLs of what the graph reads for ``bricks``: the sweep 10.1
    boxes overlapping them and their grz image, invvar and psfsize coadds."""
    from stronglens_assets.resources.coadds import DR10_SOUTH_URL, dr10_coadd_path
    from stronglens_assets.resources.survey import sweep_files_for_bricks
    from stronglens_assets.science.imaging.cutouts import BANDS, PRODUCTS

    urls = [f"{DR10_SOUTH_URL}/sweep/10.1/{name}" for name in sweep_files_for_bricks(bricks)]
    for brick in sorted(bricks):
        for product in PRODUCTS:
            for band in BANDS:
                urls.append(f"{DR10_SOUTH_URL}/{dr10_coadd_path(brick, product, band)}")
    return urls


def command_footprint(args: argparse.Namespace) -> int:
    from stronglens_assets.partitions import healpix_partition_key
    from stronglens_assets.resources.object_store import LocalObjectStore
    from stronglens_assets.runner import nearest_names
    from stronglens_assets.science.catalogs.bricks import bricks_table
    from stronglens_assets.science.catalogs.footprint import (
        bricks_with_coverage,
        footprint_yaml,
        read_survey_bricks,
    )
    from stronglens_assets.science.catalogs.healpix import healpix_pixel

    table = read_survey_bricks(args.survey_bricks)
    bricks = bricks_with_coverage(table, min_exposures=args.min_exposures)
    print(
        f"{args.survey_bricks}: {len(table)} bricks, {len(bricks)} with >= {args.min_exposures} "
        "exposure(s) in each of g, r, z"
    )
    geometry = bricks_table(bricks)
    pixels = healpix_pixel(geometry["ra"], geometry["dec"], args.nside)
    keys = [healpix_partition_key(args.nside, int(p)) for p in pixels]
    if args.cells:
        present = sorted(set(keys))
        for cell in args.cells:
            if cell not in present:
                raise ValueError(
                    f"--cells {cell!r} holds no covered brick at nside {args.nside}"
                    f"{nearest_names(cell, present)}"
                )
        chosen = [(b, k) for b, k in zip(bricks, keys, strict=True) if k in args.cells]
        bricks, keys = [b for b, _ in chosen], [k for _, k in chosen]
        print(f"  {len(bricks)} of them in {', '.join(args.cells)}")
    if not bricks:
        raise ValueError(f"{args.survey_bricks}: no brick is covered in g, r and z")
    note = (
        f"Generated by `stronglens footprint` from {Path(args.survey_bricks).name}: bricks with\n"
        f">= {args.min_exposures} exposure(s) in each of g, r, z"
        + (f", in {', '.join(args.cells)}" if args.cells else "")
        + f" ({len(bricks)} bricks).\nUse it with STRONGLENS_FOOTPRINT=<this file>."
    )
    out = Path(args.out).expanduser().resolve()
    text = footprint_yaml(bricks, args.nside, note)
    LocalObjectStore(out.parent).write_bytes(out.name, text.encode())
    print(
        f"wrote {out}: {len(bricks)} bricks in {len(set(keys))} HEALPix partition(s) "
        f"(nside {args.nside})"
    )
    if args.urls:
        urls = download_urls(bricks)
        target = Path(args.urls).expanduser().resolve()
        LocalObjectStore(target.parent).write_bytes(
            target.name, "".join(u + "\n" for u in urls).encode()
        )
        print(
            f"wrote {target}: {len(urls)} URLs (sweep 10.1 boxes and grz coadds of these bricks "
            f"on the Legacy Surveys portal); e.g. wget -x -nH --cut-dirs=4 -P DIR -i {args.urls}"
        )
    return 0


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
    demo.add_argument(
        "--partition",
        nargs="+",
        metavar="KEY",
        help="only these partition keys of partitioned assets (e.g. hpx-nest16-1105, poisson); "
        "unpartitioned assets of the selection still run when not up to date",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="materialize even what is up to date (by default an asset partition whose code "
        "version, configs and input data versions are unchanged since its last successful "
        "materialization is skipped)",
    )
    demo.set_defaults(handler=command_demo)
    ui = commands.add_parser(
        "ui",
        help="start `dagster dev` on the persistent instance",
        description="Start `dagster dev` on the instance in $STRONGLENS_HOME/dagster_home; "
        "every further argument goes to dagster dev as given (-h/--host, -p/--port; "
        "`stronglens ui --help` shows dagster dev's options).",
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
    sync.add_argument(
        "--check",
        action="store_true",
        help="only verify the files and show where they would go: no bucket, no credentials "
        "(any STRONGLENS_ENV)",
    )
    sync.set_defaults(handler=command_sync)
    footprint = commands.add_parser(
        "footprint",
        help="write a footprint file (STRONGLENS_FOOTPRINT) from a survey-bricks summary",
        description="Select the bricks of a Legacy Surveys survey-bricks summary (e.g. DR10's "
        "south/survey-bricks-dr10-south.fits.gz) with exposures in each of g, r and z, "
        "optionally only those of some HEALPix partitions, and write them as a footprint "
        "config for STRONGLENS_FOOTPRINT.",
    )
    footprint.add_argument(
        "--survey-bricks", required=True, metavar="FILE", help="survey-bricks-*.fits[.gz]"
    )
    footprint.add_argument("--out", required=True, metavar="FILE", help="footprint YAML to write")
    footprint.add_argument(
        "--cells",
        nargs="+",
        metavar="KEY",
        help="only the bricks of these HEALPix partitions (hpx-nest<nside>-<pixel>)",
    )
    footprint.add_argument(
        "--nside", type=int, default=16, help="HEALPix partition nside (default 16)"
    )
    footprint.add_argument(
        "--urls",
        metavar="FILE",
        help="also write the Legacy Surveys URLs of the sweeps and coadds these bricks need",
    )
    footprint.add_argument(
        "--min-exposures",
        type=int,
        default=1,
        help="median exposures a brick needs in each of g, r, z (default 1)",
    )
    footprint.set_defaults(handler=command_footprint)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["ui"]:
        # everything after `ui` belongs to `dagster dev` (-h is its --host, -p its --port)
        args = argparse.Namespace(handler=command_ui, dagster_args=argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (SettingsError, ValueError) as exc:
        print(f"stronglens: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
