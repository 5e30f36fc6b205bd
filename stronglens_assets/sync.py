"""``stronglens sync --from DIR``: upload local inputs into the configured bucket, in the seeds'
layout (what the seeds' ``scripts/sync_data_to_s3.sh`` did), verifying each file first.

``DIR`` mirrors the seeds' local layout; recognised files and where they go:

* ``data/external/desi_dr1/desi-sl-vac-v1.fits`` -> the DESI VAC key that ``desi_dr1_vac``
  reads, in the DR10 bucket;
* ``data/positives/<name>.csv`` (a lenscat CSV override) -> ``<prefix>/data/positives/<name>``;
* ``[dr10/]coadd_cache/<brick>/legacysurvey-<brick>-*.fits.fz``, or the Legacy Surveys layout
  ``[dr10/][south/]coadd/<RRR>/<brick>/...`` -> ``<coadd prefix>/<brick>/`` in the DR10 bucket
  (``STRONGLENS_DR10_COADD_PREFIX``);
* ``[dr10/][south/]sweep/10.1/sweep-<box>.fits`` (sweep 10.1, 5 x 5 deg boxes) ->
  ``<sweep prefix>/sweep-<box>.fits`` in the DR10 bucket (``STRONGLENS_DR10_SWEEP_PREFIX``),
  where ``dr10_sweep`` reads them;
* ``checkpoints/<config>/<file>.pt`` (a published checkpoint) ->
  ``<prefix>/pretrained/<config>/<file>.pt``.

Every file is verified before the bucket is contacted: the VAC must read as a DESI VAC
(schema), a coadd must open as FITS, a sweep must hold a binary table with the sweep columns
``dr10_sweep`` needs, a CSV must parse as a lenscat catalog, a checkpoint must load with
``torch.load(..., weights_only=True)`` into a state dict of tensors. A file that fails is not
uploaded and named in the summary (exit status 1). ``check=True`` (``sync --check``) stops
there: no bucket, no credentials, no network. A directory with no recognised file is an error
(exit status 1) that names the layout expected. Files whose SHA-256 equals the one stored with
the object (``x-amz-meta-sha256``) are skipped. Other files are listed as not recognised.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.hashing import sha256_file
from stronglens_assets.settings import Settings

_BRICK = r"[0-9]{4}[mp][0-9]{3}"
_COADD = re.compile(
    rf"^(?:(?:dr10/)?coadd_cache/|(?:dr10/)?(?:south/)?coadd/[0-9]{{3}}/)(?P<brick>{_BRICK})/"
    rf"(?P<file>legacysurvey-(?P=brick)-[a-z0-9]+-[a-z0-9]+\.fits\.fz)$"
)
_VAC = re.compile(r"^data/external/desi_dr1/desi-sl-vac-v1\.fits$")
_CSV = re.compile(r"^data/positives/(?P<name>[A-Za-z0-9_.\-]+\.csv)$")
_SWEEP = re.compile(
    r"^(?:dr10/)?(?:south/)?sweep/10\.1/"
    r"(?P<file>sweep-[0-9]{3}[mp][0-9]{3}-[0-9]{3}[mp][0-9]{3}\.fits)$"
)
_CHECKPOINT = re.compile(
    r"^checkpoints/(?P<config>[A-Za-z0-9_.\-]+)/(?P<file>[A-Za-z0-9_.\-]+\.pt)$"
)


class SyncError(StronglensError, ValueError):
    """``sync`` cannot start (wrong environment, missing directory, unusable bucket)."""


@dataclass(frozen=True)
class Planned:
    """One recognised local file and its destination."""

    path: Path
    relative: str
    kind: str  # vac | lenscat_csv | coadd | sweep | checkpoint
    bucket: str
    key: str


@dataclass
class SyncSummary:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    unrecognised: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected


def plan_uploads(source: Path, settings: Settings) -> tuple[list[Planned], list[str]]:
    """Recognised files under ``source`` with their destinations, and the unrecognised ones."""
    prefix = settings.s3_prefix.strip("/")
    bucket = settings.s3_bucket or "$STRONGLENS_S3_BUCKET"
    dr10_bucket = settings.dr10_bucket or bucket
    coadd_prefix = settings.dr10_coadd_prefix.strip("/")
    sweep_prefix = settings.dr10_sweep_prefix.strip("/")
    from stronglens_assets.resources.survey import DR10SurveyResource

    vac_key = str(DR10SurveyResource.model_fields["desi_vac_key"].default)  # as desi_dr1_vac reads
    planned: list[Planned] = []
    unknown: list[str] = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        if path.name.startswith("."):
            continue
        if _VAC.match(relative):
            planned.append(Planned(path, relative, "vac", dr10_bucket, vac_key))
        elif match := _COADD.match(relative):
            key = f"{coadd_prefix}/{match['brick']}/{match['file']}"
            planned.append(Planned(path, relative, "coadd", dr10_bucket, key))
        elif match := _SWEEP.match(relative):
            key = f"{sweep_prefix}/{match['file']}".lstrip("/")
            planned.append(Planned(path, relative, "sweep", dr10_bucket, key))
        elif match := _CSV.match(relative):
            key = f"{prefix}/data/positives/{match['name']}".lstrip("/")
            planned.append(Planned(path, relative, "lenscat_csv", bucket, key))
        elif match := _CHECKPOINT.match(relative):
            # published weights, under pretrained/: never the keys model_checkpoint writes
            # (checkpoints/<config>/{best,last}.pt); a model config imports them with
            # `pretrained: s3://<bucket>/<prefix>/pretrained/<config>/<file>`
            key = f"{prefix}/pretrained/{match['config']}/{match['file']}".lstrip("/")
            planned.append(Planned(path, relative, "checkpoint", bucket, key))
        else:
            unknown.append(relative)
    return planned, unknown


def _verify_checkpoint(path: Path) -> None:
    """The checkpoint loads with ``weights_only=True`` into a state dict, bare or wrapped, as
    ``model_checkpoint``'s ``pretrained:`` import reads it."""
    from stronglens_assets.science.learning.models import read_state_dict

    read_state_dict(path.read_bytes(), path.name)


def _verify_sweep(path: Path) -> None:
    """The sweep holds a binary table with every column ``dr10_sweep`` reads (header only: a
    sweep file is gigabytes)."""
    from stronglens_assets.science.catalogs.lenscat import CatalogSchemaError
    from stronglens_assets.science.catalogs.sweeps import SWEEP_COLUMNS, first_binary_table
    from stronglens_assets.science.core.columns import require_columns

    with first_binary_table(path, str(path)) as hdu:
        names = [name.upper() for name in hdu.columns.names]
    require_columns(names, SWEEP_COLUMNS, str(path), error=CatalogSchemaError)


def verify_file(item: Planned) -> None:
    """Raise with the reason when ``item`` is not a valid file of its kind."""
    if item.kind == "vac":
        from stronglens_assets.science.catalogs.desi_vac import read_desi_vac

        read_desi_vac(item.path)
    elif item.kind == "coadd":
        from stronglens_assets.science.imaging.cutouts import validate_fits

        validate_fits(item.path)
    elif item.kind == "lenscat_csv":
        from stronglens_assets.science.catalogs.lenscat import read_lenscat_csv

        read_lenscat_csv(item.path)
    elif item.kind == "sweep":
        _verify_sweep(item.path)
    elif item.kind == "checkpoint":
        _verify_checkpoint(item.path)
    else:  # pragma: no cover
        raise ValueError(f"unknown kind {item.kind}")


def _remote_sha256(client: Any, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("Metadata", {}).get("sha256")


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else round(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


#: What ``sync`` recognises, for the message when it recognises nothing.
EXPECTED_LAYOUT = (
    "data/external/desi_dr1/desi-sl-vac-v1.fits, data/positives/<name>.csv, "
    "[dr10/]coadd_cache/<brick>/legacysurvey-<brick>-<product>-<band>.fits.fz (or "
    "[dr10/][south/]coadd/<RRR>/<brick>/...), "
    "[dr10/][south/]sweep/10.1/sweep-<box>.fits, checkpoints/<config>/<file>.pt"
)


class NothingToSyncError(SyncError):
    """The directory holds no file ``sync`` recognises."""


def sync_directory(
    source: Path,
    settings: Settings,
    client: Any | None,
    out: TextIO | None = None,
    verify: Callable[[Planned], None] = verify_file,
    connect: Callable[[], Any] | None = None,
) -> SyncSummary:
    """Verify every recognised file under ``source``, then upload the good ones (unless
    ``client`` and ``connect`` are both ``None``: the offline check); see the module
    docstring. ``connect`` makes the client once verification is done."""
    out = sys.stdout if out is None else out
    planned, unknown = plan_uploads(source, settings)
    if not planned:
        listed = f" ({len(unknown)} other file(s), e.g. {unknown[0]})" if unknown else " (empty)"
        raise NothingToSyncError(
            f"nothing to sync under {source}{listed}: expected the seeds' layout, {EXPECTED_LAYOUT}"
        )
    summary = SyncSummary(unrecognised=unknown)
    total = len(planned)
    print(f"verifying {total} file(s) under {source}", file=out)
    good: list[Planned] = []
    for number, item in enumerate(planned, start=1):
        try:
            verify(item)
        except Exception as exc:  # any failure to read the file rejects it
            summary.rejected[item.relative] = f"{type(exc).__name__}: {exc}"
            status = "REJECTED"
        else:
            good.append(item)
            status = "ok"
        destination = f"s3://{item.bucket}/{item.key}"
        print(f"{_bar(number, total)} {status:9s} {item.relative} -> {destination}", file=out)
    offline = client is None and connect is None
    if client is None and connect is not None and good:
        client = connect()
    if client is not None:
        print(f"uploading {len(good)} verified file(s)", file=out)
        for number, item in enumerate(good, start=1):
            destination = f"s3://{item.bucket}/{item.key}"
            checksum = sha256_file(item.path)
            if _remote_sha256(client, item.bucket, item.key) == checksum:
                summary.unchanged.append(item.relative)
                status = "unchanged"
            else:
                client.upload_file(
                    str(item.path),
                    item.bucket,
                    item.key,
                    ExtraArgs={"Metadata": {"sha256": checksum}},
                )
                summary.uploaded.append(item.relative)
                summary.bytes_uploaded += item.path.stat().st_size
                status = "uploaded"
            print(
                f"{_bar(number, len(good))} {status:9s} {item.relative} -> {destination}",
                file=out,
            )
    print(file=out)
    print("Summary", file=out)
    if offline:
        print(
            f"  checked {total} file(s): {len(good)} ok, rejected {len(summary.rejected)}, "
            f"not recognised {len(summary.unrecognised)} (offline check: nothing uploaded)",
            file=out,
        )
    else:
        print(
            f"  uploaded {len(summary.uploaded)} file(s), {summary.bytes_uploaded} bytes; "
            f"unchanged {len(summary.unchanged)}; rejected {len(summary.rejected)}; "
            f"not recognised {len(summary.unrecognised)}",
            file=out,
        )
    kinds = sorted({item.kind for item in good})
    if good:
        print(f"  kinds found: {', '.join(kinds)}", file=out)
    for relative, reason in summary.rejected.items():
        print(f"  rejected {relative}: {reason}", file=out)
    for relative in summary.unrecognised:
        print(f"  not recognised (left alone): {relative}", file=out)
    return summary


def run_sync(
    source: str, settings: Settings, out: TextIO | None = None, check: bool = False
) -> SyncSummary:
    """Check the directory, verify its files, then (unless ``check``) the environment and the
    buckets, and upload: :func:`sync_directory`."""
    from stronglens_assets.resources.object_store import (
        StorageError,
        make_s3_client,
        startup_check_client,
        verify_bucket_access,
    )

    directory = Path(source).expanduser()
    if not directory.is_dir():
        raise SyncError(f"--from {source!r} is not a directory")
    if check:
        return sync_directory(directory, settings, None, out)
    if settings.env != "s3" or not settings.s3_bucket:
        raise SyncError(
            "stronglens sync uploads to S3: set STRONGLENS_ENV=s3 and STRONGLENS_S3_BUCKET "
            "(or check the files offline with --check)"
        )

    def connect() -> Any:
        connection = {"endpoint_url": settings.s3_endpoint_url, "region_name": settings.s3_region}
        check = startup_check_client(**connection)  # a silent endpoint fails in seconds
        for bucket in sorted({settings.s3_bucket, settings.dr10_bucket or settings.s3_bucket}):
            try:
                verify_bucket_access(check, bucket)
            except StorageError as exc:
                raise SyncError(str(exc)) from exc
        return make_s3_client(**connection)

    return sync_directory(directory, settings, None, out, connect=connect)
