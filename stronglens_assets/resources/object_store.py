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

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.=\-]+(/[A-Za-z0-9_.=\-]+)*$")


class StorageError(RuntimeError):
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
