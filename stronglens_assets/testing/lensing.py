"""Random lensed-arc parameters and the lenstronomy reference image (tests and benchmarks).

:func:`random_arc_parameters` draws parameter sets for
:func:`~stronglens_assets.science.lensing.injection.render_arcs` from explicit ranges,
independently of the project's prior code (so that tests of the priors and of the engine do
not lean on each other); :func:`lenstronomy_image` renders one band of one set with
lenstronomy's ``ImageModel`` (``SIE`` + ``SHEAR`` or ``SIS``, ``SERSIC_ELLIPSE``,
supersampling 4, ``GAUSSIAN`` PSF), the reference the engine is tested and timed against.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from stronglens_assets.science.core.units import mag_to_nanomaggies
from stronglens_assets.science.lensing.injection import CLUMP_KEYWORDS, LENS_KEYWORDS

__all__ = [
    "ARC_ARGUMENTS",
    "CLUMP_KEYWORDS",
    "LENS_KEYWORDS",
    "LenstronomyReference",
    "random_arc_parameters",
    "render_arc_set",
]

#: Positional arguments of ``render_arcs`` in order.
ARC_ARGUMENTS: tuple[str, ...] = (
    "theta_e",
    "source_x",
    "source_y",
    "r_eff",
    "n_sersic",
    "axis_ratio",
    "position_angle",
    "flux",
    "psf_fwhm",
)
#: PSF FWHM of g, r, z relative to r (PROTOCOL.md).
_BAND_PSF_SCALE = np.array([1.05, 1.0, 0.94])


def random_arc_parameters(
    n: int,
    seed: int,
    *,
    ranges: Literal["paper", "wide"] = "paper",
    lens: Literal["sie", "sis"] = "sie",
    bands: int = 3,
) -> dict[str, np.ndarray]:
    """``n`` random parameter sets (a dict of ``render_arcs`` arguments).

    ``ranges="paper"`` (PROTOCOL.md): theta_E U(0.5, 3)", Sersic n U(0.5, 2), semi-major
    R_e U(0.15, 0.5)" (``r_eff = R_e sqrt(q)``), q U(0.3, 1), beta / theta_E area-weighted
    on [0.1, 0.4], r magnitude U(19, 24), g - r N(1.15, 0.30), r - z N(0.85, 0.20).
    ``"wide"`` (the engine's earlier test ranges): n U(0.5, 4), r_eff U(0.05, 1)", offsets
    up to 1.5 theta_E, magnitudes U(19, 24) per band. Lens ``"sie"``: q_lens U(0.5, 1),
    phi_lens U(0, pi), gamma1/2 N(0, 0.05), centre N(0, 0.05") each (source positions are
    offsets from that centre); ``"sis"``: no lens keywords (the SIS at the stamp centre).
    PSF: r-band FWHM U(0.9, 1.8)" scaled by (1.05, 1, 0.94) for g, r, z (3 bands), or
    U(0.9, 1.8)" per band otherwise.
    """
    rng = np.random.default_rng(seed)
    te = rng.uniform(0.5, 3.0, n)
    q = rng.uniform(0.3, 1.0, n)
    if ranges == "paper":
        n_sersic = rng.uniform(0.5, 2.0, n)
        r_eff = rng.uniform(0.15, 0.5, n) * np.sqrt(q)
        offset = np.sqrt(rng.uniform(0.1**2, 0.4**2, n)) * te
    elif ranges == "wide":
        n_sersic = rng.uniform(0.5, 4.0, n)
        r_eff = rng.uniform(0.05, 1.0, n)
        offset = rng.uniform(0.0, 1.5, n) * te
    else:
        raise ValueError(f"ranges must be 'paper' or 'wide', got {ranges!r}")
    angle = rng.uniform(0.0, 2 * np.pi, n)
    mag_r = rng.uniform(19.0, 24.0, n)
    if bands == 3 and ranges == "paper":
        mags = np.stack(
            [mag_r + rng.normal(1.15, 0.30, n), mag_r, mag_r - rng.normal(0.85, 0.20, n)], 1
        )
    else:
        mags = rng.uniform(19.0, 24.0, (n, bands))
    if bands == 3:
        psf = rng.uniform(0.9, 1.8, n)[:, None] * _BAND_PSF_SCALE
    else:
        psf = rng.uniform(0.9, 1.8, (n, bands))
    p = {
        "theta_e": te,
        "r_eff": r_eff,
        "n_sersic": n_sersic,
        "axis_ratio": q,
        "position_angle": rng.uniform(0.0, np.pi, n),
        "flux": mag_to_nanomaggies(mags),
        "psf_fwhm": psf,
    }
    cx = cy = np.zeros(n)
    if lens == "sie":
        cx, cy = rng.normal(0.0, 0.05, n), rng.normal(0.0, 0.05, n)
        p.update(
            lens_axis_ratio=rng.uniform(0.5, 1.0, n),
            lens_position_angle=rng.uniform(0.0, np.pi, n),
            shear_gamma1=rng.normal(0.0, 0.05, n),
            shear_gamma2=rng.normal(0.0, 0.05, n),
            lens_center_x=cx,
            lens_center_y=cy,
        )
    elif lens != "sis":
        raise ValueError(f"lens must be 'sie' or 'sis', got {lens!r}")
    p["source_x"] = cx + offset * np.cos(angle)
    p["source_y"] = cy + offset * np.sin(angle)
    return p


def render_arc_set(p: dict[str, Any], **kwargs: Any) -> Any:
    """``render_arcs`` of a parameter dict (its lens and clump keywords included when present;
    any other key is an error)."""
    from stronglens_assets.science.lensing.injection import render_arcs

    unknown = set(p) - set(ARC_ARGUMENTS) - set(LENS_KEYWORDS) - set(CLUMP_KEYWORDS)
    if unknown:
        raise KeyError(f"not render_arcs arguments: {sorted(unknown)}")
    extra = {k: p[k] for k in (*LENS_KEYWORDS, *CLUMP_KEYWORDS) if k in p}
    return render_arcs(*[p.get(k) for k in ARC_ARGUMENTS], **extra, **kwargs)


class LenstronomyReference:
    """lenstronomy ``ImageModel`` of a ``size`` x ``size`` stamp at ``pixel_scale``: ``SIE`` +
    ``SHEAR`` (or ``SIS`` without lens keywords) lensing ``SERSIC_ELLIPSE``, supersampling
    4, convolution after binning, ``GAUSSIAN`` PSF or none. Images are flux per pixel."""

    def __init__(self, size: int = 101, pixel_scale: float = 0.262) -> None:
        from lenstronomy.Data.imaging_data import ImageData
        from lenstronomy.LensModel.lens_model import LensModel
        from lenstronomy.LightModel.light_model import LightModel
        from lenstronomy.Util import util

        _, _, ra0, dec0, _, _, pix2coord, _ = util.make_grid_with_coordtransform(
            size, pixel_scale, inverse=False
        )
        self.data = ImageData(
            image_data=np.zeros((size, size)),
            ra_at_xy_0=ra0,
            dec_at_xy_0=dec0,
            transform_pix2angle=pix2coord,
        )
        self.sie = LensModel(["SIE", "SHEAR"])
        self.sis = LensModel(["SIS"])
        self.light = LightModel(["SERSIC_ELLIPSE"])

    def model(self, psf_fwhm: float | None, lens: str = "sie") -> Any:
        """An ``ImageModel`` for one PSF (a new PSF needs a new model)."""
        from lenstronomy.Data.psf import PSF
        from lenstronomy.ImSim.image_model import ImageModel

        psf = PSF("NONE") if psf_fwhm is None else PSF("GAUSSIAN", fwhm=float(psf_fwhm))
        return ImageModel(
            self.data,
            psf,
            lens_model_class=self.sie if lens == "sie" else self.sis,
            source_model_class=self.light,
            kwargs_numerics={"supersampling_factor": 4, "supersampling_convolution": False},
        )

    def kwargs(self, p: dict[str, Any], i: int, band: int) -> tuple[list, list]:
        """``(kwargs_lens, kwargs_source)`` of set ``i``, band ``band`` (source amplitude
        from the band's flux through lenstronomy's own total-flux integral)."""
        from lenstronomy.Util import param_util

        e1, e2 = param_util.phi_q2_ellipticity(p["position_angle"][i], p["axis_ratio"][i])
        source = {
            "amp": 1.0,
            "R_sersic": float(p["r_eff"][i]),
            "n_sersic": float(p["n_sersic"][i]),
            "e1": e1,
            "e2": e2,
            "center_x": float(p["source_x"][i]),
            "center_y": float(p["source_y"][i]),
        }
        source["amp"] = float(p["flux"][i, band]) / self.light.total_flux([source])[0]
        if "lens_axis_ratio" not in p:
            return [{"theta_E": float(p["theta_e"][i]), "center_x": 0.0, "center_y": 0.0}], [source]
        le1, le2 = param_util.phi_q2_ellipticity(
            p["lens_position_angle"][i], p["lens_axis_ratio"][i]
        )
        cx, cy = float(p["lens_center_x"][i]), float(p["lens_center_y"][i])
        lens = [
            {
                "theta_E": float(p["theta_e"][i]),
                "e1": le1,
                "e2": le2,
                "center_x": cx,
                "center_y": cy,
            },
            {
                "gamma1": float(p["shear_gamma1"][i]),
                "gamma2": float(p["shear_gamma2"][i]),
                "ra_0": cx,
                "dec_0": cy,
            },
        ]
        return lens, [source]

    def image(self, p: dict[str, Any], i: int, band: int, psf: bool = True) -> np.ndarray:
        """lenstronomy's image of set ``i`` in band ``band`` (float64 flux per pixel)."""
        kind = "sie" if "lens_axis_ratio" in p else "sis"
        fwhm = float(p["psf_fwhm"][i, band]) if psf and p.get("psf_fwhm") is not None else None
        lens, source = self.kwargs(p, i, band)
        return self.model(fwhm, kind).image(kwargs_lens=lens, kwargs_source=source)
