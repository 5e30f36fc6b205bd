"""``configs/d06.yaml``: how the D06 experiments run (the published protocol, PROTOCOL.md).

What is injected (the source and lens priors) is the named prior ``prior`` of
``configs/injection_priors.yaml`` (the paper's ``paper_2026``); this file fixes the
experiments: the hosts, the grid's axes and counts, the bright-arc design and variants, the
probe's groups, the thresholds and every seed. The ``demo`` profile shrinks counts only, never
axes or code paths.

Random streams: every draw uses ``default_rng(SeedSequence([seed, *tags]))``
(:func:`derived_rng`), with string tags hashed to 64-bit integers, so each experiment part has
its own reproducible stream.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from stronglens_assets.config import StrictModel, load_profiled_config
from stronglens_assets.science.lensing.priors import BRIGHT_ARC_VARIANTS

D06_CONFIG_FILENAME = "d06.yaml"

__all__ = [
    "D06_CONFIG_FILENAME",
    "BrightArcDesign",
    "BrightArcVariantConfig",
    "D06Config",
    "GridDesign",
    "HostsConfig",
    "PerHostGainConfig",
    "ProbeDesign",
    "derived_rng",
    "load_d06_config",
]


def _increasing(name: str, values: list[float]) -> list[float]:
    if len(values) < 1 or any(not math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be finite numbers, got {values}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be strictly increasing, got {values}")
    return values


def _range(name: str, value: list[float]) -> list[float]:
    if len(value) != 2 or not value[0] < value[1]:
        raise ValueError(f"{name} must be [low, high] with low < high, got {value}")
    return value


class HostsConfig(StrictModel):
    """Hosts: non-lenses (label 0) of the manifest splits ``splits`` (the paper: val)."""

    splits: list[str] = Field(default_factory=lambda: ["val"], min_length=1)
    max_hosts: int = Field(default=20000, ge=1)
    seed: int = Field(default=1337, ge=0)


class GridDesign(StrictModel):
    """The completeness grid: theta_E x PSF FWHM x 5-sigma depth (bin centres)."""

    theta_e: list[float]
    psf_fwhm: list[float]
    depth_5sig: list[float]
    injections_per_cell: int = Field(ge=1)
    source_mag: list[float] = Field(default_factory=lambda: [23.0, 26.0])
    source_mag_bins: list[float] = Field(default_factory=lambda: [23.0, 24.0, 25.0, 26.0])
    lensed_mag_bins: list[float] = Field(default_factory=lambda: [18.0, 20.0, 22.0, 24.0, 27.0])
    max_retries: int = Field(default=5, ge=0)
    sufficient_min_injections: int = Field(default=1, ge=1)
    poisson_gain: float = Field(default=150.0, gt=0)
    seed: int = Field(default=1337, ge=0)

    @field_validator("theta_e", "psf_fwhm", "depth_5sig", "source_mag_bins", "lensed_mag_bins")
    @classmethod
    def _axes(cls, value: list[float], info: Any) -> list[float]:
        return _increasing(info.field_name, value)

    @field_validator("source_mag")
    @classmethod
    def _mag(cls, value: list[float]) -> list[float]:
        return _range("source_mag", value)

    @model_validator(mode="after")
    def _positive(self) -> GridDesign:
        for name in ("theta_e", "psf_fwhm"):
            if min(getattr(self, name)) <= 0:
                raise ValueError(f"{name} values must be > 0")
        return self


class BrightArcVariantConfig(StrictModel):
    """One bright-arc variant: Poisson gain (e-/nmgy, null = none), the preprocessing clip
    range (null = the model's), the beta_frac range (null = the design's)."""

    description: str
    poisson_gain: float | None = Field(default=None, gt=0)
    preprocessing_clip: float | None = Field(default=None, gt=0)
    beta_frac: list[float] | None = None

    @field_validator("beta_frac")
    @classmethod
    def _beta(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _range("beta_frac", value)


class BrightArcDesign(StrictModel):
    """The paired bright-arc design: the same ``n_hosts`` hosts (seed) for every bin and
    variant; per magnitude bin ``injections_per_bin`` injections."""

    n_hosts: int = Field(ge=1)
    seed: int = Field(default=42, ge=0)
    theta_e: float = Field(default=1.5, gt=0)
    mag_bins: list[float]
    injections_per_bin: int = Field(ge=1)
    beta_frac: list[float] = Field(default_factory=lambda: [0.1, 0.4])
    gallery_images: int = Field(default=64, ge=0)
    variants: dict[str, BrightArcVariantConfig]

    @field_validator("mag_bins")
    @classmethod
    def _bins(cls, value: list[float]) -> list[float]:
        if len(value) < 2:
            raise ValueError("mag_bins needs at least two edges")
        return _increasing("mag_bins", value)

    @field_validator("beta_frac")
    @classmethod
    def _beta(cls, value: list[float]) -> list[float]:
        return _range("beta_frac", value)


class ProbeDesign(StrictModel):
    """Linear probe: Tier-A vs injections at ``theta_e`` and ``source_mag`` with low and
    high beta_frac, and negatives; Tier-A vs Tier-B control. ``feature_blocks``: the model's
    submodules whose pooled outputs get a Fréchet distance each (the ResNets' ``layer1`` ..
    ``layer4``; EfficientNetV2-S: ``features.0`` ..)."""

    theta_e: float = Field(default=1.5, gt=0)
    source_mag: float = 19.0
    beta_frac_low: list[float] = Field(default_factory=lambda: [0.1, 0.3])
    beta_frac_high: list[float] = Field(default_factory=lambda: [0.7, 1.0])
    injections: int = Field(ge=2)
    negatives: int = Field(ge=2)
    folds: int = Field(default=5, ge=2)
    permutations: int = Field(default=1000, ge=1)
    bootstrap: int = Field(default=5000, ge=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    C: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=2000, ge=1)
    frechet_regularisation: float = Field(default=1e-6, ge=0)
    feature_blocks: list[str] = Field(
        default_factory=lambda: ["layer1", "layer2", "layer3", "layer4"]
    )
    seed: int = Field(default=42, ge=0)

    @field_validator("beta_frac_low", "beta_frac_high")
    @classmethod
    def _beta(cls, value: list[float], info: Any) -> list[float]:
        return _range(info.field_name, value)


class LensesConfig(StrictModel):
    """Real lenses (Tier-A scoring, probe): label-1 rows of these splits and sources."""

    splits: list[str] = Field(default_factory=lambda: ["val"], min_length=1)
    sources: list[str] = Field(default_factory=lambda: ["lenscat", "mock"], min_length=1)
    scoring_negatives: int = Field(default=3000, ge=1)


class PerHostGainConfig(StrictModel):
    """The gain sweep at each host's own gain ``g_b = S_b median(invvar_b)`` (e-/nmgy,
    :func:`~stronglens_assets.science.imaging.gain.host_gains`), ``S_b`` the sky per pixel of
    ``sky_mag_arcsec2`` (AB mag / arcsec^2 per band; ``default``: the embedded default's own
    sky, ``configs/demo_sky.yaml`` bands, on the mock survey, the dark-time DECam sky on DR10)."""

    enabled: bool = True
    sky_mag_arcsec2: Literal["default"] | dict[str, float] = "default"

    @field_validator("sky_mag_arcsec2")
    @classmethod
    def _sky(cls, value: str | dict[str, float]) -> str | dict[str, float]:
        if isinstance(value, dict):
            if not value:
                raise ValueError("sky_mag_arcsec2 must name every band ({band: mag}), got {}")
            bad = {b: v for b, v in value.items() if not (math.isfinite(v) and 10.0 < v <= 30.0)}
            if bad:
                raise ValueError(
                    f"sky_mag_arcsec2 must be sky surface brightnesses in (10, 30] AB mag / "
                    f"arcsec^2, got {bad}"
                )
        return value


class PoissonDiagnosticsConfig(StrictModel):
    """Pooled McNemar tests (name -> bright-arc bin labels; ``all`` is always added), the
    score-change histogram's bins, the gain sweep (e-/nmgy; empty: none) and the per-host gain
    beside it."""

    pools: dict[str, list[str]] = Field(
        default_factory=lambda: {"20_23": ["20-21", "21-22", "22-23"]}
    )
    histogram_bins: int = Field(default=40, ge=2)
    gain_sweep: list[float] = Field(default_factory=lambda: [150.0, 1000.0, 3000.0])
    per_host_gain: PerHostGainConfig = Field(default_factory=PerHostGainConfig)

    @field_validator("gain_sweep")
    @classmethod
    def _gains(cls, value: list[float]) -> list[float]:
        if any(not (math.isfinite(g) and g > 0) for g in value):
            raise ValueError(f"gain_sweep gains must be finite and > 0 (e-/nmgy), got {value}")
        return value


class D06Config(StrictModel):
    """``configs/d06.yaml`` (profile overrides applied)."""

    model_config_name: str = Field(alias="model_config", min_length=1)
    prior: str = "paper_2026"
    batch_size: int = Field(ge=1)
    chunk_size: int = Field(default=256, ge=1)
    fixed_thresholds: list[float] = Field(default_factory=lambda: [0.3, 0.5, 0.7], min_length=1)
    unresolved_fpr: Literal["skip", "error"] = "skip"
    hosts: HostsConfig = Field(default_factory=HostsConfig)
    lenses: LensesConfig = Field(default_factory=LensesConfig)
    grid: GridDesign
    bright_arc: BrightArcDesign
    linear_probe: ProbeDesign
    poisson_diagnostics: PoissonDiagnosticsConfig = Field(default_factory=PoissonDiagnosticsConfig)

    @field_validator("fixed_thresholds")
    @classmethod
    def _thresholds(cls, value: list[float]) -> list[float]:
        if any(not 0 <= t < 1 for t in value):
            raise ValueError(f"fixed_thresholds must lie in [0, 1), got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"fixed_thresholds must be distinct, got {value}")
        return sorted(value)

    @model_validator(mode="after")
    def _paired_variants(self) -> D06Config:
        variants, expected = set(self.bright_arc.variants), set(BRIGHT_ARC_VARIANTS)
        if variants != expected:
            raise ValueError(
                f"bright_arc.variants must be exactly the bright_arc partitions "
                f"{list(BRIGHT_ARC_VARIANTS)}; missing {sorted(expected - variants)}, "
                f"unknown {sorted(variants - expected)}"
            )
        if 0.3 not in self.fixed_thresholds or 0.5 not in self.fixed_thresholds:
            raise ValueError("fixed_thresholds must include 0.3 and 0.5 (the published rates)")
        return self


def load_d06_config(config_dir: str | Path, profile: str) -> D06Config:
    """Load ``<config_dir>/d06.yaml`` for ``profile`` (ConfigError names file and field)."""
    return load_profiled_config(Path(config_dir) / D06_CONFIG_FILENAME, D06Config, profile)


def _tag_int(tag: int | str) -> int:
    if isinstance(tag, int | np.integer):
        if tag < 0:
            raise ValueError(f"integer tags must be >= 0, got {tag}")
        return int(tag)
    return int.from_bytes(hashlib.sha256(str(tag).encode()).digest()[:8], "little")


def derived_rng(seed: int, *tags: int | str) -> np.random.Generator:
    """Independent generator for ``(seed, *tags)`` (strings hashed to 64-bit integers)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(_tag_int, tags)]))
