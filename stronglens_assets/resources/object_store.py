"""Byte-level object stores: local filesystem and S3, one interface.

Keys are relative, ``/``-separated paths (``cutouts/negatives/hpx-nest16-1105/shard-000.npz``).
Writes are atomic: locally a temporary file in the target directory renamed over the
destination (``os.replace``), on S3 a single ``PutObject`` (S3 never exposes a partial
object). Readers therefore never see half-written outputs, and a failed write leaves the
previous object untouched.
"""

from __future__ import annotations

import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from stronglens_assets.errors import StronglensError

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.=\-]+(/[A-Za-z0-9_.=\-]+)*$")


class StorageError(StronglensError, RuntimeError):
    """A storage operation failed; the message names the URI."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The requested object does not exist."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``ValueError``."""
    if not isinstance(key, str) or not _KEY_PATTERN.match(key) or ".." in key.split("/"):
        raise ValueError(
            f"invalid storage key {key!r}: use '/'-separated parts of [A-Za-z0-9_.=-], "
            "no leading '/', no '..'"
        )
    return key


class ObjectStore(ABC):
    """Minimal blob store used by the IO manager and by assets that write shards."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Full URI of ``key`` (``file:///...`` path or ``s3://bucket/prefix/key``)."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Bytes of ``key``; :class:`ObjectNotFoundError` if absent."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> str:
        """Atomically write ``data`` to ``key``; return its URI."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key`` if present."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Sorted keys under ``prefix`` (a directory-like prefix, no trailing ``/`` needed)."""

    def local_path(self, key: str) -> Path | None:
        """A local filesystem path for ``key`` when the store is local, else ``None``."""
        return None


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"no object at {path}") from exc

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return path.as_uri()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )


#: Transient S3 failures (throttling such as SlowDown / 503, other 5xx, connection errors and
#: timeouts) are retried by botocore itself: ``standard`` mode, exponential backoff with
#: jitter, at most this many attempts per request (first try included).
DEFAULT_S3_MAX_ATTEMPTS = 8
DEFAULT_S3_RETRY_MODE = "standard"

_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
}


def make_s3_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    profile_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    use_ssl: bool = True,
    verify: bool | str | None = None,
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
    retry_mode: str = DEFAULT_S3_RETRY_MODE,
    connect_timeout_s: float = 10.0,
    read_timeout_s: float = 120.0,
) -> Any:
    """A boto3 S3 client whose transient failures are retried by botocore's retry config
    (``Config(retries={"total_max_attempts": ..., "mode": ...})``; ``max_attempts`` counts the
    first try). Credentials: the arguments when
    given, else the standard AWS chain (env, profile, instance role)."""
    import boto3
    from botocore.config import Config

    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if retry_mode not in ("legacy", "standard", "adaptive"):
        raise ValueError(f"retry_mode must be legacy, standard or adaptive, got {retry_mode!r}")
    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": retry_mode},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
    )
    session = boto3.session.Session(profile_name=profile_name)
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region_name,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        use_ssl=use_ssl,
        verify=verify,
        config=config,
    )


def verify_bucket_access(client: Any, bucket: str, prefix: str = "") -> None:
    """Fail fast, with a clear message, when ``bucket`` cannot be used with ``client``.

    Lists at most one key under ``prefix``. Raises :class:`StorageError` naming the bucket,
    the endpoint and the cause: rejected credentials, no credentials at all, a missing bucket,
    access denied, or an unreachable endpoint.
    """
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "AWS"
    where = f"s3://{bucket}/{prefix.strip('/')}".rstrip("/") + f" (endpoint {endpoint})"
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix.strip("/"), MaxKeys=1)
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StorageError(
            f"no usable AWS credentials for {where}: {exc}. Set AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role"
        ) from exc
    except EndpointConnectionError as exc:
        raise StorageError(f"cannot reach the S3 endpoint for {where}: {exc}") from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _CREDENTIAL_CODES:
            raise StorageError(
                f"S3 rejected the credentials for {where} ({code}): check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (or the profile) for this endpoint"
            ) from exc
        if code in ("NoSuchBucket", "404", "NotFound"):
            raise StorageError(
                f"bucket {bucket!r} does not exist at {endpoint} (NoSuchBucket): create it or "
                "fix STRONGLENS_S3_BUCKET / STRONGLENS_DR10_BUCKET"
            ) from exc
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            raise StorageError(
                f"access to {where} denied ({code}): the credentials lack s3:ListBucket"
            ) from exc
        raise StorageError(f"checking {where} failed: {code or exc}") from exc


class S3ObjectStore(ObjectStore):
    """Objects in ``s3://bucket/prefix/...`` through a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFoundError(f"no object at {self.uri(key)}") from exc
            raise StorageError(f"reading {self.uri(key)} failed: {exc}") from exc
        return response["Body"].read()

    def write_bytes(self, key: str, data: bytes) -> str:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except ClientError as exc:
            raise StorageError(f"writing {self.uri(key)} failed: {exc}") from exc
        return self.uri(key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"checking {self.uri(key)} failed: {exc}") from exc
        return True

    def head(self, key: str) -> dict[str, Any] | None:
        """``{"etag": <ETag without quotes>, "size": bytes}`` of ``key``, ``None`` if absent."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"checking {self.uri(key)} failed: {exc}") from exc
        return {
            "etag": str(response.get("ETag", "")).strip('"'),
            "size": int(response.get("ContentLength", 0)),
        }

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list_keys(self, prefix: str = "") -> list[str]:
        full_prefix = (
            self._key(prefix) + "/" if prefix else (self.prefix + "/" if self.prefix else "")
        )
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            keys.extend(item["Key"][strip:] for item in page.get("Contents", []))
        return sorted(keys)
