"""Storage resources and the project's IO manager (the ARCHITECTURE storage contract).

* :class:`LocalStorageResource` / :class:`S3StorageResource`: where outputs live. Assets
  that write bulk arrays (cutout shards, injection grids) call them directly and return
  metadata instead of passing gigabytes through an IO manager.
* :class:`ArtifactIOManager`: stores an asset's return value at
  ``<root>/<asset/key/path>.<ext>`` or, partitioned, ``<root>/<asset/key/path>/<partition>.<ext>``
  with the format chosen by :mod:`.serialization`. Same code path locally and on S3; only the
  :class:`~.object_store.ObjectStore` differs.
"""

from typing import Any, Literal

import dagster as dg
from dagster_aws.s3 import S3Resource

from stronglens_assets.partitions import validate_partition_key
from stronglens_assets.resources.object_store import (
    DEFAULT_S3_MAX_ATTEMPTS,
    LocalObjectStore,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
    make_s3_client,
    startup_check_client,
    verify_bucket_access,
)
from stronglens_assets.resources.serialization import EXTENSIONS, decode, encode
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.core.tempfiles import sweep_stale_temp_files


class StorageResource(dg.ConfigurableResource):
    """Base class: an object store for asset outputs. Use a subclass."""

    def object_store(self) -> ObjectStore:
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes) -> str:
        """Atomically write ``data`` at ``key``; return the URI."""
        return self.object_store().write_bytes(key, data)

    def read_bytes(self, key: str) -> bytes:
        return self.object_store().read_bytes(key)

    def exists(self, key: str) -> bool:
        return self.object_store().exists(key)

    def list_keys(self, prefix: str = "") -> list[str]:
        return self.object_store().list_keys(prefix)

    def delete(self, key: str) -> None:
        self.object_store().delete(key)

    def uri(self, key: str) -> str:
        return self.object_store().uri(key)

    def write_value(self, key_stem: str, value: Any) -> tuple[str, str]:
        """Encode ``value`` by the storage contract and write ``<key_stem>.<ext>``.

        Returns ``(uri, sha256 hex digest of the bytes)``.
        """
        data, extension = encode(value)
        uri = self.write_bytes(f"{key_stem}.{extension}", data)
        return uri, sha256_bytes(data)

    def read_value(self, key: str) -> Any:
        """Read and decode ``key`` (its extension decides the format)."""
        extension = key.rsplit(".", 1)[-1]
        return decode(self.read_bytes(key), extension)


class LocalStorageResource(StorageResource):
    """Outputs as files under ``root`` (the ``local`` environment).

    At start-up, temporary files that crashed writers left under ``root`` are removed (only
    those whose writer is gone: :func:`~.tempfiles.sweep_stale_temp_files`).
    """

    root: str

    def object_store(self) -> ObjectStore:
        return LocalObjectStore(self.root)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        removed = sweep_stale_temp_files(self.root, recursive=True)
        if removed and context.log is not None:
            context.log.info(
                f"removed {len(removed)} temporary file(s) of crashed writers under {self.root}"
            )


def s3_connection(s3: S3Resource) -> dict[str, Any]:
    """The connection settings of a dagster-aws :class:`S3Resource` as
    :func:`~.object_store.make_s3_client` keyword arguments."""
    return {
        "endpoint_url": s3.endpoint_url,
        "region_name": s3.region_name,
        "profile_name": s3.profile_name,
        "aws_access_key_id": s3.aws_access_key_id,
        "aws_secret_access_key": s3.aws_secret_access_key,
        "aws_session_token": s3.aws_session_token,
        "use_ssl": s3.use_ssl,
        "verify": s3.verify,
    }


def s3_client_for(
    s3: S3Resource, max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS, retry_mode: str = "standard"
) -> Any:
    """A boto3 client with the connection settings of ``s3`` and botocore's retry config
    (``max_attempts`` per request, ``retry_mode``) for throttling, 5xx and connection errors."""
    return make_s3_client(**s3_connection(s3), max_attempts=max_attempts, retry_mode=retry_mode)


def verify_s3_bucket(s3: S3Resource, bucket: str, prefix: str = "") -> None:
    """Start-up check of ``bucket`` through ``s3``'s connection, with the short start-up
    limits (:func:`~.object_store.startup_check_client`): :class:`StorageError` if unusable."""
    verify_bucket_access(startup_check_client(**s3_connection(s3)), bucket, prefix)


class S3StorageResource(StorageResource):
    """Outputs in ``s3://<bucket>/<prefix>/`` through dagster-aws' :class:`S3Resource`.

    ``s3.endpoint_url`` points at any S3-compatible server (moto in tests, MinIO, ...).
    Transient failures (SlowDown/503, 5xx, connection errors) are retried by botocore
    (``max_attempts`` per request, ``retry_mode``). When a run starts, the bucket is checked
    once: wrong credentials or a missing bucket fail the resource's start-up with a clear
    message instead of the first write.
    """

    s3: S3Resource
    bucket: str
    prefix: str = "stronglens_calibration"
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    retry_mode: Literal["legacy", "standard", "adaptive"] = "standard"

    def client(self) -> Any:
        return s3_client_for(self.s3, self.max_attempts, self.retry_mode)

    def object_store(self) -> ObjectStore:
        return S3ObjectStore(self.client(), self.bucket, self.prefix)

    def verify(self) -> None:
        """Raise :class:`StorageError` unless the bucket is reachable with these credentials."""
        verify_s3_bucket(self.s3, self.bucket, self.prefix)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.verify()


def _asset_key_stem(asset_key: dg.AssetKey, partition_key: str | None) -> str:
    stem = "/".join(asset_key.path)
    if partition_key is not None:
        stem = f"{stem}/{validate_partition_key(partition_key)}"
    return stem


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores asset return values as Parquet / JSON / npz / torch files in a storage resource.

    ``None`` outputs (assets that wrote shards themselves) store nothing. An unpartitioned
    asset that reads several partitions of an upstream asset receives a dict
    ``{partition_key: value}``, as Dagster's ``UPathIOManager`` does.
    """

    storage: dg.ResourceDependency[StorageResource]

    def _stem(self, asset_key: dg.AssetKey, partition_key: str | None) -> str:
        return _asset_key_stem(asset_key, partition_key)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        partition_key = context.asset_partition_key if context.has_asset_partitions else None
        stem = self._stem(context.asset_key, partition_key)
        data, extension = encode(obj)
        store = self.storage.object_store()
        uri = store.write_bytes(f"{stem}.{extension}", data)
        for other in EXTENSIONS:
            if other != extension and store.exists(f"{stem}.{other}"):
                store.delete(f"{stem}.{other}")
        metadata: dict[str, Any] = {
            "uri": dg.MetadataValue.path(uri),
            "bytes": len(data),
            "sha256": sha256_bytes(data),
            "format": extension,
        }
        if extension == "parquet":
            metadata["rows"] = len(obj)
        context.add_output_metadata(metadata)

    def _load(self, store: ObjectStore, asset_key: dg.AssetKey, partition_key: str | None) -> Any:
        stem = self._stem(asset_key, partition_key)
        for extension in EXTENSIONS:
            key = f"{stem}.{extension}"
            if store.exists(key):
                return decode(store.read_bytes(key), extension)
        where = f"partition {partition_key!r} of " if partition_key else ""
        raise ObjectNotFoundError(
            f"no stored output for {where}asset {asset_key.to_user_string()!r} at "
            f"{store.uri(stem)}.{{{','.join(EXTENSIONS)}}}; materialize it first"
        )

    def load_input(self, context: dg.InputContext) -> Any:
        store = self.storage.object_store()
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            return self._load(store, asset_key, None)
        keys = context.asset_partition_keys
        if len(keys) == 1 and context.has_partition_key and context.partition_key == keys[0]:
            return self._load(store, asset_key, keys[0])
        return {key: self._load(store, asset_key, key) for key in keys}
