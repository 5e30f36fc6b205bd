"""Byte-level object stores: local filesystem and S3, one interface.

Keys are relative, ``/``-separated paths (``cutouts/negatives/hpx-nest16-1105/shard-000.npz``).
Writes are atomic: locally a temporary file in the target directory renamed over the
destination (``os.replace``), on S3 a single ``PutObject`` (S3 never exposes a partial
object). Readers therefore never see half-written outputs, and a failed write leaves the
previous object untouched.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.core.tempfiles import describe_os_error, temp_path_for

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.=\-]+(/[A-Za-z0-9_.=\-]+)*$")


class StorageError(StronglensError, RuntimeError):
    """A storage operation failed; the message names the URI."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The requested object does not exist."""


class StorageWriteError(StorageError, OSError):
    """Writing an object failed (disk full, read-only, too large); names the path or URI."""


class IntegrityError(StorageError, ValueError):
    """An object does not match what its producer recorded (sha256, version); names the URI."""


#: A file of a versioned set: ``<root>/<version: 16 hex>/<name>``, its pointer ``<root>.json``
#: (:mod:`stronglens_assets.resources.versioned`).
_VERSIONED_FILE = re.compile(r"^(?P<root>.+)/(?P<version>[0-9a-f]{16})/(?P<name>[^/]+)$")


def _is_pointer(document: Any) -> bool:
    """Whether a JSON document is a versioned-set pointer (16-hex ``version`` and a file list)."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("version"), str)
        and re.fullmatch(r"[0-9a-f]{16}", document["version"]) is not None
        and ("files" in document or "shards" in document)
    )


def recorded_sha256(pointer: dict[str, Any], key: str) -> str | None:
    """The sha256 that a versioned-set pointer records for ``key`` (``None`` if unlisted).

    Pointers list their files under ``files`` (``{name: {"key", "sha256", "bytes"}}``); shard
    pointers written before that list ``shards`` and ``index_key`` / ``index_sha256``. A key
    matches a record with the same ``<version>/<name>`` tail, so a copy of a set under another
    root (a downloaded results folder opened as its own store) is checked too.
    """

    def same(recorded: Any) -> bool:
        return isinstance(recorded, str) and (
            recorded == key or recorded.split("/")[-2:] == key.split("/")[-2:]
        )

    for record in (pointer.get("files") or {}).values():
        if same(record.get("key")):
            return str(record["sha256"])
    for record in pointer.get("shards") or ():
        if same(record.get("key")):
            return str(record["sha256"])
    if same(pointer.get("index_key")) and pointer.get("index_sha256"):
        return str(pointer["index_sha256"])
    return None


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``ValueError``."""
    if not isinstance(key, str) or not _KEY_PATTERN.match(key) or ".." in key.split("/"):
        raise ValueError(
            f"invalid storage key {key!r}: use '/'-separated parts of [A-Za-z0-9_.=-], "
            "no leading '/', no '..'"
        )
    return key


class ObjectStore(ABC):
    """Minimal blob store used by the IO manager and by assets that write shards.

    Every read of a file of a versioned set (``<root>/<16 hex>/<name>`` with a pointer
    ``<root>.json``: cutout shards, their index, D06 results written through
    :mod:`~stronglens_assets.resources.versioned`) is checked against the sha256 the pointer
    records: a truncated, edited or stale file raises :class:`IntegrityError` naming its URI
    instead of reaching the caller. Other keys are returned as stored.
    """

    @abstractmethod
    def uri(self, key: str) -> str:
        """Full URI of ``key`` (``file:///...`` path or ``s3://bucket/prefix/key``)."""

    @abstractmethod
    def read_raw(self, key: str) -> bytes:
        """Bytes of ``key`` as stored, unchecked; :class:`ObjectNotFoundError` if absent."""

    def read_bytes(self, key: str) -> bytes:
        """Bytes of ``key``; :class:`ObjectNotFoundError` if absent, :class:`IntegrityError` if
        ``key`` is a file of a versioned set that does not match its pointer's record."""
        data = self.read_raw(key)
        match = _VERSIONED_FILE.match(key)
        if match:
            self._verify_versioned(key, match["root"], match["version"], data)
        return data

    def _pointer(self, root: str, refresh: bool) -> dict[str, Any] | None:
        """The pointer of ``root`` (cached per store; ``None`` if ``root`` is no versioned set)."""
        cache: dict[str, dict[str, Any] | None] = self.__dict__.setdefault("_pointers", {})
        if refresh or root not in cache:
            try:
                document = json.loads(self.read_raw(f"{root}.json"))
            except (ObjectNotFoundError, ValueError):
                document = None
            cache[root] = document if _is_pointer(document) else None
        return cache[root]

    def _verify_versioned(self, key: str, root: str, version: str, data: bytes) -> None:
        pointer = self._pointer(root, refresh=False)
        if pointer is not None and pointer.get("version") != version:
            pointer = self._pointer(root, refresh=True)  # the set moved on since it was cached
        if pointer is None:
            return  # not a versioned set: nothing recorded to check against
        if pointer.get("version") != version:
            raise IntegrityError(
                f"{self.uri(key)} belongs to version {version} of {self.uri(root)}, but its "
                f"pointer {self.uri(root + '.json')} names version {pointer.get('version')}: "
                "the reader's manifest is older than the data; re-materialize it"
            )
        expected = recorded_sha256(pointer, key)
        if expected is None:
            raise IntegrityError(
                f"{self.uri(key)} is not listed by its pointer {self.uri(root + '.json')}"
            )
        actual = sha256_bytes(data)
        if actual != expected:
            raise IntegrityError(
                f"{self.uri(key)} does not match the sha256 its producer recorded in "
                f"{self.uri(root + '.json')} (recorded {expected[:12]}..., read {actual[:12]}..., "
                f"{len(data)} bytes): the file was truncated or changed after it was written"
            )

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

    @abstractmethod
    def last_modified(self, key: str) -> float | None:
        """When ``key`` was last written (POSIX seconds, the store's clock); ``None`` if absent."""

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

    def read_raw(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"no object at {path}") from exc
        except OSError as exc:
            raise StorageError(f"reading {path} failed: {describe_os_error(exc)}") from exc

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` to a temporary file beside the target (named after this process,
        :func:`~stronglens_assets.science.core.tempfiles.temp_path_for`), fsync, rename over
        the target. On any failure (disk full, file too large, permissions) the temporary
        file is removed, the previous object is untouched and :class:`StorageError` names the
        path."""
        path = self._path(key)
        tmp = temp_path_for(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageWriteError(
                f"writing {len(data)} bytes to {path} failed: {describe_os_error(exc)}; "
                "the previous object (if any) is unchanged"
            ) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path.as_uri()

    def last_modified(self, key: str) -> float | None:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            return None

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


#: Start-up bucket checks use their own short limits, not the data path's (120 s read
#: timeout x 8 attempts): an endpoint that accepts connections and never answers fails the
#: check in about ``STARTUP_CHECK_ATTEMPTS x (connect or read timeout)`` seconds.
STARTUP_CHECK_CONNECT_TIMEOUT_S: float = 3.0
STARTUP_CHECK_READ_TIMEOUT_S: float = 4.0
STARTUP_CHECK_ATTEMPTS: int = 3


def startup_check_client(**connection: Any) -> Any:
    """A client for start-up bucket checks: :func:`make_s3_client` with ``connection``
    (endpoint, region, credentials, ...) and the short ``STARTUP_CHECK_*`` limits."""
    return make_s3_client(
        **connection,
        max_attempts=STARTUP_CHECK_ATTEMPTS,
        connect_timeout_s=STARTUP_CHECK_CONNECT_TIMEOUT_S,
        read_timeout_s=STARTUP_CHECK_READ_TIMEOUT_S,
    )


def verify_bucket_access(client: Any, bucket: str, prefix: str = "") -> None:
    """Fail fast, with a clear message, when ``bucket`` cannot be used with ``client``.

    Lists at most one key under ``prefix``; pass a :func:`startup_check_client` so a silent
    endpoint fails in seconds. Raises :class:`StorageError` naming the bucket, the endpoint
    and the cause: rejected credentials, no credentials at all, a missing bucket (S3's
    ``NoSuchBucket``), access denied, an endpoint that does not answer in time, one that
    cannot be reached, or an answer that is not S3's (a bare HTTP status without an S3 error
    document, e.g. a web server's 404).
    """
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    meta = getattr(client, "meta", None)
    endpoint = getattr(meta, "endpoint_url", None) or "AWS"
    where = f"s3://{bucket}/{prefix.strip('/')}".rstrip("/") + f" (endpoint {endpoint})"
    config = getattr(meta, "config", None)
    limits = (
        f"{getattr(config, 'connect_timeout', '?')} s to connect, "
        f"{getattr(config, 'read_timeout', '?')} s to answer, "
        f"{(getattr(config, 'retries', None) or {}).get('total_max_attempts', '?')} attempt(s)"
    )
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix.strip("/"), MaxKeys=1)
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StorageError(
            f"no usable AWS credentials for {where}: {exc}. Set AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role"
        ) from exc
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        raise StorageError(
            f"the S3 endpoint for {where} did not answer ({limits}): {exc}. Is "
            f"{endpoint} an S3 server, and reachable from here?"
        ) from exc
    except (EndpointConnectionError, HTTPClientError) as exc:
        raise StorageError(f"cannot reach the S3 endpoint for {where}: {exc}") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _CREDENTIAL_CODES:
            raise StorageError(
                f"S3 rejected the credentials for {where} ({code}): check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (or the profile) for this endpoint"
            ) from exc
        if code == "NoSuchBucket":
            raise StorageError(
                f"bucket {bucket!r} does not exist at {endpoint} (NoSuchBucket): create it or "
                "fix STRONGLENS_S3_BUCKET / STRONGLENS_DR10_BUCKET"
            ) from exc
        if code in ("AccessDenied", "AllAccessDisabled"):
            raise StorageError(
                f"access to {where} denied ({code}): the credentials lack s3:ListBucket"
            ) from exc
        if not code or code.isdigit() or code in ("NotFound", "Forbidden", "BadRequest"):
            # botocore fills the code with the bare status when the body is no S3 error XML
            raise StorageError(
                f"checking {where}: the endpoint answered HTTP {status or code} without an S3 "
                f"error document, so {endpoint} does not look like an S3 server (check "
                "STRONGLENS_S3_ENDPOINT_URL); nothing is known about the bucket"
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

    def read_raw(self, key: str) -> bytes:
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
        """``{"etag": <ETag without quotes>, "size": bytes, "last_modified": POSIX seconds}``
        of ``key``, ``None`` if absent."""
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
            "last_modified": float(response["LastModified"].timestamp()),
        }

    def last_modified(self, key: str) -> float | None:
        head = self.head(key)
        return None if head is None else head["last_modified"]

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
