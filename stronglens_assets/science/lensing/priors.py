"""Injection priors (``configs/injection_priors.yaml``): named injection models.

**Named priors** (``priors``; ``default_prior`` is the published study's ``paper_2026``): how to
draw one injection of :func:`~stronglens_assets.science.lensing.injection.render_arcs`, all
per injection (:func:`sample_injections`):

================== ========= ===============================================================
name               unit      meaning
================== ========= ===============================================================
``theta_e``        arcsec    Einstein radius (lens; usually fixed by the experiment)
``source_mag``     AB mag    unlensed source magnitude in ``reference_band`` (usually a
                             range given by the experiment)
``beta_frac``      -         source offset from the lens centre / theta_E, uniform angle
``n_sersic``       -         Sersic index
``r_e``            arcsec    half-light radius in the prior's ``r_e_convention``:
                             ``semi_major`` (elliptical radius ``sqrt(x'^2 + y'^2/q^2)``, the
                             paper's) or ``circularised`` (lenstronomy's ``R_sersic``); the
                             engine's ``r_eff`` is circularised: ``r_eff = R_e sqrt(q)`` for
                             ``semi_major``
``axis_ratio``     -         source q = b/a in (0, 1]; source position angle U(0, pi)
colours ``a-b``    mag       ``m_a - m_b``, one per non-reference band, paired with it
lens ``axis_ratio`` etc.     SIE q in (0, 1], position angle (radians from +x), external
                             shear gamma1/gamma2 about the lens centre, ``center_jitter``
                             (arcsec, x and y each) of the lens centre from the stamp centre
``clumps``                   probability, count range, total flux fraction, Gaussian sigma
``psf``                      ``r_band_scaled``: the host's r-band psfsize x ``band_scale``
                             (the paper: g 1.05, r 1, z 0.94); ``per_band``: the host's own
``poisson_gain``   e-/nmgy   gain of the Poisson option, per band
================== ========= ===============================================================

The D06 experiments (``configs/d06.yaml``, :mod:`stronglens_assets.science.experiments`) draw
from the named prior their config names (the paper's ``paper_2026``) and set theta_E, the
source-magnitude range and beta_frac themselves.

Distributions (``dist``): ``uniform`` on [low, high]; ``loguniform`` (uniform in ln x, low > 0);
``uniform_area`` (density proportional to x on [low, high], i.e. ``sqrt(U(low^2, high^2))``: a
source uniform in the area of the annulus, the paper's ``beta_frac``); ``normal`` (mean, std);
``fixed`` (value). Everything is validated on load: an inverted range, a value outside a
parameter's physical domain (e.g. a negative theta_E) or an unknown key is a
:class:`~stronglens_assets.config.ConfigError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from stronglens_assets.config import StrictModel, load_profiled_config, load_yaml
from stronglens_assets.science.core.hashing import sha256_bytes, sha256_file
from stronglens_assets.science.core.units import AB_ZERO_POINT, mag_to_nanomaggies
from stronglens_assets.science.lensing.injection import (
    CLUMP_KEYWORDS,
    LENS_KEYWORDS,
    MAX_CLUMPS,
    N_SERSIC_RANGE,
)

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
#: Conventions of a prior's half-light radius (see the module docstring).
RE_CONVENTIONS: tuple[str, ...] = ("semi_major", "circularised")

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
    "lens_axis_ratio": (0.0, 1.0, False, True),
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
        if needed == {"low", "high"}:
            if not self.low < self.high:  # type: ignore[operator]  # both set: checked above
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


def _in(name: str, dist: Distribution | None, domain: tuple[float, float, bool, bool]) -> None:
    if dist is None:
        return
    low, high = dist.support()
    lo, hi, lo_inc, hi_inc = domain
    if low < lo or (low == lo and not lo_inc) or high > hi or (high == hi and not hi_inc):
        left, right = "[" if lo_inc else "(", "]" if hi_inc else ")"
        raise ValueError(f"{name} values must lie in {left}{lo}, {hi}{right}; got [{low}, {high}]")


class SourcePrior(StrictModel):
    """The source of a named prior (``source_mag`` may be left to the experiment)."""

    n_sersic: Distribution
    r_e: Distribution
    r_e_convention: Literal["semi_major", "circularised"]
    axis_ratio: Distribution
    beta_frac: Distribution
    source_mag: Distribution | None = None

    @model_validator(mode="after")
    def _domains(self) -> SourcePrior:
        _in("n_sersic", self.n_sersic, DOMAINS["n_sersic"])
        _in("r_e", self.r_e, DOMAINS["r_eff"])
        _in("axis_ratio", self.axis_ratio, DOMAINS["axis_ratio"])
        _in("beta_frac", self.beta_frac, DOMAINS["beta_frac"])
        _in("source_mag", self.source_mag, DOMAINS["source_mag"])
        return self


class LensPrior(StrictModel):
    """SIE + external shear of a named prior (``theta_e`` may be left to the experiment)."""

    theta_e: Distribution | None = None
    axis_ratio: Distribution
    position_angle: Distribution
    shear_gamma1: Distribution
    shear_gamma2: Distribution
    center_jitter: Distribution

    @model_validator(mode="after")
    def _domains(self) -> LensPrior:
        _in("theta_e", self.theta_e, DOMAINS["theta_e"])
        _in("axis_ratio", self.axis_ratio, DOMAINS["lens_axis_ratio"])
        for name in ("shear_gamma1", "shear_gamma2"):
            dist = getattr(self, name)
            if dist.dist == "normal":
                if abs(float(dist.mean)) + 10 * float(dist.std) >= 1:  # type: ignore[arg-type]
                    raise ValueError(f"{name}: mean +- 10 std must stay inside (-1, 1)")
            else:
                _in(name, dist, (-1.0, 1.0, False, False))
        if self.center_jitter.dist not in ("normal", "fixed", "uniform"):
            raise ValueError("center_jitter: dist must be normal, uniform or fixed")
        return self

    @property
    def is_central_sis(self) -> bool:
        """Whether every draw is the SIS at the stamp centre (q = 1, no shear, no jitter)."""
        fixed = {"axis_ratio": 1.0, "shear_gamma1": 0.0, "shear_gamma2": 0.0, "center_jitter": 0.0}
        return all(
            getattr(self, name).dist == "fixed" and getattr(self, name).value == value
            for name, value in fixed.items()
        )


class ClumpPrior(StrictModel):
    """Optional Gaussian clumps: with ``probability`` an injection gets ``count`` clumps (an
    integer uniform on [min, max]) sharing ``flux_fraction`` of the source flux (split
    uniformly on the simplex), each of width ``sigma`` (arcsec), centred uniformly inside the
    source's half-light ellipse."""

    probability: float = Field(default=0.0, ge=0.0, le=1.0)
    count: tuple[int, int] = (1, 4)
    flux_fraction: Distribution = Distribution(dist="uniform", low=0.15, high=0.45)
    sigma: Distribution = Distribution(dist="uniform", low=0.03, high=0.10)

    @model_validator(mode="after")
    def _valid(self) -> ClumpPrior:
        lo, hi = self.count
        if not 1 <= lo <= hi <= MAX_CLUMPS:
            raise ValueError(f"count must be [min, max] with 1 <= min <= max <= {MAX_CLUMPS}")
        _in("flux_fraction", self.flux_fraction, (0.0, 1.0, True, True))
        _in("sigma", self.sigma, (0.0, math.inf, False, False))
        return self


class PsfModel(StrictModel):
    """Per-band PSF FWHM of an injection from its host (see :func:`injection_psf_fwhm`)."""

    fwhm: Literal["r_band_scaled", "per_band"]
    band_scale: dict[str, float] | None = None

    @model_validator(mode="after")
    def _scale(self) -> PsfModel:
        if self.fwhm == "r_band_scaled":
            if not self.band_scale:
                raise ValueError("fwhm r_band_scaled needs band_scale (a factor per band)")
            bad = {b: v for b, v in self.band_scale.items() if not (v > 0 and math.isfinite(v))}
            if bad:
                raise ValueError(f"band_scale must be finite and > 0, got {bad}")
        elif self.band_scale is not None:
            raise ValueError("band_scale only applies to fwhm r_band_scaled")
        return self


class InjectionModel(StrictModel):
    """A named prior: everything needed to draw and render one injection."""

    description: str
    source: SourcePrior
    colours: dict[str, Distribution]
    lens: LensPrior
    clumps: ClumpPrior = ClumpPrior()
    psf: PsfModel
    poisson_gain: dict[str, float]


def _colour_bands(name: str) -> tuple[str, str]:
    parts = name.split("-")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"colour {name!r} must be written 'a-b' (m_a - m_b)")
    return parts[0], parts[1]


class InjectionPriors(StrictModel):
    """``configs/injection_priors.yaml`` (profile overrides applied)."""

    version: str
    bands: tuple[str, ...] = ("g", "r", "z")
    reference_band: str = "r"
    zero_point: float = AB_ZERO_POINT
    default_prior: str
    priors: dict[str, InjectionModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> InjectionPriors:
        if self.reference_band not in self.bands:
            raise ValueError(f"reference_band {self.reference_band!r} is not in {self.bands}")
        if self.default_prior not in self.priors:
            raise ValueError(
                f"default_prior {self.default_prior!r} is not a prior; known: {sorted(self.priors)}"
            )
        ref = self.reference_band
        others = sorted(set(self.bands) - {ref})
        for name, model in self.priors.items():
            where = f"priors.{name}"
            paired = []
            for colour in model.colours:
                a, b = _colour_bands(colour)
                if ref not in (a, b) or a == b or {a, b} - set(self.bands):
                    raise ValueError(
                        f"{where}.colours.{colour}: a colour pairs a band of {list(self.bands)} "
                        f"with the reference band {ref!r}"
                    )
                paired.append(b if a == ref else a)
            if sorted(paired) != others:
                raise ValueError(
                    f"{where}.colours must give one colour for each of {others}; "
                    f"got {sorted(model.colours)}"
                )
            if sorted(model.poisson_gain) != sorted(self.bands):
                raise ValueError(
                    f"{where}.poisson_gain must give e-/nanomaggy for exactly "
                    f"{list(self.bands)}; got {sorted(model.poisson_gain)}"
                )
            bad = {b: g for b, g in model.poisson_gain.items() if not (g > 0 and math.isfinite(g))}
            if bad:
                raise ValueError(f"{where}.poisson_gain must be finite and > 0, got {bad}")
            scale = model.psf.band_scale
            if scale is not None and sorted(scale) != sorted(self.bands):
                raise ValueError(
                    f"{where}.psf.band_scale must give a factor for exactly {list(self.bands)}"
                )
        return self

    def prior(self, name: str | None = None) -> InjectionModel:
        """The named prior ``name`` (default: ``default_prior``)."""
        key = self.default_prior if name is None else name
        if key not in self.priors:
            raise KeyError(f"unknown prior {key!r}; known: {sorted(self.priors)}")
        return self.priors[key]

    def gain_array(self, gain: float | None = None, prior: str | None = None) -> np.ndarray:
        """Per-band gain (e-/nanomaggy) in ``bands`` order of ``prior`` (default: the default
        prior's); ``gain`` overrides every band."""
        if gain is not None:
            return np.full(len(self.bands), float(gain))
        gains = self.prior(prior).poisson_gain
        return np.array([gains[b] for b in self.bands], dtype=np.float64)


def load_priors(
    config_dir: str | os.PathLike[str], profile: str, filename: str = PRIORS_CONFIG_FILENAME
) -> InjectionPriors:
    """Load and validate the priors of ``profile`` (``ConfigError`` names file and field)."""
    return load_profiled_config(Path(config_dir) / filename, InjectionPriors, profile)


def priors_sha256(priors: InjectionPriors) -> str:
    """sha256 of the JSON of the resolved priors (sorted keys, profile applied)."""
    text = json.dumps(priors.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode())


def priors_file_sha256(config_dir: str | os.PathLike[str]) -> str:
    """sha256 of the YAML file's bytes (what the seeds' provenance records)."""
    path = Path(config_dir) / PRIORS_CONFIG_FILENAME
    load_yaml(path)  # clear error if missing / not YAML
    return sha256_file(path)


@dataclass(frozen=True)
class InjectionParameters:
    """Parameters of N injections (arrays of length N; ``flux``/``mags`` are (N, B)).

    Positions are arcsec in the stamp frame (offsets from the stamp centre, +x = +column,
    +y = +row): ``source_x``/``source_y`` the source centre, ``lens_center_x/y`` the lens
    centre (``None``: the stamp centre); ``position_angle``: source major axis, radians
    counter-clockwise from +x; ``r_eff``: circularised half-light radius (the engine's);
    ``r_e``: the prior's half-light radius in its own convention (``None`` when it is
    ``r_eff``); ``flux``: unlensed source flux per band, nanomaggies; ``mags``: the same in AB
    mag. The lens fields are ``None`` for an SIS at the stamp centre, the clump fields
    (``(N, K)``) ``None`` without clumps.
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
    r_e: np.ndarray | None = None
    lens_axis_ratio: np.ndarray | None = None
    lens_position_angle: np.ndarray | None = None
    shear_gamma1: np.ndarray | None = None
    shear_gamma2: np.ndarray | None = None
    lens_center_x: np.ndarray | None = None
    lens_center_y: np.ndarray | None = None
    clump_x: np.ndarray | None = None
    clump_y: np.ndarray | None = None
    clump_sigma: np.ndarray | None = None
    clump_flux_fraction: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.theta_e)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field that is set, as a float64 array (for ``.npz`` files)."""
        return {
            name: np.asarray(getattr(self, name), dtype=np.float64)
            for name in self.__dataclass_fields__
            if getattr(self, name) is not None
        }

    def take(self, index: np.ndarray | slice) -> InjectionParameters:
        return InjectionParameters(**{k: v[index] for k, v in self.arrays().items()})

    def render_kwargs(self) -> dict[str, np.ndarray]:
        """The lens and clump keywords of ``render_arcs`` that are set."""
        names = (*LENS_KEYWORDS, *CLUMP_KEYWORDS)
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def _band_mags(
    priors: InjectionPriors, colours: dict[str, Distribution], ref_mag: np.ndarray, rng
) -> np.ndarray:
    """(N, B) magnitudes: the reference band's, then each other band's colour (bands order)."""
    n = ref_mag.shape[0]
    by_band = {}
    for colour, dist in colours.items():
        a, b = _colour_bands(colour)
        by_band[b if a == priors.reference_band else a] = (colour, dist)
    mags = np.empty((n, len(priors.bands)), dtype=np.float64)
    for j, band in enumerate(priors.bands):
        if band == priors.reference_band:
            mags[:, j] = ref_mag
            continue
        colour, dist = by_band[band]
        value = dist.sample(n, rng)
        a, _ = _colour_bands(colour)
        # m_a - m_b = value: a band before the reference (g-r) adds, after it (r-z) subtracts
        mags[:, j] = ref_mag + value if a == band else ref_mag - value
    return mags


def _experiment_dist(name: str, value: Any) -> Distribution | np.ndarray | None:
    """An experiment's setting: a Distribution, a (low, high) uniform range, or values."""
    if value is None or isinstance(value, Distribution):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
        if low == high:
            return Distribution(dist="fixed", value=low)
        kind = "uniform_area" if name == "beta_frac" else "uniform"
        return Distribution(dist=kind, low=low, high=high)
    return np.asarray(value, dtype=np.float64)


def sample_injections(
    priors: InjectionPriors,
    n: int,
    rng: np.random.Generator,
    *,
    prior: str | None = None,
    theta_e: float | np.ndarray | Distribution | None = None,
    source_mag: tuple[float, float] | Distribution | None = None,
    beta_frac: tuple[float, float] | Distribution | None = None,
) -> InjectionParameters:
    """Draw ``n`` injections of a named prior (default ``priors.default_prior``).

    The experiment sets what the prior leaves open, and may override it:

    Args:
        theta_e: Einstein radius (arcsec): a value or ``(N,)`` values (fixed by the
            experiment), or a :class:`Distribution`; required if the prior has none.
        source_mag: unlensed reference-band magnitude: ``(low, high)`` for U(low, high), or
            a :class:`Distribution`; required if the prior has none.
        beta_frac: ``(low, high)`` for the area-weighted ``sqrt(U(low^2, high^2))``, or a
            :class:`Distribution`; default the prior's.

    Draw order (fixed; a fixed value still consumes its draw): theta_e, source_mag,
    beta_frac, n_sersic, r_e, axis_ratio, the colours in ``bands`` order, the offset angle
    U(0, 2 pi), the source position angle U(0, pi), lens axis_ratio, position_angle,
    shear_gamma1, shear_gamma2, the centre jitter x then y, then the clumps (only when their
    probability is > 0: presence, count, flux fraction, simplex split, positions, sigmas).

    The source lies at ``beta_frac x theta_E`` from the (jittered) lens centre; ``r_eff`` is
    the circularised radius ``R_e sqrt(q)`` when the prior's ``r_e_convention`` is
    ``semi_major`` (``R_e`` itself when ``circularised``).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    model = priors.prior(prior)
    name = priors.default_prior if prior is None else prior

    def draw(field: str, given: Any, default: Distribution | None) -> np.ndarray:
        setting = _experiment_dist(field, given)
        dist = default if setting is None else setting
        if dist is None:
            raise ValueError(f"prior {name!r} leaves {field} to the experiment: pass {field}=")
        if isinstance(dist, np.ndarray):
            rng.random(n)
            values = np.broadcast_to(dist, (n,)).astype(np.float64)
        else:
            values = dist.sample(n, rng)
        domain = DOMAINS["r_eff" if field == "r_e" else field]
        low, high = (values.min(), values.max()) if n else (domain[0], domain[0])
        if n:
            _check_in_domain("r_eff" if field == "r_e" else field, float(low), float(high))
        return values

    te = draw("theta_e", theta_e, model.lens.theta_e)
    mag = draw("source_mag", source_mag, model.source.source_mag)
    bf = draw("beta_frac", beta_frac, model.source.beta_frac)
    ns = draw("n_sersic", None, model.source.n_sersic)
    r_e = draw("r_e", None, model.source.r_e)
    q = draw("axis_ratio", None, model.source.axis_ratio)
    mags = _band_mags(priors, model.colours, mag, rng)
    offset_angle = rng.uniform(0.0, 2.0 * math.pi, n)
    position_angle = rng.uniform(0.0, math.pi, n)
    lens = model.lens
    q_lens = lens.axis_ratio.sample(n, rng)
    phi_lens = lens.position_angle.sample(n, rng)
    g1 = lens.shear_gamma1.sample(n, rng)
    g2 = lens.shear_gamma2.sample(n, rng)
    jx = lens.center_jitter.sample(n, rng)
    jy = lens.center_jitter.sample(n, rng)
    if n and np.hypot(g1, g2).max() >= 1:
        raise ValueError(f"prior {name!r} drew a shear with |gamma| >= 1")
    r_eff = r_e * np.sqrt(q) if model.source.r_e_convention == "semi_major" else r_e
    beta = bf * te
    clumps = _sample_clumps(model, n, rng, r_e, model.source.r_e_convention, q, position_angle)
    return InjectionParameters(
        theta_e=te,
        source_mag=mag,
        beta_frac=bf,
        n_sersic=ns,
        r_eff=r_eff,
        axis_ratio=q,
        source_x=jx + beta * np.cos(offset_angle),
        source_y=jy + beta * np.sin(offset_angle),
        position_angle=position_angle,
        mags=mags,
        flux=mag_to_nanomaggies(mags, priors.zero_point),
        r_e=r_e,
        lens_axis_ratio=q_lens,
        lens_position_angle=phi_lens,
        shear_gamma1=g1,
        shear_gamma2=g2,
        lens_center_x=jx,
        lens_center_y=jy,
        **clumps,
    )


def _sample_clumps(
    model: InjectionModel,
    n: int,
    rng: np.random.Generator,
    r_e: np.ndarray,
    convention: str,
    q: np.ndarray,
    phi: np.ndarray,
) -> dict[str, np.ndarray]:
    """Clump arrays ``(N, K)`` (K = the largest count; fraction 0 = no clump), or ``{}``."""
    prior = model.clumps
    if prior.probability <= 0:
        return {}
    lo, hi = prior.count
    present = rng.random(n) < prior.probability
    count = np.where(present, rng.integers(lo, hi + 1, n), 0)
    total = prior.flux_fraction.sample(n, rng)
    weights = rng.exponential(1.0, (n, hi)) * (np.arange(hi)[None, :] < count[:, None])
    norm = weights.sum(axis=1, keepdims=True)
    fraction = total[:, None] * weights / np.where(norm > 0, norm, 1.0)
    # uniform in the half-light ellipse: semi-major a, semi-minor a q, major axis at phi
    a = r_e if convention == "semi_major" else r_e / np.sqrt(q)
    rho = np.sqrt(rng.random((n, hi)))
    ang = rng.uniform(0.0, 2.0 * math.pi, (n, hi))
    xp_ = a[:, None] * rho * np.cos(ang)
    yp_ = (a * q)[:, None] * rho * np.sin(ang)
    c, s = np.cos(phi)[:, None], np.sin(phi)[:, None]
    sigma = prior.sigma.sample(n * hi, rng).reshape(n, hi)
    return {
        "clump_x": c * xp_ - s * yp_,
        "clump_y": s * xp_ + c * yp_,
        "clump_sigma": sigma,
        "clump_flux_fraction": fraction,
    }


def injection_psf_fwhm(
    priors: InjectionPriors, host_psfsize: np.ndarray, prior: str | None = None
) -> np.ndarray:
    """``(N, B)`` Gaussian PSF FWHM (arcsec) of injections into hosts with ``host_psfsize``
    ``(N, B)`` (the cutouts' psfsize, bands in ``priors.bands`` order), by the prior's PSF
    model: ``r_band_scaled`` = the host's r-band psfsize x ``band_scale`` (the paper: g 1.05,
    r 1, z 0.94), ``per_band`` = the host's own psfsize in each band."""
    psf = np.asarray(host_psfsize, dtype=np.float64)
    if psf.ndim != 2 or psf.shape[1] != len(priors.bands):
        raise ValueError(f"host_psfsize must be (N, {len(priors.bands)}), got {psf.shape}")
    model = priors.prior(prior).psf
    if model.fwhm == "per_band":
        return psf.copy()
    scale = np.array([model.band_scale[b] for b in priors.bands])  # type: ignore[index]
    ref = psf[:, priors.bands.index(priors.reference_band)]
    return ref[:, None] * scale[None, :]


def priors_as_dict(priors: InjectionPriors) -> dict[str, Any]:
    """JSON-able dict of the resolved priors."""
    return priors.model_dump(mode="json")
