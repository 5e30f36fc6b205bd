"""Injection runs of the D06 experiments: draw, render, add to hosts, retry failures.

One run (:func:`run_injections`) draws ``n`` parameter sets of a named prior
(:func:`~stronglens_assets.science.lensing.priors.sample_injections`: SIE + external shear,
Sersic source; theta_E, the source-magnitude range and beta_frac set by the experiment), gives
each a host, renders the arcs with the injection engine
(:func:`~stronglens_assets.science.lensing.injection.render_arcs`, PSF from the host's r-band
psfsize by the prior's PSF model), records their truth (lensed r magnitude and r-band annulus
S/N against the host's invvar, :func:`~stronglens_assets.science.lensing.injection.arc_truth`)
and adds them to the hosts in nanomaggies (optionally with the paper's Poisson noise at one gain
or at each host's own, :func:`~stronglens_assets.science.lensing.injection.inject`), before any
preprocessing.

Failures: an injection whose host is unusable (NaN pixels, psfsize not finite and > 0) or
whose arc is not finite is retried with a new host drawn from the same candidates, up to
``max_retries`` times; then it is failed (``n_failed``) and left out of the results. The
parameters stay those drawn for it, so two runs sharing a stream (the no-Poisson and Poisson
grids, the bright-arc variants of one geometry) inject the same arcs into the same hosts.

Streams: parameters and hosts from ``params_rng``; the Poisson noise from ``noise_rng`` (so
runs that differ only in noise share the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stronglens_assets.science.core.arrays import to_host
from stronglens_assets.science.lensing.injection import arc_truth, inject, render_arcs
from stronglens_assets.science.lensing.priors import (
    InjectionParameters,
    InjectionPriors,
    injection_psf_fwhm,
    sample_injections,
)

__all__ = ["InjectionRun", "run_injections"]

PIXEL_SCALE = 0.262
"""DR10 pixel scale (arcsec / pixel)."""


@dataclass(frozen=True)
class InjectionRun:
    """The successful injections of a run, in draw order.

    ``host_row``: row of each injection's host in the host arrays; ``images`` ``(N, B, H, W)``
    float32 nanomaggies (host + arc); ``lensed_mag`` / ``arc_snr``: the reference band's
    (AB mag, NaN if the arc has no flux; annulus S/N); ``slot``: index of each injection in
    the ``n`` drawn (failed slots are missing); ``failures``: up to 20 messages.
    """

    params: InjectionParameters
    host_row: np.ndarray
    images: np.ndarray
    lensed_mag: np.ndarray
    arc_snr: np.ndarray
    slot: np.ndarray
    n_failed: int
    n_retries: int
    failures: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.host_row)


def _assign_hosts(
    candidates: np.ndarray,
    usable: np.ndarray,
    first: np.ndarray,
    max_retries: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Host row per slot (-1 = failed after the retries), retries used, number of retries."""
    hosts = first.copy()
    retries = np.zeros(len(first), dtype=np.int64)
    for _ in range(max_retries):
        bad = ~usable[np.maximum(hosts, 0)] | (hosts < 0)
        if not bad.any():
            break
        hosts[bad] = candidates[rng.integers(0, len(candidates), int(bad.sum()))]
        retries[bad] += 1
    failed = ~usable[hosts]
    hosts[failed] = -1
    return hosts, retries, int(retries.sum())


def _gains_of(host_gain: np.ndarray, rows: np.ndarray) -> np.ndarray:
    gains = host_gain[rows]
    bad = ~(np.isfinite(gains) & (gains > 0)).all(axis=1)
    if bad.any():
        raise ValueError(f"host_gain of host row {int(rows[bad][0])} is not finite and > 0")
    return gains


def run_injections(
    priors: InjectionPriors,
    host_arrays: dict[str, np.ndarray],
    candidates: np.ndarray,
    n: int,
    *,
    prior: str,
    theta_e: float,
    source_mag: tuple[float, float],
    beta_frac: tuple[float, float] | None,
    params_rng: np.random.Generator,
    noise_rng: np.random.Generator | None = None,
    poisson_gain: float | None = None,
    host_gain: np.ndarray | None = None,
    hosts: np.ndarray | None = None,
    max_retries: int = 5,
    chunk_size: int = 256,
    keep_images: bool = True,
    xp: Any = np,
) -> InjectionRun:
    """Inject ``n`` arcs into hosts of ``candidates`` (rows of ``host_arrays``).

    Args:
        host_arrays: ``cutout``, ``invvar``, ``psfsize`` and ``usable`` of every host.
        candidates: host rows to draw from (and to retry with).
        hosts: the first host of each slot (default: uniform draws from ``candidates``);
            the paired bright-arc design passes its fixed hosts.
        poisson_gain: e-/nanomaggy of the Poisson noise of the added flux (None: none).
        host_gain: instead of ``poisson_gain``, each host's own gain: ``(R, B)`` e-/nanomaggy
            per row of ``host_arrays`` and band (finite and > 0 for every host used).
        keep_images: return the injected images (else an empty array: truth only).

    Raises:
        ValueError: no candidate host, or parameters outside the engine's domain (from the
            priors' sampler, naming the parameter).
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if host_gain is not None:
        if poisson_gain is not None:
            raise ValueError("give poisson_gain or host_gain, not both")
        host_gain = np.asarray(host_gain, dtype=np.float64)
        shape = (len(host_arrays["cutout"]), host_arrays["cutout"].shape[1])
        if host_gain.shape != shape:
            raise ValueError(f"host_gain must be (hosts, bands) = {shape}, got {host_gain.shape}")
    if len(candidates) == 0:
        raise ValueError("no candidate host for these injections")
    params = sample_injections(
        priors,
        n,
        params_rng,
        prior=prior,
        theta_e=float(theta_e),
        source_mag=(float(source_mag[0]), float(source_mag[1])),
        beta_frac=None if beta_frac is None else (float(beta_frac[0]), float(beta_frac[1])),
    )
    first = (
        candidates[params_rng.integers(0, len(candidates), n)]
        if hosts is None
        else np.asarray(hosts, dtype=np.int64)
    )
    if len(first) != n:
        raise ValueError(f"{n} injections but {len(first)} hosts")
    host_row, _, n_retries = _assign_hosts(
        candidates, host_arrays["usable"], first, max_retries, params_rng
    )
    failures = [
        f"slot {i}: no usable host after {max_retries} retries (last tried row {first[i]})"
        for i in np.flatnonzero(host_row < 0)[:20]
    ]
    ok = np.flatnonzero(host_row >= 0)
    ref = priors.bands.index(priors.reference_band)
    size = host_arrays["cutout"].shape[-1]
    images, mags, snrs, kept = [], [], [], []
    if noise_rng is not None and xp is not np:
        noise_rng = xp.random.default_rng(int(noise_rng.integers(0, 2**63 - 1)))
    for start in range(0, len(ok), chunk_size):
        slots = ok[start : start + chunk_size]
        part = params.take(slots)
        rows = host_row[slots]
        psf = injection_psf_fwhm(priors, host_arrays["psfsize"][rows], prior)
        extra = {name: xp.asarray(value) for name, value in part.render_kwargs().items()}
        arcs = render_arcs(
            xp.asarray(part.theta_e),
            xp.asarray(part.source_x),
            xp.asarray(part.source_y),
            xp.asarray(part.r_eff),
            xp.asarray(part.n_sersic),
            xp.asarray(part.axis_ratio),
            xp.asarray(part.position_angle),
            xp.asarray(part.flux),
            xp.asarray(psf),
            size=size,
            pixel_scale=PIXEL_SCALE,
            xp=xp,
            **extra,
        )
        finite = to_host(xp.isfinite(arcs).reshape(len(slots), -1).all(axis=1))
        if not finite.all():
            failures += [f"slot {s}: arc not finite" for s in slots[~finite]][:5]
            arcs = arcs[xp.asarray(finite)]
            slots, rows = slots[finite], rows[finite]
            part = params.take(slots)
            if len(slots) == 0:
                continue
        truth = arc_truth(
            arcs,
            part.flux,
            xp.asarray(host_arrays["invvar"][rows]),
            part.theta_e,
            lens_center_x=part.lens_center_x,
            lens_center_y=part.lens_center_y,
            pixel_scale=PIXEL_SCALE,
        )
        mags.append(truth.lensed_mag[:, ref])
        snrs.append(truth.arc_snr[:, ref])
        kept.append(slots)
        if keep_images:
            injected = inject(
                xp.asarray(host_arrays["cutout"][rows]),
                arcs,
                poisson_gain=poisson_gain if host_gain is None else _gains_of(host_gain, rows),
                rng=noise_rng,
            )
            images.append(to_host(injected))
    slot = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    n_failed = n - len(slot)
    shape = (0, *host_arrays["cutout"].shape[1:])
    return InjectionRun(
        params=params.take(slot),
        host_row=host_row[slot],
        images=np.concatenate(images) if images else np.zeros(shape, np.float32),
        lensed_mag=np.concatenate(mags) if mags else np.zeros(0),
        arc_snr=np.concatenate(snrs) if snrs else np.zeros(0),
        slot=slot,
        n_failed=int(n_failed),
        n_retries=n_retries,
        failures=failures[:20],
    )
