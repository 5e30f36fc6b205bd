"""Small DR10-format coadd bricks for tests (independent of the mock survey writer).

Files are written like DR10's: HDU0 an empty primary, HDU1 a RICE_1 tile-compressed image
(astropy default one-row tiles) with a TAN WCS. ``npix`` < 3600 gives a smaller image with
the same pixel scale centred on the brick (CRPIX = npix/2 + 0.5), for fast tests; the
matching WCS is :func:`brick_grid_wcs`, passed to ``extract_brick_cutouts(wcs=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from stronglens_assets.resources.coadds import coadd_filename, dr10_coadd_path
from stronglens_assets.science.catalogs.bricks import (
    BRICK_NPIX,
    brick_wcs,
    brick_wcs_header,
    parse_brick_name,
)
from stronglens_assets.science.imaging.cutouts import BANDS, PRODUCTS

TEST_BRICK = "1126p222"

Pattern = Callable[[str, str, np.ndarray, np.ndarray], np.ndarray]


def brick_grid_wcs(brick: str, npix: int = BRICK_NPIX) -> WCS:
    """DR10 brick WCS with an ``npix`` x ``npix`` grid (``brick_wcs`` when npix = 3600)."""
    if npix == BRICK_NPIX:
        return brick_wcs(brick)
    w = brick_wcs(brick)
    w.wcs.crpix = [npix / 2.0 + 0.5, npix / 2.0 + 0.5]
    w.wcs.set()
    w.pixel_shape = (npix, npix)
    return w


def coadd_header(brick: str, npix: int = BRICK_NPIX) -> fits.Header:
    """Header with the WCS of :func:`brick_grid_wcs`."""
    hdr = brick_wcs_header(brick)
    hdr["NAXIS1"] = npix
    hdr["NAXIS2"] = npix
    hdr["CRPIX1"] = npix / 2.0 + 0.5
    hdr["CRPIX2"] = npix / 2.0 + 0.5
    return hdr


def write_coadd(path: str | os.PathLike[str], data: np.ndarray, header: fits.Header) -> Path:
    """Write one ``.fits.fz`` coadd file (empty primary + RICE_1 CompImageHDU)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu = fits.CompImageHDU(np.asarray(data, dtype=np.float32), header=header)
    hdu.compression_type = "RICE_1"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def default_pattern(product: str, band: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Distinct pattern per product and band, encoding the pixel position.

    image ``10000 (j + 1) + 100 (y % 97) + x % 89``, invvar ``2 + j + (x + y) % 3``, psfsize
    ``1.25 + 0.25 j + 0.001 (y % 7)`` (j = band index). Smooth integral / binary-fraction
    values: RICE_1 stores them without loss.
    """
    j = BANDS.index(band) if band in BANDS else len(BANDS)
    if product == "image":
        return (10000.0 * (j + 1) + 100.0 * (y % 97) + (x % 89)).astype(np.float32)
    if product == "invvar":
        return (2.0 + j + (x + y) % 3).astype(np.float32)
    return (1.25 + 0.25 * j + 0.001 * (y % 7) + 0.0 * x).astype(np.float32)


def write_brick(
    root: str | os.PathLike[str],
    brick: str = TEST_BRICK,
    npix: int = 400,
    *,
    bands: Iterable[str] = BANDS,
    products: Iterable[str] = PRODUCTS,
    layout: str = "dr10",
    pattern: Pattern = default_pattern,
    edit: Callable[[str, str, np.ndarray], np.ndarray | None] | None = None,
) -> dict[tuple[str, str], Path]:
    """Write a brick's coadd files under ``root``; return ``{(product, band): path}``.

    ``layout``: ``"dr10"`` (``coadd/<RRR>/<brick>/<file>``) or ``"flat"`` (``<brick>/<file>``,
    the S3 cache layout). ``edit(product, band, array)`` may modify arrays before writing.
    """
    parse_brick_name(brick)
    header = coadd_header(brick, npix)
    y, x = np.mgrid[0:npix, 0:npix]
    paths: dict[tuple[str, str], Path] = {}
    for band in bands:
        for product in products:
            data = pattern(product, band, y, x)
            if edit is not None:
                edited = edit(product, band, data)
                data = data if edited is None else edited
            relative = (
                dr10_coadd_path(brick, product, band)
                if layout == "dr10"
                else f"{brick}/{coadd_filename(brick, product, band)}"
            )
            paths[(product, band)] = write_coadd(Path(root) / relative, data, header)
    return paths


def sky_of_pixels(wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) [deg] of 0-based pixel positions."""
    ra, dec = wcs.pixel_to_world_values(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(ra), np.asarray(dec)


def full_read(path: str | os.PathLike[str]) -> np.ndarray:
    """The whole decompressed image of a coadd file."""
    with fits.open(path) as hdul:
        return np.asarray(hdul[1].data)
