"""External inputs as observable source assets (their data version is a content checksum):
``lenscat_csv`` (SHA-256 of the CSV), ``desi_vac_file`` (the VAC object's ETag, ``s3`` only)
and ``dr10_coadd_cache`` (per HEALPix partition, a hash of its bricks' coadd-cache ETags,
``s3`` only), and which assets read them."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable

import dagster as dg

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.project import Project

SOURCES_GROUP = "external_inputs"

LENSCAT_CSV = dg.AssetKey("lenscat_csv")
DESI_VAC_FILE = dg.AssetKey("desi_vac_file")
COADD_CACHE = dg.AssetKey("dr10_coadd_cache")

#: Which existing asset reads which external input (added as a dependency when both exist).
SOURCE_CONSUMERS: dict[dg.AssetKey, tuple[dg.AssetKey, ...]] = {
    LENSCAT_CSV: (dg.AssetKey("lenscat_catalog"),),
    DESI_VAC_FILE: (dg.AssetKey("desi_dr1_vac"),),
    COADD_CACHE: (dg.AssetKey("positive_cutouts"), dg.AssetKey("negative_cutouts")),
}


def _lenscat_csv_source(project: Project) -> dg.SourceAsset:
    from stronglens_assets.assets.catalogs import load_catalogs_config
    from stronglens_assets.science.catalogs import lenscat

    csv_override = load_catalogs_config(project).lenscat_csv

    @dg.observable_source_asset(
        key=LENSCAT_CSV,
        group_name=SOURCES_GROUP,
        description=(
            "The lenscat catalog file (catalog.csv of the installed lenscat package, or the "
            "`lenscat_csv` of configs/catalogs.yaml) that `lenscat_catalog` reads. Observing it "
            "records its SHA-256 as the data version: a changed file makes the catalogs stale."
        ),
    )
    def lenscat_csv() -> dg.ObserveResult:
        """The lenscat ``catalog.csv`` read by ``lenscat_catalog``; version = SHA-256."""
        path = csv_override or lenscat.lenscat_csv_path()
        checksum = lenscat.catalog_checksum(path)
        return dg.ObserveResult(
            data_version=dg.DataVersion(checksum),
            metadata=ui_metadata({"path": dg.MetadataValue.path(str(path)), "sha256": checksum}),
        )

    return lenscat_csv


def _desi_vac_source() -> dg.SourceAsset:
    @dg.observable_source_asset(
        key=DESI_VAC_FILE,
        group_name=SOURCES_GROUP,
        required_resource_keys={"survey"},
        description=(
            "The DESI DR1 strong-lens VAC object on S3 that `desi_dr1_vac` reads; its ETag is "
            "the data version."
        ),
    )
    def desi_vac_file(context) -> dg.ObserveResult:
        """The DESI DR1 VAC object on S3 read by ``desi_dr1_vac``; version = its ETag."""
        from stronglens_assets.resources.object_store import S3ObjectStore, StorageError
        from stronglens_assets.resources.storage import s3_client_for

        survey = context.resources.survey
        store = S3ObjectStore(s3_client_for(survey.s3), survey.bucket)
        head = store.head(survey.desi_vac_key)
        if head is None:
            raise StorageError(f"DESI VAC {store.uri(survey.desi_vac_key)} does not exist")
        return dg.ObserveResult(
            data_version=dg.DataVersion(head["etag"]),
            metadata=ui_metadata({"uri": store.uri(survey.desi_vac_key), "bytes": head["size"]}),
        )

    return desi_vac_file


def coadd_cache_version(listing: Iterable[tuple[str, str, int]]) -> str:
    """SHA-256 over sorted ``(key, etag, size)`` rows of a brick listing (order-free)."""
    digest = hashlib.sha256()
    for key, etag, size in sorted(listing):
        digest.update(f"{key}\t{etag}\t{size}\n".encode())
    return digest.hexdigest()


def _coadd_cache_source(project: Project) -> dg.SourceAsset:
    @dg.observable_source_asset(
        key=COADD_CACHE,
        group_name=SOURCES_GROUP,
        partitions_def=project.healpix_partitions,
        required_resource_keys={"coadds"},
        description=(
            "The DR10 coadd cache on S3, per HEALPix partition: the data version hashes the "
            "keys, ETags and sizes of its bricks' coadd files, so a brick arriving in the "
            "cache makes exactly its partition's cutouts stale."
        ),
    )
    def dr10_coadd_cache(context) -> dg.DataVersionsByPartition:
        """Coadd-cache objects of each partition's bricks; version = hash of their ETags.

        A brick missing from the cache hashes as empty, so its arrival changes the version.
        """
        source = context.resources.coadds.get_source()
        versions: dict[str, str] = {}
        for partition in project.healpix_partitions.get_partition_keys():
            rows = []
            for brick in project.bricks_in_partition(partition):
                prefix = f"{source.prefix}/{brick}/" if source.prefix else f"{brick}/"
                pages = source.client.get_paginator("list_objects_v2").paginate(
                    Bucket=source.bucket, Prefix=prefix
                )
                rows += [
                    (o["Key"], o.get("ETag", ""), int(o.get("Size", 0)))
                    for page in pages
                    for o in page.get("Contents", [])
                ]
            versions[partition] = coadd_cache_version(rows)
        with warnings.catch_warnings():  # DataVersionsByPartition is a Dagster beta API
            warnings.simplefilter("ignore", dg.BetaWarning)
            return dg.DataVersionsByPartition(versions)

    return dr10_coadd_cache


def build_sources(project: Project) -> list[dg.SourceAsset]:
    """The external inputs of ``project``'s environment (see the module docstring)."""
    with warnings.catch_warnings():  # observable_source_asset is a Dagster beta API
        warnings.simplefilter("ignore", dg.BetaWarning)
        sources = [_lenscat_csv_source(project)]
        if project.settings.env == "s3":
            sources.append(_desi_vac_source())
            if not project.settings.coadd_url:
                sources.append(_coadd_cache_source(project))
    return sources
