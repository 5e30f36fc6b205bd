"""grz cutouts from DR10 coadd bricks, one brick at a time.

Conventions:

* Pixels are 0-based (astropy / NumPy): pixel ``(x, y)`` is ``data[y, x]`` and covers
  ``[x - 0.5, x + 0.5) x [y - 0.5, y + 0.5)``; FITS headers use 1-based CRPIX (1800.5 is the
  centre of a 3600 px brick, 0-based 1799.5). An object's pixel is
  ``floor(world_to_pixel + 0.5)``, i.e. the pixel whose area contains it.
* A cutout of side ``size`` (odd, default 101) centred on pixel ``(x, y)`` is
  ``data[y - h : y + h + 1, x - h : x + h + 1]`` with ``h = size // 2``: the object sits on
  array element ``[h, h]`` (``[50, 50]``) in every band. No resampling: cutout values are the
  brick's decompressed pixels.
* Units: ``image`` in nanomaggies / pixel (AB zero point 22.5), ``invvar`` in
  1 / nanomaggy^2, ``psfsize`` = PSF FWHM in arcsec (value at the object's pixel).

Reading strategy (:func:`extract_brick_cutouts`): the 9 files of a brick (image, invvar,
psfsize x g, r, z) are each opened once. For a tile-compressed file the objects' boxes are
grouped into a few blocks of nearby tile rows and each block is read with
``CompImageHDU.section[y0:y1, x0:x1]``, which decompresses only the tiles it touches (DR10
files use one-row tiles); when the blocks would cover most of the file
(:data:`DENSE_TILE_FRACTION`), the whole image is decompressed once and sliced instead.
For psfsize only the object's own pixel is read.

Objects whose box leaves the brick image are dropped with status ``"edge"``; stitching
the neighbouring bricks' pixels is future work. This loses nothing for objects cut from
their own brick (``BRICKNAME``): a brick extends at most 0.125 deg = 1718 px from its
centre while its image extends 1800 px, so such objects are >= ~80 px from the image edge;
only objects cut from a neighbour's overlap margin can be dropped.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.wcs import WCS

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.catalogs.bricks import brick_wcs
from stronglens_assets.science.core.columns import require_columns

__all__ = [
    "BANDS",
    "CUTOUT_SIZE",
    "DEFAULT_MAX_ZERO_INVVAR_FRAC",
    "DENSE_TILE_FRACTION",
    "MERGE_GAP_PIXELS",
    "PRODUCTS",
    "REJECT_REASONS",
    "BrickCutouts",
    "CoaddError",
    "CoaddNotFoundError",
    "CorruptCoaddError",
    "MissingCoaddError",
    "OpenFile",
    "extract_brick_cutouts",
    "pack_shard",
    "validate_fits",
]

CUTOUT_SIZE: int = 101
"""Cutout side length in pixels (odd: the object is on the central pixel)."""
BANDS: tuple[str, ...] = ("g", "r", "z")
"""Bands of a cutout, in array order."""
PRODUCTS: tuple[str, ...] = ("image", "invvar", "psfsize")
"""Coadd products read per band."""
DEFAULT_MAX_ZERO_INVVAR_FRAC: float = 0.05
"""Largest tolerated fraction of ``invvar <= 0`` pixels (no coverage) in any band's cutout."""
DENSE_TILE_FRACTION: float = 0.65
"""Decompress the whole file once when the planned sections would touch at least this
fraction of its tiles. Measured (bench/cutouts.py, astropy 8, 3600x3600 RICE_1 row tiles):
a tile read through ``.section`` costs 1.3-1.8x a tile of a whole-image read, plus ~3 ms per
``section`` call; sparse and whole-file reads break even near 0.68 of the tiles."""
MERGE_GAP_PIXELS: int = 100_000
"""Two boxes separated by fewer than this many pixels of untouched tiles (28 rows of a DR10
brick) are read with one ``section`` call: decompressing the gap costs less than a call."""

STATUS_OK = "ok"
REJECT_REASONS: tuple[str, ...] = (
    "outside_brick",
    "edge",
    "nonfinite",
    "bad_psfsize",
    "zero_invvar",
)
"""Values of the index ``status`` column other than ``"ok"``, in the order they are tested."""

OpenFile = Callable[[str, str], "str | os.PathLike[str]"]
"""``open_file(product, band) -> local path`` of one coadd file of the brick being cut."""

_CORRUPT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    EOFError,
    zlib.error,
    VerifyError,
    RuntimeError,
)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
class CoaddError(StronglensError, RuntimeError):
    """Base class of coadd access errors; messages name the brick, file, URL or URI."""


class MissingCoaddError(CoaddError, FileNotFoundError):
    """A coadd file needed for a brick is missing (attributes ``brick``, ``product``, ``band``)."""

    def __init__(
        self,
        message: str,
        *,
        brick: str | None = None,
        product: str | None = None,
        band: str | None = None,
    ):
        super().__init__(message)
        self.brick = brick
        self.product = product
        self.band = band

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CoaddNotFoundError(MissingCoaddError):
    """A coadd source does not have the requested file (404 / 403 / no such path)."""


class CorruptCoaddError(CoaddError, ValueError):
    """A coadd file is truncated or not valid FITS (attribute ``path``: the file)."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)


# --------------------------------------------------------------------------------------------
# FITS access
# --------------------------------------------------------------------------------------------
def _image_hdu(hdul: fits.HDUList, path: Path) -> tuple[int, fits.CompImageHDU | fits.ImageHDU]:
    """(index, HDU) of the coadd image: HDU 1 (DR10 ``.fits.fz``) or a 2-d primary.

    Only the HDUs up to the image are parsed (``lazy_load_hdus``).
    """
    for i in (1, 0):
        try:
            hdu = hdul[i]
        except IndexError:
            continue
        if _is_image(hdu):
            return i, hdu
    raise CorruptCoaddError(f"{path}: no 2-d image HDU in the file", path=path)


def _is_image(hdu: object) -> bool:
    return (
        isinstance(hdu, fits.CompImageHDU | fits.ImageHDU | fits.PrimaryHDU)
        and hdu.header.get("NAXIS", 0) == 2
    )


def _check_complete(hdul: fits.HDUList, index: int, path: Path, size: int) -> None:
    """Raise if the file ends before HDU ``index``'s data does (FITS pads to 2880 bytes)."""
    info = hdul.fileinfo(index)
    end = int(info["datLoc"]) + int(info["datSpan"])
    if end > size:
        raise CorruptCoaddError(
            f"{path}: truncated FITS file: {size} bytes, headers declare {end}", path=path
        )


def validate_fits(path: str | os.PathLike[str]) -> None:
    """Cheap structural check of a (tile-compressed) FITS coadd file.

    Parses every header, checks that the file holds all the data its headers declare and
    that it contains a 2-d image HDU. Does not decompress tiles (a corrupt tile is reported
    by :func:`extract_brick_cutouts` when read).

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptCoaddError: truncated or not FITS; the message names the file.
    """
    path = Path(path)
    size = path.stat().st_size
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
            for i in range(len(hdul)):
                _check_complete(hdul, i, path, size)
            _image_hdu(hdul, path)
    except CorruptCoaddError:
        raise
    except FileNotFoundError:
        raise
    except _CORRUPT_EXCEPTIONS as exc:
        raise CorruptCoaddError(
            f"{path}: corrupt or truncated FITS file ({exc})", path=path
        ) from exc


# --------------------------------------------------------------------------------------------
# Read planning
# --------------------------------------------------------------------------------------------
def _group_intervals(start: np.ndarray, stop: np.ndarray, gap: int) -> np.ndarray:
    """Group labels (in input order) of half-open integer intervals.

    Intervals sorted by start join the current group while they begin at most ``gap``
    units after the furthest end seen so far.
    """
    order = np.argsort(start, kind="stable")
    s, e = start[order], stop[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] > reach[:-1] + gap
    labels = np.empty(s.size, dtype=np.int64)
    labels[order] = np.cumsum(new) - 1
    return labels


class _Block(NamedTuple):
    """One ``section`` read: pixel bounds and the members' positions in the box arrays."""

    y0: int
    y1: int
    x0: int
    x1: int
    members: np.ndarray


def _plan_blocks(
    y0: np.ndarray,
    x0: np.ndarray,
    h: int,
    w: int,
    tile_shape: tuple[int, int],
    shape: tuple[int, int],
    merge_gap_pixels: int,
) -> tuple[list[_Block], float]:
    """Group boxes ``[y0, y0 + h) x [x0, x0 + w)`` into section reads.

    Returns the blocks and the fraction of the file's tiles they decompress.
    """
    ty, tx = tile_shape
    ny, nx = shape
    n_tiles = -(-ny // ty) * -(-nx // tx)
    row_gap = max(0, merge_gap_pixels // max(1, ty * nx))
    t_r0, t_r1 = y0 // ty, (y0 + h - 1) // ty + 1
    bands = _group_intervals(t_r0, t_r1, row_gap)
    blocks: list[_Block] = []
    touched = 0
    for band in range(int(bands.max()) + 1 if bands.size else 0):
        idx = np.flatnonzero(bands == band)
        band_rows = int(t_r1[idx].max() - t_r0[idx].min()) * ty
        col_gap = max(0, merge_gap_pixels // max(1, band_rows * tx))
        t_c0, t_c1 = x0[idx] // tx, (x0[idx] + w - 1) // tx + 1
        cols = _group_intervals(t_c0, t_c1, col_gap)
        for col in range(int(cols.max()) + 1):
            members = idx[cols == col]
            by0, bx0 = int(y0[members].min()), int(x0[members].min())
            by1, bx1 = int(y0[members].max()) + h, int(x0[members].max()) + w
            touched += ((by1 - 1) // ty - by0 // ty + 1) * ((bx1 - 1) // tx - bx0 // tx + 1)
            blocks.append(_Block(by0, by1, bx0, bx1, members))
    return blocks, touched / n_tiles


def _gather(arr: np.ndarray, ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    """``arr[y:y + h, x:x + w]`` for every (y, x), stacked: shape (n, h, w), a copy."""
    windows = np.lib.stride_tricks.sliding_window_view(arr, (h, w))
    return windows[ys, xs]


def _read_boxes(
    path: Path,
    shape: tuple[int, int],
    y0: np.ndarray,
    x0: np.ndarray,
    h: int,
    w: int,
    out: np.ndarray,
    dense_fraction: float,
    merge_gap_pixels: int,
) -> None:
    """Fill ``out[k] = data[y0[k]:y0[k] + h, x0[k]:x0[k] + w]`` from one coadd file.

    Opens the file once; reads tile-aligned sections or the whole image (see module doc).
    """
    size = path.stat().st_size
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            index, hdu = _image_hdu(hdul, path)
            _check_complete(hdul, index, path, size)
            if tuple(hdu.shape) != shape:
                raise CorruptCoaddError(
                    f"{path}: image shape {tuple(hdu.shape)} does not match the brick WCS {shape}",
                    path=path,
                )
            if isinstance(hdu, fits.CompImageHDU):
                tile_shape = (int(hdu.tile_shape[0]), int(hdu.tile_shape[1]))
            else:
                tile_shape = (1, shape[1])
            blocks, fraction = _plan_blocks(y0, x0, h, w, tile_shape, shape, merge_gap_pixels)
            if fraction >= dense_fraction:
                out[...] = _gather(np.asarray(hdu.data), y0, x0, h, w)
                return
            for block in blocks:
                sub = np.asarray(hdu.section[block.y0 : block.y1, block.x0 : block.x1])
                m = block.members
                out[m] = _gather(sub, y0[m] - block.y0, x0[m] - block.x0, h, w)
    except (CorruptCoaddError, FileNotFoundError):
        raise
    except _CORRUPT_EXCEPTIONS as exc:
        raise CorruptCoaddError(
            f"{path}: corrupt or truncated coadd file ({type(exc).__name__}: {exc})", path=path
        ) from exc


def _resolve(open_file: OpenFile, brick: str, product: str, band: str) -> Path:
    """Local path of one coadd file; any "missing" outcome becomes :class:`MissingCoaddError`."""
    where = f"brick {brick}: {product} coadd for band {band!r}"
    try:
        path = Path(open_file(product, band))
    except FileNotFoundError as exc:  # includes CoaddNotFoundError / MissingCoaddError
        raise MissingCoaddError(
            f"{where} is missing: {exc}", brick=brick, product=product, band=band
        ) from exc
    if not path.is_file():
        raise MissingCoaddError(
            f"{where} is missing: no file at {path}", brick=brick, product=product, band=band
        )
    return path


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
class BrickCutouts(NamedTuple):
    """Result of :func:`extract_brick_cutouts` (a tuple: unpack as 4 values).

    Attributes:
        cutouts: float32 (N, n_bands, size, size), nanomaggies / pixel.
        invvar: float32 (N, n_bands, size, size), 1 / nanomaggy^2.
        psfsize: float32 (N, n_bands), PSF FWHM [arcsec] at the object's pixel.
        index: one row per input object, in input order: ``<id_column>``, ``brick``,
            ``ra``, ``dec`` [deg], ``x``, ``y`` (0-based pixel, -1 if not finite), ``status``
            (``"ok"`` or one of :data:`REJECT_REASONS`), ``cutout_row`` (row in the arrays,
            -1 if rejected).
    """

    cutouts: npt.NDArray[np.float32]
    invvar: npt.NDArray[np.float32]
    psfsize: npt.NDArray[np.float32]
    index: pd.DataFrame


def extract_brick_cutouts(
    brick: str,
    objects: pd.DataFrame,
    open_file: OpenFile,
    size: int = CUTOUT_SIZE,
    bands: Sequence[str] = BANDS,
    max_zero_invvar_frac: float = DEFAULT_MAX_ZERO_INVVAR_FRAC,
    edge_policy: str = "drop",
    *,
    id_column: str = "objid",
    ra_column: str = "ra",
    dec_column: str = "dec",
    wcs: WCS | None = None,
    dense_fraction: float = DENSE_TILE_FRACTION,
    merge_gap_pixels: int = MERGE_GAP_PIXELS,
) -> BrickCutouts:
    """Cut ``size`` x ``size`` image + invvar cutouts and psfsize values for objects of a brick.

    Args:
        brick: DR10 brick name (e.g. ``"1126p222"``).
        objects: table with ``ra_column``, ``dec_column`` [deg, ICRS] and ``id_column``.
        open_file: ``open_file(product, band) -> local path`` of a coadd file of this brick
            (e.g. ``lambda p, b: source.open(brick, p, b)``); called once per file.
        size: cutout side in pixels (odd).
        bands: bands in array order.
        max_zero_invvar_frac: reject an object (``"zero_invvar"``) when the fraction of
            ``invvar <= 0`` pixels in its cutout exceeds this in any band.
        edge_policy: ``"drop"``: boxes leaving the brick are rejected (``"edge"``).
        id_column, ra_column, dec_column: column names in ``objects``.
        wcs: pixel grid of the coadd files; default :func:`~.bricks.brick_wcs` (3600 x 3600,
            0.262"/px). Its ``pixel_shape`` must match the files.
        dense_fraction, merge_gap_pixels: read-planning knobs (see module doc).

    Returns:
        :class:`BrickCutouts` ``(cutouts, invvar, psfsize, index)``. Statuses, tested in
        order: ``outside_brick`` (pixel not in the image), ``edge`` (box leaves the image),
        ``nonfinite`` (a non-finite image / invvar pixel or psfsize value in any band),
        ``bad_psfsize`` (psfsize <= 0 in any band: no valid PSF, e.g. a missing-data fill
        value), ``zero_invvar``.

    Raises:
        MissingCoaddError: a needed file is missing (names brick, product, band).
        CorruptCoaddError: a file is truncated or corrupt (names the file).
        ValueError: bad arguments, missing columns or non-finite coordinates.

    Files are opened only when at least one object needs pixels.
    """
    if edge_policy != "drop":
        raise ValueError(
            f"edge_policy={edge_policy!r} is not supported: only 'drop' (stitching neighbouring "
            "bricks is future work)"
        )
    if not isinstance(size, int | np.integer) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size!r}")
    size = int(size)
    bands = tuple(bands)
    if not bands:
        raise ValueError("bands must not be empty")
    if not 0.0 <= max_zero_invvar_frac <= 1.0:
        raise ValueError(f"max_zero_invvar_frac must lie in [0, 1], got {max_zero_invvar_frac}")
    require_columns(
        objects.columns,
        (id_column, ra_column, dec_column),
        "objects",
        hint=f"has {list(objects.columns)} (set id_column / ra_column / dec_column)",
    )
    wcs = brick_wcs(brick) if wcs is None else wcs
    if wcs.pixel_shape is None:
        raise ValueError("wcs.pixel_shape must be set (image size in pixels)")
    nx, ny = (int(v) for v in wcs.pixel_shape)
    shape = (ny, nx)

    ra = objects[ra_column].to_numpy(dtype=np.float64)
    dec = objects[dec_column].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        raise ValueError(f"brick {brick}: {int(bad.sum())} object(s) with non-finite ra/dec")
    n = ra.size
    px, py = wcs.world_to_pixel_values(ra, dec)
    px, py = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
    finite = np.isfinite(px) & np.isfinite(py) & (np.abs(px) < 1e9) & (np.abs(py) < 1e9)
    x = np.where(finite, np.floor(np.where(finite, px, 0.0) + 0.5), -1).astype(np.int64)
    y = np.where(finite, np.floor(np.where(finite, py, 0.0) + 0.5), -1).astype(np.int64)

    half = size // 2
    inside = finite & (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    in_box = inside & (x >= half) & (x < nx - half) & (y >= half) & (y < ny - half)
    status = np.full(n, STATUS_OK, dtype=object)
    status[~inside] = "outside_brick"
    status[inside & ~in_box] = "edge"

    cand = np.flatnonzero(in_box)
    nb, nc = len(bands), cand.size
    img = np.empty((nc, nb, size, size), dtype=np.float32)
    ivar = np.empty((nc, nb, size, size), dtype=np.float32)
    psf = np.empty((nc, nb, 1, 1), dtype=np.float32)
    if nc:
        cy, cx = y[cand], x[cand]
        for j, band in enumerate(bands):
            for product, out, h, oy, ox in (
                ("image", img, size, cy - half, cx - half),
                ("invvar", ivar, size, cy - half, cx - half),
                ("psfsize", psf, 1, cy, cx),
            ):
                path = _resolve(open_file, brick, product, band)
                try:
                    _read_boxes(
                        path, shape, oy, ox, h, h, out[:, j], dense_fraction, merge_gap_pixels
                    )
                except FileNotFoundError as exc:  # removed since _resolve looked
                    raise MissingCoaddError(
                        f"brick {brick}: {product} coadd for band {band!r} is missing: {exc}",
                        brick=brick,
                        product=product,
                        band=band,
                    ) from exc

    psf = psf.reshape(nc, nb)
    nonfinite = (
        ~np.isfinite(img).all(axis=(1, 2, 3))
        | ~np.isfinite(ivar).all(axis=(1, 2, 3))
        | ~np.isfinite(psf).all(axis=1)
    )
    bad_psf = ~nonfinite & ~(psf > 0).all(axis=1)  # a PSF FWHM must be a positive size
    zero_frac = (ivar <= 0).mean(axis=(2, 3)) if nc else np.zeros((0, nb))
    zero_bad = ~nonfinite & ~bad_psf & (zero_frac > max_zero_invvar_frac).any(axis=1)
    status[cand[nonfinite]] = "nonfinite"
    status[cand[bad_psf]] = "bad_psfsize"
    status[cand[zero_bad]] = "zero_invvar"
    keep = ~nonfinite & ~bad_psf & ~zero_bad
    if not keep.all():
        img, ivar, psf = img[keep], ivar[keep], psf[keep]

    cutout_row = np.full(n, -1, dtype=np.int64)
    cutout_row[cand[keep]] = np.arange(int(keep.sum()), dtype=np.int64)
    index = pd.DataFrame(
        {
            id_column: objects[id_column].to_numpy(),
            "brick": np.full(n, brick, dtype=object),
            "ra": ra,
            "dec": dec,
            "x": x,
            "y": y,
            "status": status.astype(str),
            "cutout_row": cutout_row,
        }
    )
    return BrickCutouts(img, ivar, psf, index)


def pack_shard(
    cutouts: np.ndarray,
    invvar: np.ndarray,
    psfsize: np.ndarray,
    index: pd.DataFrame,
    id_column: str = "objid",
) -> dict[str, np.ndarray]:
    """Arrays of the accepted cutouts for ``np.savez`` / ``np.savez_compressed``.

    Keys ``cutout``, ``invvar`` (float32, N x bands x size x size), ``psfsize`` (float32,
    N x bands) and ``objid`` (ids of ``index[id_column]`` in ``cutout_row`` order; object
    columns become fixed-width strings so the file loads without pickle).
    """
    ok = index[index["cutout_row"] >= 0].sort_values("cutout_row")
    if len(ok) != len(cutouts) or len(invvar) != len(cutouts) or len(psfsize) != len(cutouts):
        raise ValueError(
            f"index has {len(ok)} accepted rows; arrays have {len(cutouts)} cutouts, "
            f"{len(invvar)} invvar, {len(psfsize)} psfsize rows"
        )
    objid = ok[id_column].to_numpy()
    if objid.dtype == object:
        objid = objid.astype(str)
    return {
        "cutout": np.asarray(cutouts, dtype=np.float32),
        "invvar": np.asarray(invvar, dtype=np.float32),
        "psfsize": np.asarray(psfsize, dtype=np.float32),
        "objid": objid,
    }
