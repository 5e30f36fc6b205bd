"""Tests of the negative selection (stronglens_assets.science.samples: negative_config,
quality, classes, splits, pool, manifest): gates, N1/N2 rules, splits, pool, sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
import pandas as pd
import pytest
import yaml

from stronglens_assets.config import ConfigError
from stronglens_assets.science.catalogs.crossmatch import within_radius
from stronglens_assets.science.catalogs.sweeps import SWEEP_COLUMNS
from stronglens_assets.science.samples import classes as CL
from stronglens_assets.science.samples import manifest as MA
from stronglens_assets.science.samples import negative_config as NC
from stronglens_assets.science.samples import pool as PO
from stronglens_assets.science.samples import quality as Q
from stronglens_assets.science.samples import splits as SP
from stronglens_assets.settings import PROJECT_ROOT
from stronglens_assets.testing.sweeps import synthetic_sweep

CONFIG_PATH = PROJECT_ROOT / "configs" / "negatives.yaml"


@pytest.fixture(scope="module")
def cfg() -> NC.NegativeSelectionConfig:
    return NC.load_negative_selection_config(CONFIG_PATH)


def _flux(mag: float) -> float:
    return float(10.0 ** (-0.4 * (mag - 22.5)))


# An LRG passing every N1 cut: z - W1 = 1.2 > 0.6; zfib 20 < 21.6; g - W1 = 4.5; r - W1 = 2.7.
LRG = {"g": 22.3, "r": 20.5, "z": 19.0, "w1": 17.8, "zfib": 20.0, "type": "DEV", "shape_r": 1.0}


def _rows(*specs: dict[str, Any]) -> pd.DataFrame:
    """Sweep rows from magnitudes (MW_TRANSMISSION = 1, so magnitudes are extinction corrected)."""
    out = []
    for i, spec in enumerate(specs):
        s = {**LRG, "sersic": 4.0, "nobs": 3, "maskbits": 0, **spec}
        out.append(
            {
                "RA": s.get("ra", 36.0 + 0.01 * i),
                "DEC": s.get("dec", -4.0),
                "BRICKNAME": "0360m040",
                "OBJID": i,
                "TYPE": s["type"],
                **{f"FLUX_{b.upper()}": _flux(s[b]) for b in ("g", "r", "z", "w1")},
                **{f"FLUX_IVAR_{b}": 100.0 for b in ("G", "R", "Z", "W1")},
                **{f"MW_TRANSMISSION_{b}": 1.0 for b in ("G", "R", "Z", "W1")},
                "SHAPE_R": s["shape_r"],
                "SERSIC": s["sersic"],
                **{f"NOBS_{b}": s.get(f"nobs_{b.lower()}", s["nobs"]) for b in "GRZ"},
                **{f"PSFSIZE_{b}": 1.2 for b in "GRZ"},
                "FIBERFLUX_Z": _flux(s["zfib"]),
                "MASKBITS": s["maskbits"],
            }
        )
    frame = pd.DataFrame(out)
    return frame.astype({c: np.float32 for c in frame.columns if c.startswith(("FLUX", "MW_"))})


# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------
def test_config_file_values(cfg: NC.NegativeSelectionConfig) -> None:
    assert cfg.quality.exclude_maskbits == (1, 12, 13)
    assert cfg.quality.max_mag_z == 20.0
    assert cfg.split_fractions.train == 0.70 and cfg.split_fractions.val == 0.15
    assert cfg.n2_fraction == pytest.approx(0.25)
    assert cfg.exclusion_radius_arcsec > 0 and cfg.selection_version


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"split_fractions": {"train": 0.7, "val": 0.2, "test": 0.2}}, "split_fractions"),
        ({"n2": {"extended_types": ["SPIRAL"]}}, "n2.extended_types"),
        ({"split_nside": 100}, "split_nside"),
        ({"quality": {"exclude_maskbits": [40]}}, "quality.exclude_maskbits"),
        ({"typo_field": 1}, "typo_field"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, patch: dict[str, Any], field: str) -> None:
    data = yaml.safe_load(CONFIG_PATH.read_text())
    data.update(patch)
    path = tmp_path / "negatives.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        NC.load_negative_selection_config(path)
    assert field in str(info.value) and "negatives.yaml" in str(info.value)


# ----------------------------------------------------------------------------------------------
# quality gates and classes
# ----------------------------------------------------------------------------------------------
def test_quality_gates(cfg: NC.NegativeSelectionConfig) -> None:
    df = _rows(
        {},  # passes
        {"g": 40.0},  # FLUX_G ~ 0 is still > 0: passes
        {"type": "PSF"},
        {"type": "DUP"},
        {"nobs_r": 0},
        {"maskbits": 1 << 1},  # BRIGHT
        {"maskbits": 1 << 12},  # GALAXY
        {"maskbits": 1 << 13},  # CLUSTER
        {"maskbits": 1 << 5},  # ALLMASK_G: not excluded
        {"z": 20.05, "zfib": 21.0},  # too faint
        {"z": 19.95, "zfib": 21.0},
    )
    df.loc[1, "FLUX_G"] = -0.1  # negative flux fails
    assert Q.quality_mask(df, cfg).tolist() == [
        True, False, False, False, False, False, False, False, True, False, True
    ]  # fmt: skip


def test_quality_reasons_name_the_first_failing_gate(cfg: NC.NegativeSelectionConfig) -> None:
    df = _rows(
        {},
        {"type": "PSF"},
        {"nobs_z": 0, "type": "PSF"},  # NOBS is tested before TYPE
        {"maskbits": 1 << 1},
        {"z": 20.05, "zfib": 21.0},
        {},  # MW_TRANSMISSION_Z = 0 below
        {},  # MW_TRANSMISSION_R < 0 below
        {},  # FLUX_R NaN below
    )
    df.loc[5, "MW_TRANSMISSION_Z"] = 0.0  # would be an -inf magnitude, passing z < 20
    df.loc[6, "MW_TRANSMISSION_R"] = -0.5
    df.loc[7, "FLUX_R"] = np.nan
    reasons = Q.quality_reasons(df, cfg)
    assert reasons.tolist() == [
        "", "type", "nobs", "maskbits", "mag_z", "mw_transmission", "mw_transmission", "flux"
    ]  # fmt: skip
    np.testing.assert_array_equal(reasons == "", Q.quality_mask(df, cfg))
    # missing values (a nullable crossmatch column) fail their gate instead of passing
    nullable = df.astype({"NOBS_G": "Int64"})
    nullable.loc[0, "NOBS_G"] = pd.NA
    assert Q.quality_reasons(nullable, cfg)[0] == "nobs"


def test_quality_reasons_agree_with_the_mask_on_a_survey(
    sweep: pd.DataFrame, cfg: NC.NegativeSelectionConfig
) -> None:
    reasons = Q.quality_reasons(sweep, cfg)
    np.testing.assert_array_equal(reasons == "", Q.quality_mask(sweep, cfg))
    assert {"", "flux", "nobs", "type", "mag_z"} <= set(reasons)


def test_zero_mw_transmission_is_not_a_bright_galaxy() -> None:
    mags = Q.extinction_corrected_mag([10.0, 10.0, 10.0, 10.0], [1.0, 0.0, -1.0, np.nan])
    assert mags[0] == pytest.approx(20.0)
    assert np.isnan(mags[1:]).all()


def _guard_cfg(nside: int, half_width: float = 13.231) -> NC.NegativeSelectionConfig:
    return NC.NegativeSelectionConfig(
        selection_version="t", split_nside=nside, split_guard_half_width_arcsec=half_width
    )


@pytest.mark.parametrize("nside", [128, 1024])
def test_split_guard_keeps_every_box_inside_its_split(nside: int) -> None:
    """Brute force: every kept object's cutout box (a 21 x 21 grid of points over it) lies in
    cells of its own split; dropped objects have a point of another split in their box."""
    cfg = _guard_cfg(nside)
    rng = np.random.default_rng(5)
    ra = rng.uniform(36.0, 36.6, 3000)
    dec = rng.uniform(-4.3, -3.7, 3000)
    guarded = SP.split_guard_mask(ra, dec, cfg)
    h = cfg.split_guard_half_width_arcsec / 3600.0
    grid = np.linspace(-h, h, 21)
    gx, gy = np.meshgrid(grid, grid)
    own = SP.assign_split(ra, dec, cfg)
    box_ra = ra[:, None] + gx.ravel()[None, :] / np.cos(np.deg2rad(dec))[:, None]
    box_dec = dec[:, None] + gy.ravel()[None, :]
    box_split = SP.assign_split(box_ra.ravel(), box_dec.ravel(), cfg).reshape(box_ra.shape)
    mixed = (box_split != own[:, None]).any(axis=1)
    assert not mixed[~guarded].any()  # never a leak
    assert mixed[guarded].mean() > 0.8  # and the guard is not much more cautious than needed
    assert 0 < guarded.mean() < (0.2 if nside == 1024 else 0.05)
    assert not SP.split_guard_mask(ra, dec, _guard_cfg(nside, 0.0)).any()


def test_split_guard_must_fit_in_a_quarter_cell(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split_guard_half_width_arcsec"):
        _guard_cfg(8192, 13.231)


def test_demo_profile_splits_finer(tmp_path: Path) -> None:
    demo = NC.load_negative_selection_config(CONFIG_PATH, "demo")
    full = NC.load_negative_selection_config(CONFIG_PATH, "full")
    assert (full.split_nside, demo.split_nside) == (128, 1024)
    assert demo.model_copy(update={"split_nside": 128}) == full  # only the granularity differs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, "N1"),  # all LRG cuts pass
        ({"g": 20.5, "r": 19.2, "z": 18.5, "w1": 17.5}, "N1"),  # only g - W1 > 2.9 branch
        ({"g": 20.3, "r": 19.4, "z": 18.6, "w1": 17.5}, "N1"),  # only r - W1 > 1.8 branch
        ({"g": 20.0, "r": 19.0, "z": 18.6, "w1": 17.5}, ""),  # neither colour branch
        ({"g": 23.0, "r": 23.0, "z": 20.9, "w1": 19.5, "zfib": 21.5}, "N1"),  # r - W1 > 3.3
        ({"g": 23.0, "r": 22.7, "z": 20.9, "w1": 19.5, "zfib": 21.5}, ""),  # 3.2: fails
        ({"g": 21.0, "r": 19.5, "z": 18.5, "w1": 17.5}, "N1"),  # z - W1 cut passes
        ({"g": 21.0, "r": 19.5, "z": 18.0, "w1": 17.5, "zfib": 19.0}, ""),  # z - W1 cut fails
        ({"zfib": 21.7}, ""),  # fibre magnitude too faint
        ({"type": "PSF"}, ""),  # N1 needs a resolved source
        ({"type": "REX"}, "N1"),
    ],
)
def test_n1_rule_branches(
    cfg: NC.NegativeSelectionConfig, spec: dict[str, Any], expected: str
) -> None:
    assert CL.classify_negatives(_rows(spec), cfg).tolist() == [expected]


BLUE = {"g": 19.9, "r": 19.6, "z": 19.3, "w1": 19.5}  # g - r = 0.3, not an LRG
DISC = {"g": 20.0, "r": 19.2, "z": 18.6, "w1": 18.3}  # g - r = 0.8, not an LRG


@pytest.mark.parametrize(
    ("spec", "expected", "rule"),
    [
        ({**DISC, "type": "EXP", "shape_r": 2.5, "sersic": 1.0}, "N2", "extended"),
        ({**DISC, "type": "DEV", "shape_r": 2.0, "sersic": 4.0}, "N2", "extended"),
        ({**DISC, "type": "EXP", "shape_r": 1.9, "sersic": 1.0}, "", None),
        ({**DISC, "type": "REX", "shape_r": 3.0, "sersic": 1.0}, "", None),  # REX not extended
        ({**DISC, "type": "SER", "shape_r": 0.8, "sersic": 5.0}, "N2", "high_sersic"),
        ({**DISC, "type": "SER", "shape_r": 0.8, "sersic": 3.0}, "", None),
        ({**DISC, "type": "DEV", "shape_r": 0.8, "sersic": 4.0}, "", None),  # only SER counts
        ({**BLUE, "type": "REX", "shape_r": 1.2, "sersic": 1.0}, "N2", "blue_extended"),
        ({**BLUE, "type": "REX", "shape_r": 0.8, "sersic": 1.0}, "", None),
        ({**BLUE, "type": "DEV", "shape_r": 1.2, "sersic": 4.0}, "", None),  # DEV not in blue
        ({**DISC, "type": "EXP", "shape_r": 1.5, "sersic": 1.0}, "", None),  # too red for blue
        ({"type": "DEV", "shape_r": 2.5}, "N1", "lrg"),  # LRG and extended: overlap_class N1
    ],
)
def test_n2_rule_branches(
    cfg: NC.NegativeSelectionConfig, spec: dict[str, Any], expected: str, rule: str | None
) -> None:
    df = _rows(spec)
    assert CL.classify_negatives(df, cfg).tolist() == [expected]
    pool = PO.build_negative_pool(df, [], [], cfg, "p0")
    if rule is None:
        assert pool.empty
    else:
        assert pool["pool_class"].tolist() == [expected]
        assert pool["pool_rule"].tolist() == [rule]


def test_overlap_class_n2(cfg: NC.NegativeSelectionConfig) -> None:
    df = _rows({"type": "DEV", "shape_r": 2.5})
    other = cfg.model_copy(update={"overlap_class": "N2"})
    assert CL.classify_negatives(df, other).tolist() == ["N2"]
    assert PO.build_negative_pool(df, [], [], other, "p")["pool_rule"].tolist() == ["extended"]


# ----------------------------------------------------------------------------------------------
# splits
# ----------------------------------------------------------------------------------------------
def test_split_by_coarse_cell_is_disjoint_and_stable(cfg: NC.NegativeSelectionConfig) -> None:
    rng = np.random.default_rng(5)
    n = 200_000
    ra = rng.uniform(0, 360, n)
    dec = np.rad2deg(np.arcsin(rng.uniform(-1, 1, n)))
    split = SP.assign_split(ra, dec, cfg)
    cells = hp.ang2pix(cfg.split_nside, ra, dec, nest=True, lonlat=True)
    per_cell = pd.DataFrame({"cell": cells, "split": split}).groupby("cell")["split"].nunique()
    assert (per_cell == 1).all()  # every coarse cell is in exactly one split
    # the split of a cell does not depend on which other cells are present
    subset = rng.choice(n, 1000, replace=False)
    assert (SP.assign_split(ra[subset], dec[subset], cfg) == split[subset]).all()
    assert SP.assign_split(ra[7], dec[7], cfg).tolist() == [split[7]]


def test_split_fractions_over_all_cells(cfg: NC.NegativeSelectionConfig) -> None:
    cells = np.arange(12 * cfg.split_nside**2)  # 196,608 cells at nside 128
    split = SP.split_of_cells(cells, cfg)
    frac = {s: float(np.mean(split == s)) for s in SP.SPLIT_LABELS}
    assert frac["train"] == pytest.approx(0.70, abs=0.005)
    assert frac["val"] == pytest.approx(0.15, abs=0.005)
    assert frac["test"] == pytest.approx(0.15, abs=0.005)
    reseeded = SP.split_of_cells(cells, cfg.model_copy(update={"split_seed": 1}))
    assert np.mean(reseeded != split) > 0.3


# ----------------------------------------------------------------------------------------------
# the pool
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return synthetic_sweep(60_000, seed=2, ra_range=(30.0, 40.0), dec_range=(-5.0, 5.0))


def test_build_negative_pool(sweep: pd.DataFrame, cfg: NC.NegativeSelectionConfig) -> None:
    classes = CL.classify_negatives(sweep, cfg)
    quality = Q.quality_mask(sweep, cfg)
    candidates = np.flatnonzero(quality & (classes != ""))
    lenses = candidates[:25]  # plant known lenses on 25 candidates: they and neighbours go
    pool = PO.build_negative_pool(
        sweep, sweep["RA"].to_numpy()[lenses], sweep["DEC"].to_numpy()[lenses], cfg, "1105"
    )
    stats = pool.attrs["pool_stats"]
    assert stats["n_input"] == len(sweep) and stats["n_quality"] == quality.sum()
    assert stats["n_classified"] == candidates.size
    assert stats["n_excluded_near_known_lens"] >= 25
    assert (
        stats["n_pool"]
        == len(pool)
        == (candidates.size - stats["n_excluded_near_known_lens"] - stats["n_excluded_split_guard"])
    )
    assert sum(stats["n_rejected_by_gate"].values()) == stats["n_input"] - stats["n_quality"]
    assert not SP.split_guard_mask(pool["RA"], pool["DEC"], cfg).any()
    assert set(SWEEP_COLUMNS) <= set(pool.columns)
    assert set(pool["pool_class"]) == {"N1", "N2"} and set(pool["split"]) <= set(SP.SPLIT_LABELS)
    assert (pool["source_partition"] == "1105").all()
    assert (pool["selection_version"] == cfg.selection_version).all()
    # classes agree with classify_negatives, rows pass the gates, none is near a lens
    key = sweep.set_index(["BRICKNAME", "OBJID"]).index
    pos = key.get_indexer(pd.MultiIndex.from_frame(pool[["BRICKNAME", "OBJID"]]))
    assert (classes[pos] == pool["pool_class"].astype(str).to_numpy()).all()
    assert quality[pos].all()
    near = within_radius(
        pool["RA"], pool["DEC"], sweep["RA"].to_numpy()[lenses], sweep["DEC"].to_numpy()[lenses],
        cfg.exclusion_radius_arcsec,
    )  # fmt: skip
    assert not near.any()
    np.testing.assert_array_equal(
        pool["split"].astype(str).to_numpy(), SP.assign_split(pool["RA"], pool["DEC"], cfg)
    )
    np.testing.assert_array_equal(
        pool["split_cell"],
        hp.ang2pix(cfg.split_nside, pool["RA"], pool["DEC"], nest=True, lonlat=True),
    )
    mag_z = 22.5 - 2.5 * np.log10(pool["FLUX_Z"] / pool["MW_TRANSMISSION_Z"])
    np.testing.assert_allclose(pool["mag_z"], mag_z, rtol=1e-6)
    assert (pool["mag_z"] < 20).all()


def test_build_negative_pool_empty(cfg: NC.NegativeSelectionConfig) -> None:
    empty = synthetic_sweep(10, seed=1).iloc[:0]
    pool = PO.build_negative_pool(empty, [1.0], [1.0], cfg, "0")
    assert pool.empty and "pool_class" in pool.columns


def test_missing_sweep_column(cfg: NC.NegativeSelectionConfig) -> None:
    df = _rows({}).drop(columns=["SERSIC"])
    with pytest.raises(ValueError, match="SERSIC"):
        PO.build_negative_pool(df, [], [], cfg, "42")


# ----------------------------------------------------------------------------------------------
# the manifest sampler
# ----------------------------------------------------------------------------------------------
def _pool(n1: int, n2: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n1 + n2
    return pd.DataFrame(
        {
            "BRICKNAME": rng.choice(["0001p000", "0002p000", "0003p000"], n),
            "OBJID": np.arange(n, dtype=np.int64),
            "pool_class": ["N1"] * n1 + ["N2"] * n2,
            "split": rng.choice(["train", "val", "test"], n, p=[0.7, 0.15, 0.15]),
        }
    )


def test_sampler_ratio_and_strata(cfg: NC.NegativeSelectionConfig) -> None:
    pool = _pool(20_000, 9_000)
    small = cfg.model_copy(update={"manifest_size": 8_000})
    manifest = MA.sample_negative_manifest(pool, small)
    counts = manifest["pool_class"].value_counts()
    assert len(manifest) == 8_000 and counts["N1"] == 6_000 and counts["N2"] == 2_000
    plan = manifest.attrs["manifest_plan"]
    assert plan["ratio_ok"] and plan["notes"] == []
    # within each class the splits keep the pool's proportions
    for cls in ("N1", "N2"):
        got = manifest.loc[manifest["pool_class"] == cls, "split"].value_counts(normalize=True)
        want = pool.loc[pool["pool_class"] == cls, "split"].value_counts(normalize=True)
        for s in SP.SPLIT_LABELS:
            assert got[s] == pytest.approx(want[s], abs=0.002)
    assert not manifest.duplicated(["BRICKNAME", "OBJID"]).any()


def test_sampler_is_deterministic(cfg: NC.NegativeSelectionConfig) -> None:
    pool = _pool(5_000, 2_000)
    small = cfg.model_copy(update={"manifest_size": 2_000})
    a = MA.sample_negative_manifest(pool, small)
    b = MA.sample_negative_manifest(pool.sample(frac=1.0, random_state=4), small)
    pd.testing.assert_frame_equal(a, b)  # independent of the pool's row order
    c = MA.sample_negative_manifest(pool, small.model_copy(update={"sampling_seed": 99}))
    assert set(a["OBJID"]) != set(c["OBJID"])


def test_sampler_n2_shortfall(cfg: NC.NegativeSelectionConfig) -> None:
    pool = _pool(10_000, 1_000)
    keep_ratio = cfg.model_copy(update={"manifest_size": 8_000})
    m = MA.sample_negative_manifest(pool, keep_ratio)
    counts = m["pool_class"].value_counts()
    assert counts["N2"] == 1_000 and counts["N1"] == 3_000  # all N2, ratio kept
    plan = m.attrs["manifest_plan"]
    assert plan["ratio_ok"] and any("too few N2" in note for note in plan["notes"])
    keep_size = keep_ratio.model_copy(update={"shortfall": "keep_size"})
    m = MA.sample_negative_manifest(pool, keep_size)
    counts = m["pool_class"].value_counts()
    assert counts["N2"] == 1_000 and counts["N1"] == 7_000
    assert not m.attrs["manifest_plan"]["ratio_ok"]  # 12.5% N2 is outside 25% +/- 2%


def test_plan_counts_only(cfg: NC.NegativeSelectionConfig) -> None:
    available = {("N1", "train"): 700, ("N1", "val"): 150, ("N1", "test"): 150}
    plan = MA.plan_negative_manifest(available, cfg.model_copy(update={"manifest_size": 100}))
    assert plan.n2 == 0 and plan.n1 == 0 and not plan.ratio_ok  # no N2 at all: nothing kept
    assert plan.as_dict()["size"] == 0
