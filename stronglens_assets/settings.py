"""Environment selection, paths and environment variables, in one place.

Two environments, chosen by ``STRONGLENS_ENV``:

``local`` (default)
    No network, no credentials. Data source: the embedded mock DR10 survey. Storage: the
    local filesystem under ``$STRONGLENS_HOME`` (default ``./.stronglens``); the persistent
    Dagster instance lives in ``$STRONGLENS_HOME/dagster_home``.
``s3``
    Same assets; storage on S3 (``STRONGLENS_S3_BUCKET``, ``STRONGLENS_S3_PREFIX``,
    optional ``STRONGLENS_S3_ENDPOINT_URL`` for S3-compatible servers). Credentials come from
    the standard AWS chain (env vars, profile, instance role), never from this repository.

Every setting can be overridden by an environment variable; :func:`load_settings` reads
them once and validates them, so a typo fails at start-up with the variable named. This is
the only module that touches ``os.environ`` (a test enforces it): the production executor
(:func:`executor_name`), ``DAGSTER_HOME`` for the local instance (:func:`export_dagster_home`)
and cuBLAS determinism on CUDA (:func:`enable_deterministic_cuda`) live here too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stronglens_assets.config import PROFILES, ProfileName
from stronglens_assets.errors import StronglensError

EnvironmentName = Literal["local", "s3"]
ENVIRONMENTS: tuple[EnvironmentName, ...] = ("local", "s3")

#: Project root of a source checkout (where ``configs/`` lives).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_S3_PREFIX = "stronglens_calibration"
_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class SettingsError(StronglensError, ValueError):
    """A setting (environment variable) has an invalid value."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process.

    Attributes:
        env: ``"local"`` or ``"s3"``.
        home: local working directory (storage root in ``local``, caches in both).
        config_dir: directory of the YAML configs (``configs/`` of the checkout).
        s3_bucket, s3_prefix, s3_endpoint_url, s3_region: S3 storage location (``s3`` only).
        dr10_bucket, dr10_sweep_prefix, dr10_coadd_prefix: where real DR10 inputs live on S3
            (``s3`` only; bucket defaults to ``s3_bucket``).
        coadd_url: when set, coadds come from this Legacy Surveys base URL over HTTP.
        footprint_file: footprint config (``STRONGLENS_FOOTPRINT``); default
            ``<config_dir>/footprint.yaml``.
        profile: ``demo`` or ``full`` (``STRONGLENS_PROFILE``; default ``demo`` in ``local``,
            ``full`` in ``s3``): which ``profiles:`` overrides of a config file apply.
    """

    env: EnvironmentName
    home: Path
    config_dir: Path
    s3_bucket: str | None = None
    s3_prefix: str = DEFAULT_S3_PREFIX
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    dr10_bucket: str | None = None
    dr10_sweep_prefix: str = "dr10/sweep/10.1"
    dr10_coadd_prefix: str = "dr10/coadd_cache"
    coadd_url: str | None = None
    footprint_file: str | None = None
    profile: ProfileName = "demo"

    @property
    def dagster_home(self) -> Path:
        """Directory of this environment's Dagster instance (``$DAGSTER_HOME`` of ``stronglens
        demo`` and ``stronglens ui``): ``<home>/dagster_home`` for ``local``,
        ``<home>/dagster_home_s3/<bucket>/<prefix>`` for ``s3``, so runs, materializations and
        checks of one environment (or bucket) never show up in another's."""
        if self.env == "s3":
            return self.home / "dagster_home_s3" / str(self.s3_bucket) / (self.s3_prefix or "_")
        return self.home / "dagster_home"

    def environment_variables(self) -> dict[str, str]:
        """The ``STRONGLENS_*`` variables (beyond the defaults) that reproduce these settings in
        another shell: what a printed command needs in front of it to work as printed."""
        variables: dict[str, str] = {}
        if self.env != "local":
            variables["STRONGLENS_ENV"] = self.env
        if self.home != Path(".stronglens").resolve():
            variables["STRONGLENS_HOME"] = str(self.home)
        if self.config_dir.resolve() != (PROJECT_ROOT / "configs").resolve():
            variables["STRONGLENS_CONFIG_DIR"] = str(self.config_dir.resolve())
        if self.footprint_file:
            variables["STRONGLENS_FOOTPRINT"] = str(Path(self.footprint_file).resolve())
        if self.profile != ("full" if self.env == "s3" else "demo"):
            variables["STRONGLENS_PROFILE"] = self.profile
        if self.env == "s3":
            variables["STRONGLENS_S3_BUCKET"] = str(self.s3_bucket)
            if self.s3_prefix != DEFAULT_S3_PREFIX:
                variables["STRONGLENS_S3_PREFIX"] = self.s3_prefix
            if self.s3_endpoint_url:
                variables["STRONGLENS_S3_ENDPOINT_URL"] = self.s3_endpoint_url
            if self.dr10_bucket and self.dr10_bucket != self.s3_bucket:
                variables["STRONGLENS_DR10_BUCKET"] = self.dr10_bucket
        return variables

    @property
    def storage_root(self) -> Path:
        """Root of asset outputs in the ``local`` environment."""
        return self.home / "storage"

    @property
    def mock_survey_root(self) -> Path:
        """Where the embedded mock DR10 survey is written (``local`` environment)."""
        return self.home / "mock_survey"

    @property
    def cache_dir(self) -> Path:
        """Local cache (downloaded coadds and the like), used in every environment."""
        return self.home / "cache"

    @property
    def storage_uri(self) -> str:
        """Human-readable location of asset outputs."""
        if self.env == "s3":
            return f"s3://{self.s3_bucket}/{self.s3_prefix}".rstrip("/")
        return str(self.storage_root)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from ``environ`` (default: ``os.environ``).

    Raises:
        SettingsError: unknown ``STRONGLENS_ENV``, missing bucket in ``s3``, malformed bucket,
            prefix or endpoint URL. The message names the variable.
    """
    environ = os.environ if environ is None else environ
    env = environ.get("STRONGLENS_ENV", "local").strip().lower() or "local"
    if env not in ENVIRONMENTS:
        raise SettingsError(
            f"STRONGLENS_ENV={environ.get('STRONGLENS_ENV')!r} is not a known environment; "
            f"choose one of {', '.join(ENVIRONMENTS)}"
        )
    home = Path(environ.get("STRONGLENS_HOME", "./.stronglens")).expanduser().resolve()
    config_dir = Path(
        environ.get("STRONGLENS_CONFIG_DIR", str(PROJECT_ROOT / "configs"))
    ).expanduser()
    if not config_dir.is_dir():
        raise SettingsError(f"STRONGLENS_CONFIG_DIR={str(config_dir)!r} is not a directory")

    prefix = environ.get("STRONGLENS_S3_PREFIX", DEFAULT_S3_PREFIX).strip("/")
    if prefix and not re.fullmatch(r"[A-Za-z0-9_.\-/]+", prefix):
        raise SettingsError(
            f"STRONGLENS_S3_PREFIX={prefix!r} may only contain letters, digits, '_', '.', '-', '/'"
        )
    endpoint = environ.get("STRONGLENS_S3_ENDPOINT_URL") or None
    if endpoint is not None and not re.match(r"^https?://[^\s/]+", endpoint):
        raise SettingsError(f"STRONGLENS_S3_ENDPOINT_URL={endpoint!r} must be an http(s):// URL")
    bucket = environ.get("STRONGLENS_S3_BUCKET") or None
    if env == "s3":
        if bucket is None:
            raise SettingsError("STRONGLENS_ENV=s3 needs STRONGLENS_S3_BUCKET (the bucket name)")
        if not _BUCKET_PATTERN.match(bucket):
            raise SettingsError(f"STRONGLENS_S3_BUCKET={bucket!r} is not a valid S3 bucket name")
    region = environ.get("STRONGLENS_S3_REGION") or environ.get("AWS_REGION") or None
    coadd_url = environ.get("STRONGLENS_COADD_URL") or None
    if coadd_url is not None and not re.match(r"^https?://[^\s/]+", coadd_url):
        raise SettingsError(f"STRONGLENS_COADD_URL={coadd_url!r} must be an http(s):// URL")
    dr10_bucket = environ.get("STRONGLENS_DR10_BUCKET") or bucket
    if dr10_bucket is not None and not _BUCKET_PATTERN.match(dr10_bucket):
        raise SettingsError(f"STRONGLENS_DR10_BUCKET={dr10_bucket!r} is not a valid bucket name")
    profile = environ.get("STRONGLENS_PROFILE", "").strip().lower() or (
        "full" if env == "s3" else "demo"
    )
    if profile not in PROFILES:
        raise SettingsError(
            f"STRONGLENS_PROFILE={environ.get('STRONGLENS_PROFILE')!r} is not a known profile; "
            f"choose one of {', '.join(PROFILES)}"
        )
    return Settings(
        profile=profile,  # type: ignore[arg-type]
        env=env,  # type: ignore[arg-type]
        home=home,
        config_dir=config_dir,
        s3_bucket=bucket,
        s3_prefix=prefix,
        s3_endpoint_url=endpoint,
        s3_region=region,
        dr10_bucket=dr10_bucket,
        dr10_sweep_prefix=environ.get("STRONGLENS_DR10_SWEEP_PREFIX", "dr10/sweep/10.1"),
        dr10_coadd_prefix=environ.get("STRONGLENS_DR10_COADD_PREFIX", "dr10/coadd_cache"),
        coadd_url=coadd_url,
        footprint_file=environ.get("STRONGLENS_FOOTPRINT") or None,
    )


#: Variable selecting the run executor in production (set by the k8s run launcher).
EXECUTOR_ENV = "STRONGLENS_EXECUTOR"
ExecutorName = Literal["default", "k8s"]


def executor_name(environ: Mapping[str, str] | None = None) -> ExecutorName:
    """``"k8s"`` when ``STRONGLENS_EXECUTOR=k8s``, ``"default"`` when it is unset, empty,
    ``default`` or ``multiprocess``; :class:`SettingsError` otherwise."""
    environ = os.environ if environ is None else environ
    value = environ.get(EXECUTOR_ENV, "").strip().lower()
    if value in ("", "default", "multiprocess"):
        return "default"
    if value != "k8s":
        raise SettingsError(f"{EXECUTOR_ENV}={value!r}: use 'k8s' or leave it unset")
    return "k8s"


def export_dagster_home(home: Path) -> None:
    """Point Dagster at the instance in ``home`` (``DAGSTER_HOME``) for this process and the
    processes it starts."""
    os.environ["DAGSTER_HOME"] = str(home)


#: cuBLAS workspace setting that makes CUDA matrix products deterministic.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def enable_deterministic_cuda() -> None:
    """Ask cuBLAS for deterministic results (``CUBLAS_WORKSPACE_CONFIG``, unless the user set
    it); call before the first CUDA work of the process (the compute resource does)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
