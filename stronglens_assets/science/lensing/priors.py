"""Injection priors (``configs/injection_priors.yaml``): distributions, grid axes, bright arcs.

Parameters of one parametric injection (seeds, Reproducibility Guide 2.2 and 3.2: a Sérsic
source lensed by an SIS and added to a real DR10 host cutout):

=============== ========= ===============================================================
name            unit      meaning
=============== ========= ===============================================================
``theta_e``     arcsec    SIS Einstein radius (> 0)
``n_sersic``    -         Sérsic index of the source (> 0)
``r_eff``       arcsec    circularised half-light radius of the source (lenstronomy's
                          ``R_sersic``; > 0)
``axis_ratio``  -         source axis ratio q = b/a, in (0, 1]
``source_mag``  AB mag    unlensed total magnitude of the source in ``reference_band``
``beta_frac``   -         source offset in units of theta_E: the source centre lies at
                          ``beta_frac * theta_e`` from the lens, at a uniform random angle
=============== ========= ===============================================================

The other bands' magnitudes are ``source_mag + colour[band]`` with colours drawn from
``source_colours``; fluxes are nanomaggies at the AB zero point 22.5. The source position
angle is uniform in [0, pi) and the offset angle uniform in [0, 2 pi), always.

Distributions (``dist``): ``uniform`` on [low, high]; ``loguniform`` (uniform in ln x, low > 0);
``uniform_area`` (density proportional to x on [low, high]: a source uniform in area of the
annulus, the natural prior for ``beta_frac``); ``normal`` (mean, std; only for colours, which
are unbounded); ``fixed`` (value). Everything is validated on load: an inverted range, a
value outside a parameter's physical domain (e.g. a negative theta_E) or an unknown key is a
:class:`~stronglens_assets.config.ConfigError` naming the file and the field.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from stronglens_assets.config import StrictModel, load_profiled_config, load_yaml
from stronglens_assets.science.core.hashing import sha256_bytes, sha256_file
from stronglens_assets.science.core.units import AB_ZERO_POINT, mag_to_nanomaggies
from stronglens_assets.science.lensing.injection import N_SERSIC_RANGE

PRIORS_CONFIG_FILENAME = "injection_priors.yaml"

#: D06 injection-recovery grid variants (ARCHITECTURE: ``grid_completeness``).
GRID_VARIANTS: tuple[str, ...] = ("no_poisson", "poisson")
#: D06 bright-arc variants (seeds, Reproducibility Guide 4.2).
BRIGHT_ARC_VARIANTS: tuple[str, ...] = (
    "baseline",
    "poisson",
    "clip20",
    "gain_1e12",
    "poisson_clip20",
    "unrestricted",
)

#: The six injection parameters, in the grid's axis order (slowest-varying first).
PARAMETERS: tuple[str, ...] = (
    "theta_e",
    "source_mag",
    "beta_frac",
    "n_sersic",
    "r_eff",
    "axis_ratio",
)

#: Physical domain of each parameter: (low, high, low_inclusive, high_inclusive).
DOMAINS: dict[str, tuple[float, float, bool, bool]] = {
    "theta_e": (0.0, math.inf, False, False),
    # what the injection engine renders (science.lensing.injection.N_SERSIC_RANGE): a prior outside
    # it fails at load, not in the middle of a grid
    "n_sersic": (*N_SERSIC_RANGE, True, True),
    "r_eff": (0.0, math.inf, False, False),
    "axis_ratio": (0.0, 1.0, False, True),
    "source_mag": (0.0, 40.0, True, True),
    "beta_frac": (0.0, math.inf, True, False),
}


def _check_in_domain(name: str, low: float, high: float) -> None:
    """Raise ``ValueError`` if [low, high] is not inside the domain of ``name``."""
    lo, hi, lo_inc, hi_inc = DOMAINS[name]
    below = low < lo or (low == lo and not lo_inc)
    above = high > hi or (high == hi and not hi_inc)
    if below or above:
        left = "[" if lo_inc else "("
        right = "]" if hi_inc else ")"
        raise ValueError(
            f"{name} values must lie in {left}{lo}, {hi}{right}; got the range [{low}, {high}]"
        )


class Distribution(StrictModel):
    """A one-dimensional distribution (see the module docstring for the kinds)."""

    dist: Literal["uniform", "loguniform", "uniform_area", "normal", "fixed"]
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Distribution:
        given = {k for k in ("low", "high", "mean", "std", "value") if getattr(self, k) is not None}
        needed = {
            "uniform": {"low", "high"},
            "loguniform": {"low", "high"},
            "uniform_area": {"low", "high"},
            "normal": {"mean", "std"},
            "fixed": {"value"},
        }[self.dist]
        if given != needed:
            raise ValueError(
                f"dist {self.dist!r} takes exactly {sorted(needed)}; got {sorted(given)}"
            )
        for key in given:
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{key} must be finite, got {getattr(self, key)}")
        if needed == {"low", "high"} and self.low is not None and self.high is not None:
            if not self.low < self.high:
                raise ValueError(
                    f"inverted or empty range: low ({self.low}) must be < high ({self.high})"
                )
            if self.dist == "loguniform" and self.low <= 0:
                raise ValueError(f"loguniform needs low > 0, got {self.low}")
            if self.dist == "uniform_area" and self.low < 0:
                raise ValueError(f"uniform_area needs low >= 0, got {self.low}")
        if self.dist == "normal" and not (self.std is not None and self.std > 0):
            raise ValueError(f"std must be > 0, got {self.std}")
        return self

    def support(self) -> tuple[float, float]:
        """Smallest closed interval holding every draw."""
        if self.dist == "fixed":
            return float(self.value), float(self.value)  # type: ignore[arg-type]
        if self.dist == "normal":
            return -math.inf, math.inf
        return float(self.low), float(self.high)  # type: ignore[arg-type]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` float64 draws (consumes exactly one ``rng`` call of size ``n``)."""
        if self.dist == "fixed":
            rng.random(n)  # keep the stream position independent of the kind
            return np.full(n, float(self.value))  # type: ignore[arg-type]
        if self.dist == "normal":
            return rng.normal(float(self.mean), float(self.std), n)  # type: ignore[arg-type]
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        u = rng.random(n)
        if self.dist == "uniform":
            return low + (high - low) * u
        if self.dist == "loguniform":
            return np.exp(math.log(low) + (math.log(high) - math.log(low)) * u)
        # uniform_area: p(x) ~ x on [low, high] -> x^2 uniform on [low^2, high^2]
        return np.sqrt(low**2 + (high**2 - low**2) * u)


class ParameterDistributions(StrictModel):
    """The prior of each injection parameter (all six required)."""

    theta_e: Distribution
    source_mag: Distribution
    beta_frac: Distribution
    n_sersic: Distribution
    r_eff: Distribution
    axis_ratio: Distribution

    @model_validator(mode="after")
    def _in_domain(self) -> ParameterDistributions:
        for name in PARAMETERS:
            low, high = getattr(self, name).support()
            try:
                _check_in_domain(name, low, high)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self


class PartialDistributions(StrictModel):
    """Overrides of some parameters' priors (the rest come from ``distributions``)."""

    theta_e: Distribution | None = None
    source_mag: Distribution | None = None
    beta_frac: Distribution | None = None
    n_sersic: Distribution | None = None
    r_eff: Distribution | None = None
    axis_ratio: Distribution | None = None

    @model_validator(mode="after")
    def _in_domain(self) -> PartialDistributions:
        for name in PARAMETERS:
            dist = getattr(self, name)
            if dist is None:
                continue
            try:
                _check_in_domain(name, *dist.support())
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self

    def merged(self, base: ParameterDistributions) -> ParameterDistributions:
        """``base`` with these overrides applied."""
        values = {name: getattr(self, name) or getattr(base, name) for name in PARAMETERS}
        return ParameterDistributions(**values)


class GridAxes(StrictModel):
    """Grid points of each axis (arcsec, AB mag, unitless as above); cells are their product."""

    theta_e: list[float] = Field(min_length=1)
    source_mag: list[float] = Field(min_length=1)
    beta_frac: list[float] = Field(min_length=1)
    n_sersic: list[float] = Field(min_length=1)
    r_eff: list[float] = Field(min_length=1)
    axis_ratio: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid_axes(self) -> GridAxes:
        for name in PARAMETERS:
            values = getattr(self, name)
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name}: grid values must be finite, got {values}")
            if any(b <= a for a, b in itertools.pairwise(values)):
                raise ValueError(f"{name}: grid values must be strictly increasing, got {values}")
            try:
                _check_in_domain(name, min(values), max(values))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self

    @property
    def n_cells(self) -> int:
        return math.prod(len(getattr(self, name)) for name in PARAMETERS)


class BrightArcVariant(StrictModel):
    """One bright-arc variant (a ``bright_arc`` partition).

    ``poisson``: add Poisson noise of the arc flux (gain ``gain`` if given, else the priors'
    ``poisson_gain``, e-/nanomaggy); ``clip``: clip the injected arc as the injection engine's
    ``inject(clip=...)`` defines it (``null``: no clipping); ``restricted``: draw theta_E and
    beta_frac from ``bright_arc.restricted`` (arc-forming geometry) instead of the full priors.
    """

    description: str
    poisson: bool = False
    gain: float | None = Field(default=None, gt=0)
    clip: float | None = Field(default=None)
    restricted: bool = True

    @model_validator(mode="after")
    def _gain_needs_poisson(self) -> BrightArcVariant:
        if self.gain is not None and not self.poisson:
            raise ValueError("gain is set but poisson is false: a gain only applies with noise")
        return self


class BrightArcConfig(StrictModel):
    """Bright-arc experiment: bright sources, magnitude bins, the six variants."""

    source_mag: Distribution
    mag_bins: list[float] = Field(min_length=2)
    restricted: PartialDistributions
    variants: dict[str, BrightArcVariant]

    @field_validator("mag_bins")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"bin edges must be strictly increasing, got {value}")
        return value

    @field_validator("source_mag")
    @classmethod
    def _mag_domain(cls, value: Distribution) -> Distribution:
        _check_in_domain("source_mag", *value.support())
        return value

    @field_validator("variants")
    @classmethod
    def _all_variants(cls, value: dict[str, BrightArcVariant]) -> dict[str, BrightArcVariant]:
        if set(value) != set(BRIGHT_ARC_VARIANTS):
            missing = sorted(set(BRIGHT_ARC_VARIANTS) - set(value))
            extra = sorted(set(value) - set(BRIGHT_ARC_VARIANTS))
            raise ValueError(
                f"variants must be exactly {list(BRIGHT_ARC_VARIANTS)}; "
                f"missing {missing}, unknown {extra}"
            )
        return value


class InjectionPriors(StrictModel):
    """``configs/injection_priors.yaml`` (profile overrides applied)."""

    version: str
    bands: tuple[str, ...] = ("g", "r", "z")
    reference_band: str = "r"
    zero_point: float = AB_ZERO_POINT
    distributions: ParameterDistributions
    source_colours: dict[str, Distribution]
    poisson_gain: dict[str, float]
    grid: GridAxes
    bright_arc: BrightArcConfig
    probe: PartialDistributions

    @model_validator(mode="after")
    def _bands(self) -> InjectionPriors:
        if self.reference_band not in self.bands:
            raise ValueError(f"reference_band {self.reference_band!r} is not in {self.bands}")
        others = sorted(set(self.bands) - {self.reference_band})
        if sorted(self.source_colours) != others:
            raise ValueError(
                f"source_colours must give a colour (m_band - m_{self.reference_band}) for "
                f"exactly {others}; got {sorted(self.source_colours)}"
            )
        if sorted(self.poisson_gain) != sorted(self.bands):
            raise ValueError(
                f"poisson_gain must give e-/nanomaggy for exactly {list(self.bands)}; "
                f"got {sorted(self.poisson_gain)}"
            )
        bad = {b: g for b, g in self.poisson_gain.items() if not (g > 0 and math.isfinite(g))}
        if bad:
            raise ValueError(f"poisson_gain must be finite and > 0, got {bad}")
        return self

    def gain_array(self, gain: float | None = None) -> np.ndarray:
        """Per-band gain (e-/nanomaggy) in ``bands`` order; ``gain`` overrides every band."""
        if gain is not None:
            return np.full(len(self.bands), float(gain))
        return np.array([self.poisson_gain[b] for b in self.bands], dtype=np.float64)


def load_priors(
    config_dir: str | os.PathLike[str], profile: str, filename: str = PRIORS_CONFIG_FILENAME
) -> InjectionPriors:
    """Load and validate the priors of ``profile`` (``ConfigError`` names file and field)."""
    return load_profiled_config(Path(config_dir) / filename, InjectionPriors, profile)


def priors_sha256(priors: InjectionPriors) -> str:
    """sha256 of the canonical JSON of the resolved priors (sorted keys, profile applied)."""
    text = json.dumps(priors.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode())


def priors_file_sha256(config_dir: str | os.PathLike[str]) -> str:
    """sha256 of the YAML file's bytes (what the seeds' provenance records)."""
    path = Path(config_dir) / PRIORS_CONFIG_FILENAME
    load_yaml(path)  # clear error if missing / not YAML
    return sha256_file(path)


def grid_cells(grid: GridAxes) -> pd.DataFrame:
    """One row per cell of the grid: ``cell`` (0-based) and the six axis values.

    Cartesian product in :data:`PARAMETERS` order, the last axis varying fastest.
    """
    axes = [getattr(grid, name) for name in PARAMETERS]
    rows = list(itertools.product(*axes))
    table = pd.DataFrame(rows, columns=list(PARAMETERS), dtype=np.float64)
    table.insert(0, "cell", np.arange(len(table), dtype=np.int64))
    return table


@dataclass(frozen=True)
class InjectionParameters:
    """Parameters of N injections (arrays of length N; ``flux``/``mags`` are (N, B)).

    ``source_x``/``source_y``: source centre relative to the lens in arcsec (+x = +column,
    +y = +row); ``position_angle``: source major axis, radians counter-clockwise from +x;
    ``flux``: unlensed source flux per band, nanomaggies; ``mags``: the same in AB mag.
    """

    theta_e: np.ndarray
    source_mag: np.ndarray
    beta_frac: np.ndarray
    n_sersic: np.ndarray
    r_eff: np.ndarray
    axis_ratio: np.ndarray
    source_x: np.ndarray
    source_y: np.ndarray
    position_angle: np.ndarray
    mags: np.ndarray
    flux: np.ndarray

    def __len__(self) -> int:
        return len(self.theta_e)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as a float64 array (for ``.npz`` files)."""
        return {
            name: np.asarray(getattr(self, name), dtype=np.float64)
            for name in self.__dataclass_fields__
        }

    def take(self, index: np.ndarray | slice) -> InjectionParameters:
        return InjectionParameters(**{k: v[index] for k, v in self.arrays().items()})


def sample_parameters(
    priors: InjectionPriors,
    n: int,
    rng: np.random.Generator,
    distributions: ParameterDistributions | None = None,
    fixed: dict[str, float] | None = None,
) -> InjectionParameters:
    """Draw ``n`` injections.

    Args:
        distributions: priors of the six parameters (default ``priors.distributions``).
        fixed: parameter values shared by all ``n`` (a grid cell); they replace the draws.

    Draw order (fixed, so the same ``rng`` state gives the same values): the six parameters in
    :data:`PARAMETERS` order, then the colours in ``bands`` order, the offset angle and the
    position angle. A fixed parameter still consumes its draw.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    dists = distributions or priors.distributions
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown fixed parameter(s) {unknown}; known: {list(PARAMETERS)}")
    values: dict[str, np.ndarray] = {}
    for name in PARAMETERS:
        drawn = getattr(dists, name).sample(n, rng)
        if name in fixed:
            value = float(fixed[name])
            _check_in_domain(name, value, value)
            drawn = np.full(n, value)
        values[name] = drawn
    mags = np.empty((n, len(priors.bands)), dtype=np.float64)
    for band_index, band in enumerate(priors.bands):
        if band == priors.reference_band:
            mags[:, band_index] = values["source_mag"]
        else:
            mags[:, band_index] = values["source_mag"] + priors.source_colours[band].sample(n, rng)
    offset_angle = rng.uniform(0.0, 2.0 * math.pi, n)
    position_angle = rng.uniform(0.0, math.pi, n)
    beta = values["beta_frac"] * values["theta_e"]
    return InjectionParameters(
        **values,
        source_x=beta * np.cos(offset_angle),
        source_y=beta * np.sin(offset_angle),
        position_angle=position_angle,
        mags=mags,
        flux=mag_to_nanomaggies(mags, priors.zero_point),
    )


def bright_arc_distributions(priors: InjectionPriors, variant: str) -> ParameterDistributions:
    """Priors of a bright-arc variant: bright ``source_mag``, plus the restricted geometry
    (``bright_arc.restricted``) unless the variant is unrestricted."""
    config = priors.bright_arc
    if variant not in config.variants:
        raise KeyError(f"unknown bright-arc variant {variant!r}; known: {sorted(config.variants)}")
    base = priors.distributions.model_copy(update={"source_mag": config.source_mag})
    if config.variants[variant].restricted:
        return config.restricted.merged(base)
    return ParameterDistributions(**{name: getattr(base, name) for name in PARAMETERS})


def probe_distributions(priors: InjectionPriors) -> ParameterDistributions:
    """Priors of the linear probe's injections (low beta_frac: ``probe`` overrides)."""
    return priors.probe.merged(priors.distributions)


def priors_as_dict(priors: InjectionPriors) -> dict[str, Any]:
    """JSON-able dict of the resolved priors."""
    return priors.model_dump(mode="json")
