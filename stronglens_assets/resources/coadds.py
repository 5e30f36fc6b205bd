"""DR10 coadd access: one interface, three sources (local directory, S3 coadd cache, HTTP).

Every source answers ``open(brick, product, band) -> local Path`` so the cutout code
(:func:`stronglens_assets.science.imaging.cutouts.extract_brick_cutouts`) reads any source the same
way. File names are ``legacysurvey-<brick>-<product>-<band>.fits.fz``; layouts:

* :class:`LocalCoaddSource`: the public DR10 layout ``<root>/coadd/<RRR>/<brick>/<file>``
  (``<RRR>`` = first 3 characters of the brick name), as the mock survey writes it.
* :class:`S3CoaddSource`: the flat coadd cache ``s3://<bucket>/<prefix>/<brick>/<file>``
  (default prefix ``dr10/coadd_cache``).
* :class:`HttpCoaddSource`: ``<base_url>/coadd/<RRR>/<brick>/<file>`` (Legacy Surveys
  portal, e.g. :data:`DR10_SOUTH_URL`).

Remote files are downloaded into a local cache (same relative layout) atomically: streamed
into a temporary file in the target directory, size-checked against the advertised length,
checked with :func:`~stronglens_assets.science.imaging.cutouts.validate_fits` and renamed into
place, so the cache never holds a partial or corrupt file. Transient failures (throttling,
5xx, connection errors, timeouts, short reads) are retried with exponential backoff by one
loop (:meth:`RetryPolicy.run`); on S3 this is on top of botocore's own retries of a request,
because botocore does not retry a body that breaks off while it is streamed. Permanent
failures raise at once: :class:`CoaddNotFoundError` (404 / 403 / absent) naming the
URL or ``s3://`` URI, :class:`CoaddFetchError` otherwise.
"""

from __future__ import annotations

import errno
import http.client
import os
import random
import re
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import dagster as dg
from dagster_aws.s3 import S3Resource

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.catalogs.bricks import parse_brick_name
from stronglens_assets.science.core.tempfiles import (
    describe_os_error,
    sweep_stale_temp_files,
    temp_path_for,
)
from stronglens_assets.science.imaging.cutouts import (
    BANDS,
    PRODUCTS,
    CoaddError,
    CoaddNotFoundError,
    CorruptCoaddError,
    MissingCoaddError,
    validate_fits,
)

__all__ = [
    "DEFAULT_S3_PREFIX",
    "DR10_SOUTH_URL",
    "PRODUCTS",
    "CoaddError",
    "CoaddFetchError",
    "CoaddNotFoundError",
    "CoaddSource",
    "CoaddSourceResource",
    "CorruptCoaddError",
    "HttpCoaddSource",
    "LocalCoaddSource",
    "MissingCoaddError",
    "RetryPolicy",
    "S3CoaddSource",
    "coadd_filename",
    "dr10_coadd_path",
    "validate_fits",
]

DR10_SOUTH_URL = "https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south"
"""Public Legacy Surveys DR10 (south, DECam) data root."""
DEFAULT_S3_PREFIX = "dr10/coadd_cache"
"""Key prefix of the flat per-brick S3 coadd cache."""

_TOKEN = re.compile(r"^[a-z0-9]+$")
_CHUNK = 1 << 20
_T = TypeVar("_T")


class CoaddFetchError(CoaddError):
    """A download failed permanently or kept failing after all retries (names the URL/URI)."""


class _TransientError(StronglensError):
    """Internal: a failure worth retrying."""


# --------------------------------------------------------------------------------------------
# Layout helpers
# --------------------------------------------------------------------------------------------
def coadd_filename(brick: str, product: str, band: str) -> str:
    """``legacysurvey-<brick>-<product>-<band>.fits.fz`` (brick name validated)."""
    parse_brick_name(brick)
    for what, value in (("product", product), ("band", band)):
        if not isinstance(value, str) or not _TOKEN.match(value):
            raise ValueError(f"bad coadd {what} {value!r}: expected lowercase letters/digits")
    return f"legacysurvey-{brick}-{product}-{band}.fits.fz"


def dr10_coadd_path(brick: str, product: str, band: str) -> str:
    """Public DR10 relative path ``coadd/<RRR>/<brick>/legacysurvey-...fits.fz``."""
    return f"coadd/{brick[:3]}/{brick}/{coadd_filename(brick, product, band)}"


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    """Absolute cache root; ``None`` means ``<settings cache_dir>/coadds``."""
    if cache_dir is None:
        from stronglens_assets.settings import load_settings

        return load_settings().cache_dir / "coadds"
    return Path(cache_dir).expanduser().resolve()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: the k-th retry (k = 0, 1, ...) waits
    ``min(max_backoff_s, backoff_s * 2**k)`` seconds times a jitter factor in [0.5, 1]."""

    attempts: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff times must be >= 0")

    def delays(self) -> Iterator[float]:
        """Waits between attempts (``attempts - 1`` values)."""
        for k in range(self.attempts - 1):
            yield min(self.max_backoff_s, self.backoff_s * 2**k) * (0.5 + 0.5 * random.random())

    def run(self, attempt: Callable[[], _T], what: str) -> _T:
        """``attempt()`` until it returns; a :class:`_TransientError` is retried after the next
        delay, any other exception propagates. After the last attempt
        :class:`CoaddFetchError` says ``"<what> failed after <n> attempt(s): <cause>"``."""
        delays = self.delays()
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except _TransientError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise CoaddFetchError(f"{what} failed after {tries} attempt(s): {exc}") from exc
                self.sleep(delay)


_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _atomic_fetch(
    dest: Path, uri: str, fetch: Callable[[IO[bytes]], int | None], policy: RetryPolicy
) -> Path:
    """Download into ``dest`` through ``fetch(handle) -> advertised length or None``.

    Each attempt writes a temporary file next to ``dest``; the file is size-checked,
    validated as FITS and renamed into place. :class:`_TransientError` is retried.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)

    def attempt() -> Path:
        tmp = temp_path_for(dest)
        try:
            try:
                handle = open(tmp, "xb")
            except OSError as exc:
                raise CoaddFetchError(
                    f"{uri}: cannot create {tmp}: {describe_os_error(exc)}"
                ) from exc
            with handle:
                try:
                    expected = fetch(handle)
                    handle.flush()
                except OSError as exc:
                    if exc.errno not in _DISK_ERRNOS:
                        raise  # network errors: the fetch's own retry handling
                    raise CoaddFetchError(
                        f"{uri}: writing {tmp} failed: {describe_os_error(exc)}"
                    ) from exc
                written = handle.tell()
            if expected is not None and written != expected:
                raise _TransientError(f"short read: got {written} of {expected} bytes")
            try:
                validate_fits(tmp)
            except CorruptCoaddError as exc:
                raise CorruptCoaddError(
                    f"{uri}: downloaded file is not valid FITS ({exc})", path=uri
                ) from exc
            os.replace(tmp, dest)
            return dest
        finally:
            tmp.unlink(missing_ok=True)

    return policy.run(attempt, f"{uri}: download")


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------
class CoaddSource(ABC):
    """Where DR10 coadd files come from. Products: ``image`` (nanomaggies), ``invvar``
    (1/nanomaggy^2), ``psfsize`` (FWHM arcsec), per band."""

    @abstractmethod
    def path_for(self, brick: str, product: str, band: str) -> str:
        """Relative location of a file in this source's layout (``/``-separated)."""

    @abstractmethod
    def uri(self, brick: str, product: str, band: str) -> str:
        """Full location (path, ``s3://`` URI or URL) used in messages."""

    @abstractmethod
    def open(self, brick: str, product: str, band: str) -> Path:
        """Local filesystem path of the file, fetched into the cache first when remote.

        Raises :class:`CoaddNotFoundError` (naming the location) if the source lacks it.
        """

    @abstractmethod
    def has_brick(self, brick: str) -> bool:
        """Whether the source holds coadds of ``brick``."""

    def opener(self, brick: str) -> Callable[[str, str], Path]:
        """``open_file(product, band)`` for
        :func:`~.science.imaging.cutouts.extract_brick_cutouts`."""

        def open_file(product: str, band: str) -> Path:
            return self.open(brick, product, band)

        return open_file


class LocalCoaddSource(CoaddSource):
    """DR10 layout ``<root>/coadd/<RRR>/<brick>/<file>`` on the local filesystem."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    def path_for(self, brick: str, product: str, band: str) -> str:
        return dr10_coadd_path(brick, product, band)

    def uri(self, brick: str, product: str, band: str) -> str:
        return str(self.root / self.path_for(brick, product, band))

    def open(self, brick: str, product: str, band: str) -> Path:
        path = self.root / self.path_for(brick, product, band)
        if not path.is_file():
            raise CoaddNotFoundError(
                f"no coadd file {path}", brick=brick, product=product, band=band
            )
        return path

    def has_brick(self, brick: str) -> bool:
        parse_brick_name(brick)
        directory = self.root / "coadd" / brick[:3] / brick
        return directory.is_dir() and any(directory.glob(f"legacysurvey-{brick}-*.fits*"))


_S3_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "403", "AccessDenied", "Forbidden"}
_S3_TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "InternalError",
    "ServiceUnavailable",
    "InternalFailure",
}


def _s3_transient_types() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )
    from botocore.exceptions import (
        HTTPClientError,
        IncompleteReadError,
    )

    return (
        BotoConnectionError,
        HTTPClientError,
        IncompleteReadError,
        ConnectionError,
        TimeoutError,
    )


class S3CoaddSource(CoaddSource):
    """Flat coadd cache ``s3://<bucket>/<prefix>/<brick>/<file>``, downloaded to ``cache_dir``.

    Args:
        client: a boto3 S3 client (``endpoint_url`` may point at any S3-compatible server).
        bucket, prefix: location of the cache.
        cache_dir: local cache root (default ``$STRONGLENS_HOME/cache/coadds``); files land in
            ``<cache_dir>/<prefix>/<brick>/<file>``.
        attempts, backoff_s, max_backoff_s: retry policy for throttling / 5xx / connection
            errors (on top of botocore's own retries).
        validate: check each download with :func:`validate_fits` before caching it.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = DEFAULT_S3_PREFIX,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache_dir = _cache_root(cache_dir)
        self.policy = RetryPolicy(attempts, backoff_s, max_backoff_s, sleep)

    def path_for(self, brick: str, product: str, band: str) -> str:
        return f"{brick}/{coadd_filename(brick, product, band)}"

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def uri(self, brick: str, product: str, band: str) -> str:
        return f"s3://{self.bucket}/{self._key(self.path_for(brick, product, band))}"

    def _classify(self, exc: BaseException, uri: str, what: dict[str, str]) -> BaseException:
        """Map a client exception to CoaddNotFoundError, _TransientError or CoaddFetchError."""
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _S3_NOT_FOUND or status in (403, 404):
                return CoaddNotFoundError(f"no coadd object at {uri} ({code or status})", **what)
            if code in _S3_TRANSIENT or status == 429 or status >= 500:
                return _TransientError(f"{code or status}: {exc}")
            return CoaddFetchError(f"{uri}: S3 error {code or status}: {exc}")
        if isinstance(exc, _s3_transient_types()):
            return _TransientError(f"{type(exc).__name__}: {exc}")
        return CoaddFetchError(f"{uri}: {type(exc).__name__}: {exc}")

    def open(self, brick: str, product: str, band: str) -> Path:
        relative = self.path_for(brick, product, band)
        dest = self.cache_dir / self._key(relative)
        if dest.is_file():
            return dest
        uri = self.uri(brick, product, band)
        what = {"brick": brick, "product": product, "band": band}
        key = self._key(relative)

        def fetch(handle: IO[bytes]) -> int | None:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
                body = response["Body"]
                try:
                    for chunk in iter(lambda: body.read(_CHUNK), b""):
                        handle.write(chunk)
                finally:
                    body.close()
            except Exception as exc:
                mapped = self._classify(exc, uri, what)
                raise mapped from exc
            length = response.get("ContentLength")
            return None if length is None else int(length)

        return _atomic_fetch(dest, uri, fetch, self.policy)

    def has_brick(self, brick: str) -> bool:
        parse_brick_name(brick)
        local = self.cache_dir / self._key(brick)
        if local.is_dir() and any(local.glob(f"legacysurvey-{brick}-*.fits*")):
            return True
        prefix = self._key(brick) + "/"
        uri = f"s3://{self.bucket}/{prefix}"

        def attempt() -> bool:
            try:
                page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
            except Exception as exc:
                raise self._classify(exc, uri, {"brick": brick}) from exc
            return int(page.get("KeyCount", len(page.get("Contents", [])))) > 0

        return self.policy.run(attempt, f"{uri}: listing")


_HTTP_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class HttpCoaddSource(CoaddSource):
    """Legacy Surveys layout ``<base_url>/coadd/<RRR>/<brick>/<file>`` over HTTP(S).

    Files are downloaded with :mod:`urllib` into ``<cache_dir>/coadd/<RRR>/<brick>/<file>``
    (default ``cache_dir``: ``$STRONGLENS_HOME/cache/coadds``).
    5xx / 408 / 429, connection errors, timeouts and short reads (body shorter than
    ``Content-Length``) are retried with backoff; 404 / 410 raise
    :class:`CoaddNotFoundError` naming the URL; other statuses :class:`CoaddFetchError`.
    """

    def __init__(
        self,
        base_url: str = DR10_SOUTH_URL,
        cache_dir: str | os.PathLike[str] | None = None,
        attempts: int = 4,
        backoff_s: float = 1.0,
        *,
        max_backoff_s: float = 30.0,
        timeout_s: float = 60.0,
        user_agent: str = "stronglens_assets (coadd fetch)",
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not re.match(r"^https?://", base_url):
            raise ValueError(f"base_url must be an http(s):// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.cache_dir = _cache_root(cache_dir)
        self.timeout_s = timeout_s
        self.user_agent = user_agent
        self.policy = RetryPolicy(attempts, backoff_s, max_backoff_s, sleep)

    def path_for(self, brick: str, product: str, band: str) -> str:
        return dr10_coadd_path(brick, product, band)

    def uri(self, brick: str, product: str, band: str) -> str:
        return f"{self.base_url}/{self.path_for(brick, product, band)}"

    def _request(self, url: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            url, method=method, headers={"User-Agent": self.user_agent}
        )
        return urllib.request.urlopen(request, timeout=self.timeout_s)

    @staticmethod
    def _classify(exc: BaseException, url: str, what: dict[str, str]) -> BaseException:
        if isinstance(exc, urllib.error.HTTPError):
            if exc.code in (404, 410):
                return CoaddNotFoundError(f"no coadd file at {url} (HTTP {exc.code})", **what)
            if exc.code in _HTTP_TRANSIENT_STATUS or exc.code >= 500:
                return _TransientError(f"HTTP {exc.code} {exc.reason}")
            return CoaddFetchError(f"{url}: HTTP {exc.code} {exc.reason}")
        if isinstance(
            exc,
            urllib.error.URLError | http.client.HTTPException | ConnectionError | TimeoutError,
        ):
            return _TransientError(f"{type(exc).__name__}: {exc}")
        return CoaddFetchError(f"{url}: {type(exc).__name__}: {exc}")

    def open(self, brick: str, product: str, band: str) -> Path:
        relative = self.path_for(brick, product, band)
        dest = self.cache_dir / relative
        if dest.is_file():
            return dest
        url = self.uri(brick, product, band)
        what = {"brick": brick, "product": product, "band": band}

        def fetch(handle: IO[bytes]) -> int | None:
            try:
                with self._request(url) as response:
                    length = response.headers.get("Content-Length")
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        handle.write(chunk)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                raise self._classify(exc, url, what) from exc
            return None if length is None else int(length)

        return _atomic_fetch(dest, url, fetch, self.policy)

    def has_brick(self, brick: str, bands: tuple[str, ...] = BANDS) -> bool:
        """True if the cache or the server has the ``image`` file of any of ``bands``."""
        for band in bands:
            if (self.cache_dir / self.path_for(brick, "image", band)).is_file():
                return True
        for band in bands:
            url = self.uri(brick, "image", band)

            def attempt(url: str = url) -> bool:
                try:
                    with self._request(url, method="HEAD"):
                        return True
                except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                    mapped = self._classify(exc, url, {"brick": brick})
                    if isinstance(mapped, CoaddNotFoundError):
                        return False
                    raise mapped from exc

            if self.policy.run(attempt, f"{url}: HEAD"):
                return True
        return False


# --------------------------------------------------------------------------------------------
# Dagster resource
# --------------------------------------------------------------------------------------------
class CoaddSourceResource(dg.ConfigurableResource):
    """Dagster resource choosing a :class:`CoaddSource` from config.

    ``kind``: ``local`` (``root``: DR10 layout directory), ``s3`` (``bucket``, ``prefix``,
    ``s3``: dagster-aws :class:`S3Resource` carrying ``endpoint_url`` / region) or ``http``
    (``base_url``). Remote kinds cache under ``cache_dir`` (default
    ``$STRONGLENS_HOME/cache/coadds``).
    """

    kind: Literal["local", "s3", "http"] = "local"
    root: str | None = None
    bucket: str | None = None
    prefix: str = DEFAULT_S3_PREFIX
    base_url: str = DR10_SOUTH_URL
    cache_dir: str | None = None
    s3: S3Resource | None = None
    attempts: int = 4
    backoff_s: float = 1.0

    def _s3_client(self) -> Any:
        from stronglens_assets.resources.storage import s3_client_for

        return s3_client_for(self.s3 if self.s3 is not None else S3Resource())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """S3 kind: check the coadd bucket once at start-up (credentials, bucket exists)."""
        if self.cache_dir and self.kind != "local":
            sweep_stale_temp_files(self.cache_dir, recursive=True)
        if self.kind == "s3" and self.bucket:
            from stronglens_assets.resources.storage import verify_s3_bucket

            verify_s3_bucket(
                self.s3 if self.s3 is not None else S3Resource(), self.bucket, self.prefix
            )

    def get_source(self) -> CoaddSource:
        """Build the configured source (raises ``ValueError`` for missing settings)."""
        if self.kind == "local":
            if not self.root:
                raise ValueError("CoaddSourceResource(kind='local') needs root")
            return LocalCoaddSource(self.root)
        if self.kind == "s3":
            if not self.bucket:
                raise ValueError("CoaddSourceResource(kind='s3') needs bucket")
            return S3CoaddSource(
                self._s3_client(),
                self.bucket,
                self.prefix,
                self.cache_dir,
                attempts=self.attempts,
                backoff_s=self.backoff_s,
            )
        return HttpCoaddSource(
            self.base_url, self.cache_dir, attempts=self.attempts, backoff_s=self.backoff_s
        )
