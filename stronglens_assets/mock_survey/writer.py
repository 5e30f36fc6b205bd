"""Write DR10-format products of the mock sky: coadd FITS, sweep and truth Parquet.

Layout under ``root`` (``<RRR>`` = first three characters of the brick name)::

    coadd/<RRR>/<brick>/legacysurvey-<brick>-{image,invvar,psfsize}-<band>.fits.fz
    coadd/<RRR>/<brick>/_COMPLETE.json      written last; marks the brick complete
    sweep/<RRR>/sweep-<brick>.parquet       DR10 sweep columns (BRICK_PRIMARY rows)
    truth/<RRR>/lenses-<brick>.parquet      one row per lens (lenscat and mock)
    truth/<RRR>/objects-<brick>.parquet     class label and true model per OBJID
    truth/<RRR>/arcs-<brick>.npz            noiseless arc stamps of the lenses (``arcs``
                                            (N, B, 65, 65) float32 nanomaggies, ``lens_id``,
                                            ``name``, ``bands``, ``stamp_center_x/y``) and the
                                            band PSF kernels (``psf_<b>``)

FITS: an empty primary HDU plus one RICE_1 tile-compressed image HDU, header = the brick's
TAN WCS + BRICKNAM, BRICKID, BAND, BUNIT, MAGZERO = 22.5. Tiles are 400 x 400 px rather
than fpack's one-row tiles: astropy's per-tile Python overhead makes 3,600 row tiles ~3x
slower to write, and any FITS reader handles either (square tiles also make small cutout
sections cheaper to decompress). Quantisation (documented choices):

* ``image``: quantisation step = sigma_min / 16, where sigma_min = 1/sqrt(max invvar) is the
  smallest per-pixel noise of the brick (passed as an absolute step, negative
  ``quantize_level``: the same q = 16 as the fpack/astropy default, which estimates the
  noise per tile, but exact and ~3x faster); rms quantisation error <= 1.8% of the noise.
  ``SUBTRACTIVE_DITHER_2`` keeps the exact zeros of bad strips, and a **fixed**
  ``dither_seed`` in 1..10000 derived from (seed, brick, band, product) replaces the
  clock-based default, so the bytes are reproducible.
* ``invvar``: piecewise constant, so noise-based quantisation is meaningless; it is
  quantised with an absolute step (negative ``quantize_level``) of ``1e-5`` times its
  maximum rounded down to a power of ten, without dithering (zeros stay exact).
* ``psfsize``: quantised with an absolute step of 2^-13 arcsec, no dithering; the mock's
  FWHM values are multiples of that step, so the stored map is exact.

Atomicity and completeness: a brick's FITS files and its ``_COMPLETE.json`` (per-file
sha256 of every FITS and Parquet product + the config and input checksums) go into a hidden
temporary sibling directory; the Parquet files go to temporary names next to their targets.
The commit is: move an existing (stale or incomplete) brick directory aside, ``os.replace``
the Parquet files, rename the temporary directory into place, delete the old one. A brick is
complete only if its ``_COMPLETE.json`` exists, its checksums match the current config and
lenscat input, and every listed file has the recorded sha256; an interrupted build therefore
never yields a brick that a later run takes as complete, and an interruption before the
commit leaves a previously complete brick untouched. Re-runs skip complete bricks.
Concurrent builds of the *same* brick are not supported (distinct bricks are fine).
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits

from stronglens_assets.mock_survey.config import DemoSkyConfig, config_checksum
from stronglens_assets.mock_survey.render import BrickImages, render_brick
from stronglens_assets.mock_survey.sky import (
    PSFSIZE_STEP_ARCSEC,
    SkyModel,
    draw_brick_sky,
    lenscat_in_brick,
)
from stronglens_assets.science.catalogs.bricks import brick_name, brick_wcs_header, parse_brick_name
from stronglens_assets.science.core.hashing import sha256_bytes, sha256_file
from stronglens_assets.science.core.npz import encode_npz
from stronglens_assets.science.core.units import AB_ZERO_POINT

__all__ = [
    "COMPLETE_MARKER",
    "PRODUCTS",
    "RELEASE",
    "BrickPaths",
    "BrickResult",
    "brick_paths",
    "build_brick",
    "build_survey",
    "config_checksum",
    "is_brick_complete",
]

#: Coadd products written per band, with their BUNIT.
PRODUCTS: dict[str, str] = {"image": "nanomaggy", "invvar": "1/nanomaggy^2", "psfsize": "arcsec"}
#: Name of the completion marker inside a brick's coadd directory.
COMPLETE_MARKER = "_COMPLETE.json"
#: RELEASE column value (DR10 south, DECam).
RELEASE = 10000
#: Image quantisation step = (smallest per-pixel noise sigma of the brick) / this.
IMAGE_QUANTIZE_LEVEL: float = 16.0
#: Compression tile (rows, columns); 81 tiles per 3600 x 3600 image.
FITS_TILE_SHAPE: tuple[int, int] = (400, 400)
_MARKER_FORMAT = 1


@dataclass(frozen=True)
class BrickPaths:
    """Absolute paths of one brick's products."""

    root: Path
    brickname: str

    @property
    def rrr(self) -> str:
        return self.brickname[:3]

    @property
    def coadd_dir(self) -> Path:
        return self.root / "coadd" / self.rrr / self.brickname

    @property
    def marker(self) -> Path:
        return self.coadd_dir / COMPLETE_MARKER

    def fits_name(self, product: str, band: str) -> str:
        return f"legacysurvey-{self.brickname}-{product}-{band}.fits.fz"

    @property
    def sweep(self) -> Path:
        return self.root / "sweep" / self.rrr / f"sweep-{self.brickname}.parquet"

    @property
    def truth_lenses(self) -> Path:
        return self.root / "truth" / self.rrr / f"lenses-{self.brickname}.parquet"

    @property
    def truth_objects(self) -> Path:
        return self.root / "truth" / self.rrr / f"objects-{self.brickname}.parquet"

    @property
    def truth_arcs(self) -> Path:
        return self.root / "truth" / self.rrr / f"arcs-{self.brickname}.npz"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def brick_paths(root: str | os.PathLike[str], brickname: str) -> BrickPaths:
    """Paths of ``brickname``'s products under ``root``."""
    return BrickPaths(Path(root), brickname)


@dataclass(frozen=True)
class BrickResult:
    """Outcome of building one brick.

    Attributes:
        brickname, brickid: the brick.
        skipped: True when the brick was already complete for this config and input.
        n_objects: sweep rows.
        n_lenses_lenscat, n_lenses_mock: lenses by origin.
        n_visible_lenscat, n_visible_mock: lenses with ``arc_visible`` by origin.
        files: product path (relative to root, POSIX) -> sha256 hex.
        seconds: wall time of this call.
    """

    brickname: str
    brickid: int
    skipped: bool
    n_objects: int
    n_lenses_lenscat: int
    n_lenses_mock: int
    n_visible_lenscat: int
    n_visible_mock: int
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


# ----------------------------------------------------------------------------------------
# checksums and completeness
# ----------------------------------------------------------------------------------------
def _inputs_checksum(lenscat: pd.DataFrame) -> str:
    """sha256 of the lenscat rows inside a brick (name, ra, dec, grading)."""
    rows = [
        [str(r.name), repr(float(r.ra)), repr(float(r.dec)), str(r.grading)]
        for r in lenscat.itertuples(index=False)
    ]
    return sha256_bytes(json.dumps(rows).encode())


def _read_marker(paths: BrickPaths) -> dict | None:
    try:
        return json.loads(paths.marker.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _marker_valid(paths: BrickPaths, marker: dict | None, cfg_sum: str, in_sum: str) -> bool:
    if not marker or marker.get("format") != _MARKER_FORMAT:
        return False
    if marker.get("config_checksum") != cfg_sum or marker.get("inputs_checksum") != in_sum:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, digest in files.items():
        path = paths.root / rel
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True


def is_brick_complete(
    root: str | os.PathLike[str],
    brickname: str,
    config: DemoSkyConfig,
    lenscat_positions: pd.DataFrame | None = None,
) -> bool:
    """True if the brick's products under ``root`` are complete for ``config`` and input.

    Checks the ``_COMPLETE.json`` marker, the config checksum, the checksum of the lenscat
    positions inside the brick and the sha256 of every product file.
    """
    paths = brick_paths(root, brickname)
    in_sum = _inputs_checksum(lenscat_in_brick(lenscat_positions, brickname))
    return _marker_valid(paths, _read_marker(paths), config_checksum(config), in_sum)


# ----------------------------------------------------------------------------------------
# table builders
# ----------------------------------------------------------------------------------------
def _sweep_table(sky: SkyModel, images: BrickImages) -> pd.DataFrame:
    """DR10 sweep-like table (upper-case DR10 column names and dtypes)."""
    obj = sky.objects
    ph = images.photometry
    n = len(obj)
    f32 = np.float32
    cols: dict[str, np.ndarray] = {
        "RELEASE": np.full(n, RELEASE, dtype=np.int16),
        "BRICKID": np.full(n, sky.brick.brickid, dtype=np.int32),
        "BRICKNAME": np.full(n, sky.brick.name, dtype=object),
        "OBJID": obj["objid"].to_numpy(np.int32),
        "BRICK_PRIMARY": np.ones(n, dtype=bool),
        "TYPE": obj["type"].to_numpy(object),
        "RA": obj["ra"].to_numpy(np.float64),
        "DEC": obj["dec"].to_numpy(np.float64),
    }
    flux_bands = [b for b in ("g", "r", "i", "z") if b in sky.bands] + ["w1"]
    for b in flux_bands:
        cols[f"FLUX_{b.upper()}"] = obj[f"flux_{b}"].to_numpy(f32)
    for b in flux_bands:
        cols[f"FLUX_IVAR_{b.upper()}"] = ph[f"flux_ivar_{b}"].to_numpy(f32)
    for b in flux_bands:
        cols[f"MW_TRANSMISSION_{b.upper()}"] = np.ones(n, dtype=f32)
    for b in sky.bands:
        cols[f"NOBS_{b.upper()}"] = ph[f"nobs_{b}"].to_numpy(np.int16)
    cols["SHAPE_R"] = obj["shape_r"].to_numpy(f32)
    cols["SHAPE_E1"] = obj["shape_e1"].to_numpy(f32)
    cols["SHAPE_E2"] = obj["shape_e2"].to_numpy(f32)
    cols["SERSIC"] = obj["sersic"].to_numpy(f32)
    for prefix in ("psfsize", "psfdepth", "galdepth"):
        for b in sky.bands:
            cols[f"{prefix.upper()}_{b.upper()}"] = ph[f"{prefix}_{b}"].to_numpy(f32)
    cols["FIBERFLUX_Z"] = ph["fiberflux_z"].to_numpy(f32)
    cols["MASKBITS"] = obj["maskbits"].to_numpy(np.int32)
    return pd.DataFrame(cols)


def _truth_lenses(sky: SkyModel, images: BrickImages) -> pd.DataFrame:
    lenses = sky.lenses.merge(images.lens_arcs, on="lens_id", how="left", validate="1:1")
    lenses.insert(0, "brickname", sky.brick.name)
    return lenses


def _truth_arcs(sky: SkyModel, images: BrickImages) -> bytes:
    arrays = {
        "arcs": images.arc_stamps,
        "lens_id": sky.lenses["lens_id"].to_numpy(np.int32),
        "name": np.asarray(sky.lenses["name"].astype(str).to_numpy(), dtype=np.str_),
        "bands": np.asarray(sky.bands, dtype=np.str_),
        "stamp_center_x": images.lens_arcs["stamp_center_x"].to_numpy(np.int64),
        "stamp_center_y": images.lens_arcs["stamp_center_y"].to_numpy(np.int64),
    }
    for b in sky.bands:
        arrays[f"psf_{b}"] = images.bands[b].psf_kernel
    return encode_npz(arrays)


def _truth_objects(sky: SkyModel, images: BrickImages) -> pd.DataFrame:
    obj = sky.objects.rename(columns={"objid": "OBJID"}).copy()
    obj.insert(0, "BRICKNAME", sky.brick.name)
    obj["stamp_npix"] = images.photometry["stamp_npix"].to_numpy()
    return obj


# ----------------------------------------------------------------------------------------
# low-level writers (module-level so tests can interrupt them)
# ----------------------------------------------------------------------------------------
def _dither_seed(seed: int, brickname: str, band: str, product: str) -> int:
    digest = hashlib.sha256(f"{seed}/{brickname}/{band}/{product}".encode()).digest()
    return 1 + int.from_bytes(digest[:4], "big") % 10000


def _fits_header(brickname: str, band: str, product: str) -> fits.Header:
    hdr = brick_wcs_header(brickname)
    for key in ("NAXIS", "NAXIS1", "NAXIS2"):
        hdr.remove(key, ignore_missing=True)
    hdr["BAND"] = (band, "filter")
    hdr["BUNIT"] = (PRODUCTS[product], "pixel unit")
    hdr["MAGZERO"] = (AB_ZERO_POINT, "AB mag = 22.5 - 2.5 log10(flux)")
    hdr["PRODTYPE"] = (product, "coadd product")
    hdr["SURVEY"] = ("mock-dr10", "stronglens_assets mock sky, not real data")
    return hdr


def _quantisation(product: str, data: np.ndarray, invvar: np.ndarray) -> tuple[float, int]:
    """(quantize_level, quantize_method) of a product (see the module docstring)."""
    if product == "image":
        top = float(np.max(invvar))
        sigma_min = 1.0 / np.sqrt(top) if top > 0 else 1.0
        return -sigma_min / IMAGE_QUANTIZE_LEVEL, 2  # SUBTRACTIVE_DITHER_2
    if product == "invvar":
        top = float(np.max(data))
        step = 10.0 ** np.floor(np.log10(top * 1e-5)) if top > 0 else 1e-10
        return -float(step), -1  # NO_DITHER
    return -PSFSIZE_STEP_ARCSEC, -1  # exact: FWHMs are multiples of the step


def _write_fits(
    path: Path,
    data: np.ndarray,
    header: fits.Header,
    quantize_level: float,
    quantize_method: int,
    dither_seed: int,
) -> None:
    """Write one RICE_1 tile-compressed coadd product (empty primary + CompImageHDU)."""
    hdu = fits.CompImageHDU(
        data=np.ascontiguousarray(data, dtype=np.float32),
        header=header,
        compression_type="RICE_1",
        tile_shape=FITS_TILE_SHAPE,
        quantize_level=quantize_level,
        quantize_method=quantize_method,
        dither_seed=dither_seed,
    )
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    with open(path, "wb") as fh:
        fh.write(buf.getbuffer())


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Deterministic Parquet (zstd, no index, no timestamps in the metadata)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd")


def _clean_stale(parent: Path, brickname: str) -> None:
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if entry.name.startswith((f".tmp-{brickname}-", f".old-{brickname}-")):
            shutil.rmtree(entry, ignore_errors=True)


def _clean_stale_files(paths: BrickPaths) -> None:
    for target in (paths.sweep, paths.truth_lenses, paths.truth_objects, paths.truth_arcs):
        if target.parent.is_dir():
            for entry in target.parent.glob(f".{target.name}.tmp-*"):
                entry.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def build_brick(
    config: DemoSkyConfig,
    brickname: str,
    lenscat_positions: pd.DataFrame | None,
    root: str | os.PathLike[str],
) -> BrickResult:
    """Draw, render and write one brick's products under ``root`` (skip if complete).

    Args:
        config: mock-sky configuration.
        brickname: DR10 brick name.
        lenscat_positions: DataFrame (name, ra, dec, grading) of real lenscat positions;
            only rows inside the brick are used. ``None`` = no lenscat lenses.
        root: output root directory.

    Returns:
        :class:`BrickResult` (``skipped=True`` when the brick was already complete).
    """
    t0 = time.perf_counter()
    info = parse_brick_name(brickname)
    paths = brick_paths(root, brickname)
    lenscat = lenscat_in_brick(lenscat_positions, brickname)
    cfg_sum = config_checksum(config)
    in_sum = _inputs_checksum(lenscat)
    marker = _read_marker(paths)
    if marker is not None and _marker_valid(paths, marker, cfg_sum, in_sum):
        return BrickResult(
            brickname=brickname,
            brickid=info.brickid,
            skipped=True,
            files=dict(marker["files"]),
            seconds=time.perf_counter() - t0,
            **marker["summary"],
        )

    parent = paths.coadd_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(parent, brickname)
    _clean_stale_files(paths)

    sky = draw_brick_sky(config, brickname, lenscat)
    images = render_brick(config, sky)
    tables = {
        paths.sweep: _sweep_table(sky, images),
        paths.truth_lenses: _truth_lenses(sky, images),
        paths.truth_objects: _truth_objects(sky, images),
    }

    token = uuid.uuid4().hex[:12]
    tmp_dir = parent / f".tmp-{brickname}-{token}"
    tmp_files: dict[Path, Path] = {}
    try:
        tmp_dir.mkdir()
        files: dict[str, str] = {}
        for band in sky.bands:
            bimg = images.bands[band]
            for product in PRODUCTS:
                data = {"image": bimg.image, "invvar": bimg.invvar}.get(product)
                if data is None:
                    data = bimg.psfsize
                name = paths.fits_name(product, band)
                _write_fits(
                    tmp_dir / name,
                    data,
                    _fits_header(brickname, band, product),
                    *_quantisation(product, data, bimg.invvar),
                    _dither_seed(config.seed, brickname, band, product),
                )
                files[paths.relative(paths.coadd_dir / name)] = sha256_file(tmp_dir / name)
        for target, df in tables.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{target.name}.tmp-{token}"
            tmp_files[target] = tmp
            _write_parquet(df, tmp)
            files[paths.relative(target)] = sha256_file(tmp)
        tmp = paths.truth_arcs.parent / f".{paths.truth_arcs.name}.tmp-{token}"
        tmp_files[paths.truth_arcs] = tmp
        tmp.write_bytes(_truth_arcs(sky, images))
        files[paths.relative(paths.truth_arcs)] = sha256_file(tmp)
        lens_tab = tables[paths.truth_lenses]
        is_lc = (lens_tab["source"] == "lenscat").to_numpy()
        visible = lens_tab["arc_visible"].to_numpy(bool)
        summary = {
            "n_objects": len(tables[paths.sweep]),
            "n_lenses_lenscat": int(is_lc.sum()),
            "n_lenses_mock": int((~is_lc).sum()),
            "n_visible_lenscat": int((visible & is_lc).sum()),
            "n_visible_mock": int((visible & ~is_lc).sum()),
        }
        marker_doc = {
            "format": _MARKER_FORMAT,
            "brickname": brickname,
            "brickid": info.brickid,
            "config_checksum": cfg_sum,
            "inputs_checksum": in_sum,
            "files": dict(sorted(files.items())),
            "summary": summary,
        }
        (tmp_dir / COMPLETE_MARKER).write_text(json.dumps(marker_doc, indent=1, sort_keys=True))

        # commit: old dir aside -> parquet into place -> new dir into place -> drop old
        old_dir = None
        if paths.coadd_dir.exists():
            old_dir = parent / f".old-{brickname}-{token}"
            os.replace(paths.coadd_dir, old_dir)
        for target, tmp in tmp_files.items():
            os.replace(tmp, target)
        os.replace(tmp_dir, paths.coadd_dir)
        if old_dir is not None:
            shutil.rmtree(old_dir, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        for tmp in tmp_files.values():
            tmp.unlink(missing_ok=True)
        raise
    return BrickResult(
        brickname=brickname,
        brickid=info.brickid,
        skipped=False,
        files=dict(sorted(files.items())),
        seconds=time.perf_counter() - t0,
        **summary,
    )


def _build_brick_worker(config_json: str, brickname: str, lenscat: pd.DataFrame, root: str) -> dict:
    config = DemoSkyConfig.model_validate_json(config_json)
    return asdict(build_brick(config, brickname, lenscat, root))


def build_survey(
    config: DemoSkyConfig,
    root: str | os.PathLike[str],
    lenscat_positions: pd.DataFrame | None,
    bricks: Sequence[str] | None = None,
    processes: int | None = None,
) -> list[BrickResult]:
    """Build every brick (default ``config.bricks``) under ``root``; skip complete ones.

    Bricks are built in a ``ProcessPoolExecutor`` with ``processes`` workers (default
    ``config.processes``; 1 = in this process) started with the ``spawn`` method (safe
    when the caller has threads, e.g. under Dagster; a calling script needs the usual
    ``if __name__ == "__main__":`` guard). Results are in brick order. Output bytes do not
    depend on ``processes``.
    """
    names = list(config.bricks if bricks is None else bricks)
    for name in names:
        parse_brick_name(name)
    if len(set(names)) != len(names):
        raise ValueError("bricks must not contain duplicates (one writer per brick)")
    if lenscat_positions is not None:
        missing = {"name", "ra", "dec", "grading"} - set(lenscat_positions.columns)
        if missing:
            raise ValueError(f"lenscat_positions lacks column(s) {sorted(missing)}")
    nproc = config.processes if processes is None else int(processes)
    if nproc < 1:
        raise ValueError(f"processes must be >= 1, got {nproc}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if lenscat_positions is None or len(lenscat_positions) == 0:
        per_brick = {name: lenscat_in_brick(None, name) for name in names}
    else:
        owner = np.asarray(
            brick_name(
                lenscat_positions["ra"].to_numpy(float), lenscat_positions["dec"].to_numpy(float)
            )
        )
        per_brick = {
            name: lenscat_positions.loc[owner == name, ["name", "ra", "dec", "grading"]]
            for name in names
        }
    nproc = min(nproc, max(1, len(names)))
    if nproc == 1:
        return [build_brick(config, name, per_brick[name], root) for name in names]
    config_json = config.model_dump_json()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=nproc, mp_context=ctx) as pool:
        futures = [
            pool.submit(_build_brick_worker, config_json, name, per_brick[name], str(root))
            for name in names
        ]
        return [BrickResult(**f.result()) for f in futures]
