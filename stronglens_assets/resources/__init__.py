"""Resources per environment, decided in one place: :func:`build_resources`."""

from __future__ import annotations

from typing import Any

from dagster_aws.s3 import S3Resource

from stronglens_assets.resources.storage import (
    ArtifactIOManager,
    LocalStorageResource,
    S3StorageResource,
    StorageResource,
)
from stronglens_assets.settings import Settings

__all__ = [
    "ArtifactIOManager",
    "LocalStorageResource",
    "S3StorageResource",
    "StorageResource",
    "build_resources",
    "build_storage",
]


def build_storage(settings: Settings) -> StorageResource:
    """The storage resource of ``settings.env``."""
    if settings.env == "s3":
        s3 = S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
        return S3StorageResource(s3=s3, bucket=str(settings.s3_bucket), prefix=settings.s3_prefix)
    return LocalStorageResource(root=str(settings.storage_root))


def build_resources(settings: Settings) -> dict[str, Any]:
    """Resource dict for :class:`dagster.Definitions`, chosen by environment."""
    storage = build_storage(settings)
    return {
        "storage": storage,
        "io_manager": ArtifactIOManager(storage=storage),
    }
