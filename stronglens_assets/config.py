"""YAML configuration: loading with clear errors, and the footprint configuration.

Configs live in ``configs/`` (``STRONGLENS_CONFIG_DIR``). Each is validated by a pydantic
model that forbids unknown fields, so a typo fails at load time with the file and the field
named, before any asset runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.catalogs.bricks import BrickNameError, parse_brick_name
from stronglens_assets.science.catalogs.healpix import MAX_PARTITION_NSIDE

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(StronglensError, ValueError):
    """A configuration file is missing, unreadable or invalid; the message names file and field."""


class StrictModel(BaseModel):
    """Base for config models: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"  {field}: {item['msg']}")
    return f"invalid config {path}:\n" + "\n".join(lines)


def validate_config(data: dict[str, Any], model: type[ModelT], path: Path) -> ModelT:
    """Validate a mapping against ``model``; :class:`ConfigError` names the file and fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc)) from exc


def load_config(path: str | os.PathLike[str], model: type[ModelT]) -> ModelT:
    """Load a YAML file and validate it against ``model``."""
    path = Path(path)
    return validate_config(load_yaml(path), model, path)


PROFILES_FIELD = "profiles"
ProfileName = Literal["demo", "full"]
#: Size profiles: ``demo`` shrinks sizes, epochs and widths for the embedded default (never the
#: code path); ``full`` is the survey-scale configuration of the seeds.
PROFILES: tuple[ProfileName, ...] = ("demo", "full")


def load_profiled_config(path: str | os.PathLike[str], model: type[ModelT], profile: str) -> ModelT:
    """Load a YAML config whose optional ``profiles:`` mapping holds per-profile overrides.

    The file's top-level fields are the full-size (``full``) configuration; ``profiles.<name>``
    (e.g. ``profiles.demo``) overrides some of them, merged recursively into mappings. Only the
    size of the work may differ between profiles, never the code path. Unknown profile names
    and unknown override fields are errors naming the file and field.
    """
    path = Path(path)
    data = load_yaml(path)
    profiles = data.pop(PROFILES_FIELD, None) or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"invalid config {path}:\n  {PROFILES_FIELD}: must be a mapping")
    unknown = sorted(set(profiles) - set(PROFILES))
    if unknown:
        raise ConfigError(
            f"invalid config {path}:\n  {PROFILES_FIELD}: unknown profile(s) {unknown}; "
            f"known: {', '.join(PROFILES)}"
        )
    overrides = profiles.get(profile) or {}
    if not isinstance(overrides, dict):
        raise ConfigError(
            f"invalid config {path}:\n  {PROFILES_FIELD}.{profile}: must be a mapping"
        )
    return validate_config(_merge(data, overrides), model, path)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate_brick_names(names: list[str]) -> list[str]:
    """Check every brick name exists in the DR10 grid; reject duplicates."""
    seen: set[str] = set()
    for name in names:
        try:
            parse_brick_name(name)
        except BrickNameError as exc:
            raise ValueError(str(exc)) from exc
        if name in seen:
            raise ValueError(f"brick {name!r} is listed twice")
        seen.add(name)
    return names


class FootprintConfig(StrictModel):
    """The sky footprint in use: it decides the HEALPix partition set.

    ``bricks`` lists DR10 brick names; or ``bricks_file`` names a YAML file (relative to the
    config directory) whose ``bricks`` list is used, e.g. the demo sky.
    """

    partition_nside: int = 16
    bricks: list[str] | None = None
    bricks_file: str | None = None

    @field_validator("partition_nside")
    @classmethod
    def _nside_power_of_two(cls, value: int) -> int:
        if value < 1 or value & (value - 1) or value > MAX_PARTITION_NSIDE:
            raise ValueError(
                f"must be a power of two between 1 and {MAX_PARTITION_NSIDE} "
                f"(at most {12 * MAX_PARTITION_NSIDE**2} partitions), got {value}"
            )
        return value

    @field_validator("bricks")
    @classmethod
    def _valid_bricks(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else validate_brick_names(value)

    @model_validator(mode="after")
    def _one_brick_source(self) -> FootprintConfig:
        if (self.bricks is None) == (self.bricks_file is None):
            raise ValueError("give exactly one of 'bricks' or 'bricks_file'")
        return self


class Footprint(StrictModel):
    """Resolved footprint: brick names and the partition nside."""

    partition_nside: int
    bricks: tuple[str, ...]


def load_footprint(config_dir: Path, filename: str | os.PathLike[str] | None = None) -> Footprint:
    """Load the footprint config (default ``<config_dir>/footprint.yaml``; a relative
    ``filename`` is looked up in ``config_dir``) and resolve its brick list."""
    path = Path(filename) if filename is not None else config_dir / "footprint.yaml"
    if not path.is_absolute() and not path.exists():
        path = config_dir / path
    config = load_config(path, FootprintConfig)
    bricks = config.bricks
    if bricks is None:
        bricks_path = config_dir / str(config.bricks_file)
        listed = load_yaml(bricks_path).get("bricks")
        if not isinstance(listed, list) or not listed:
            raise ConfigError(f"{bricks_path}: field 'bricks' must be a non-empty list of names")
        try:
            bricks = validate_brick_names([str(name) for name in listed])
        except ValueError as exc:
            raise ConfigError(f"{bricks_path}: field 'bricks': {exc}") from exc
    return Footprint(partition_nside=config.partition_nside, bricks=tuple(bricks))
