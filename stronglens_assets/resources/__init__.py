"""Resources per environment, decided in one place: :func:`build_resources`."""

from __future__ import annotations

from typing import Any

from dagster_aws.s3 import S3Resource

from stronglens_assets.resources.coadds import CoaddSourceResource
from stronglens_assets.resources.compute import ComputeResource, build_compute
from stronglens_assets.resources.storage import (
    ArtifactIOManager,
    LocalStorageResource,
    S3StorageResource,
    StorageResource,
)
from stronglens_assets.resources.survey import (
    DR10SurveyResource,
    MockSurveyResource,
    SurveyResource,
)
from stronglens_assets.settings import Settings

__all__ = [
    "ArtifactIOManager",
    "CoaddSourceResource",
    "ComputeResource",
    "DR10SurveyResource",
    "LocalStorageResource",
    "MockSurveyResource",
    "S3StorageResource",
    "StorageResource",
    "SurveyResource",
    "build_coadd_resource",
    "build_resources",
    "build_storage",
    "build_survey_resource",
]


def build_storage(settings: Settings) -> StorageResource:
    """The storage resource of ``settings.env``."""
    if settings.env == "s3":
        s3 = S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
        return S3StorageResource(s3=s3, bucket=str(settings.s3_bucket), prefix=settings.s3_prefix)
    return LocalStorageResource(root=str(settings.storage_root))


def build_survey_resource(settings: Settings) -> SurveyResource:
    """The survey data source of ``settings.env``: the mock survey locally, DR10 on S3."""
    if settings.env == "s3":
        return DR10SurveyResource(
            s3=S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region),
            bucket=str(settings.dr10_bucket),
            cache_dir=str(settings.cache_dir / "dr10"),
            sweep_prefix=settings.dr10_sweep_prefix,
        )
    return MockSurveyResource(root=str(settings.mock_survey_root))


def build_coadd_resource(settings: Settings) -> CoaddSourceResource:
    """DR10 coadds: the mock survey's locally, the S3 coadd cache in ``s3``, or the public
    Legacy Surveys layout over HTTP when ``STRONGLENS_COADD_URL`` is set."""
    cache_dir = str(settings.cache_dir / "coadds")
    if settings.coadd_url:
        return CoaddSourceResource(kind="http", base_url=settings.coadd_url, cache_dir=cache_dir)
    if settings.env == "s3":
        return CoaddSourceResource(
            kind="s3",
            bucket=str(settings.dr10_bucket),
            prefix=settings.dr10_coadd_prefix,
            cache_dir=cache_dir,
            s3=S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region),
        )
    return CoaddSourceResource(kind="local", root=str(settings.mock_survey_root))


def build_resources(settings: Settings) -> dict[str, Any]:
    """Resource dict for :class:`dagster.Definitions`, chosen by environment."""
    storage = build_storage(settings)
    return {
        "storage": storage,
        "io_manager": ArtifactIOManager(storage=storage),
        "survey": build_survey_resource(settings),
        "coadds": build_coadd_resource(settings),
        "compute": build_compute(settings.config_dir, settings.profile),
    }
