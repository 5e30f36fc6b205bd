"""``realism_controls`` (group d06): truth-based twins prove what the D06 probe measures.

For every lens of the held-out splits (``configs/realism_controls.yaml``) of the embedded
default, the lens's noiseless truth arc (written by the mock survey) is subtracted from its
cutout, and twins are made with new arcs of the same lens at the same lensed magnitude per band
(:mod:`~stronglens_assets.science.lensing.twins`): same-model twins (negative control),
Sersic twins of the injection engine's published prior (positive control) and a dose-response
over the mock's structure fraction. The frozen model scores and embeds originals and twins;
:mod:`~stronglens_assets.science.stats.realism_controls` gives the probe AUC with its
permutation null band and bootstrap CI, the detection ratios and a brightness-only baseline.

Outputs under ``results/D06/realism_controls/``: ``controls.json`` (written last) and
``controls.png``. On real survey data there is no truth: the asset is skipped and its metadata
says so (nothing is written).
"""

import json
import time
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from stronglens_assets.assets import shared
from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.assets.shared import MODEL_CHECKPOINT, frozen_check_spec, frozen_model_check
from stronglens_assets.config import StrictModel, load_profiled_config
from stronglens_assets.errors import StronglensError
from stronglens_assets.mock_survey.config import load_demo_sky
from stronglens_assets.mock_survey.render import LENS_STAMP_NPIX
from stronglens_assets.mock_survey.sky import lens_geometry
from stronglens_assets.mock_survey.writer import brick_paths
from stronglens_assets.project import Project
from stronglens_assets.resources.compute import GPU_POOL, ComputeResource, gpu_op_tags
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.catalogs.bricks import (
    PIXEL_SCALE_ARCSEC,
    brick_wcs,
    parse_brick_name,
)
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.science.core.units import nanomaggies_to_mag
from stronglens_assets.science.experiments.hosts import read_host_arrays
from stronglens_assets.science.experiments.probe import brightness_features
from stronglens_assets.science.lensing.priors import load_priors, priors_sha256
from stronglens_assets.science.lensing.structured_source import lensed_unit_images
from stronglens_assets.science.lensing.twins import (
    add_arcs,
    lensed_flux,
    matched_twin_arcs,
    remove_arcs,
    sersic_twin_sources,
    twin_sources,
)
from stronglens_assets.science.reporting.labels import EMBEDDED_DEFAULT_LABEL, with_data_label
from stronglens_assets.science.reporting.plots import figure_png, png_data_uri_markdown
from stronglens_assets.science.reporting.realism_controls_figure import realism_controls_figure
from stronglens_assets.science.stats.realism_controls import (
    detection_ratio,
    paired_probe_control,
)
from stronglens_assets.science.stats.thresholds import ThresholdsFormatError, fixed_label
from stronglens_assets.storage_keys import D06_ROOT

CONFIG_FILENAME = "realism_controls.yaml"
CONTROLS_KEY = D06_ROOT + "/realism_controls/controls.json"
CONTROLS_FIGURE_KEY = D06_ROOT + "/realism_controls/controls.png"
D06_GROUP = "d06"
BANDS = ("g", "r", "z")


class RealismControlsError(StronglensError, RuntimeError):
    """The realism controls cannot run on these inputs; the message says why."""


class RealismControlsConfig(StrictModel):
    """``configs/realism_controls.yaml`` (see its comments)."""

    seed: int = 20260301
    model_config_name: str = Field(default="paperIV_bottlenecked_resnet", alias="model_config")
    splits: list[str] = Field(default_factory=lambda: ["val", "test"], min_length=1)
    batch_size: int = Field(default=512, ge=1)
    structure_fractions: list[float] = Field(default_factory=lambda: [0.0, 0.15, 0.3, 0.6])
    sersic_prior: str = "paper_2026"
    probe_folds: int = Field(default=5, ge=2)
    n_permutations: int = Field(default=200, ge=1)
    n_bootstrap: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    fixed_thresholds: list[float] = Field(default_factory=lambda: [0.3], min_length=1)


def load_realism_controls_config(project: Project) -> RealismControlsConfig:
    settings = project.settings
    return load_profiled_config(
        settings.config_dir / CONFIG_FILENAME, RealismControlsConfig, settings.profile
    )


# --------------------------------------------------------------------------------------------
# Inputs: the lenses with truth, their cutouts and arcs
# --------------------------------------------------------------------------------------------


def lenses_with_truth(
    manifest: pd.DataFrame, splits: list[str], root: Any
) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray], dict[str, int]]:
    """Held-out positives with mock-survey truth: manifest rows joined with their truth rows,
    their noiseless arcs ``(N, B, 65, 65)``, the PSF kernel per brick and band
    (``"<brick>/<band>"``) and counts of lenses left out (by reason)."""
    rows = manifest[(manifest["label"] == 1) & manifest["split"].isin(splits)]
    rows = rows.sort_values("object_id", kind="stable").reset_index(drop=True)
    tables, arcs, kernels = [], [], {}
    skipped = {"no_truth": 0, "stamp_not_centred": 0}
    for brick, group in rows.groupby("brickname", sort=True):
        paths = brick_paths(root, str(brick))
        if not paths.truth_lenses.is_file() or not paths.truth_arcs.is_file():
            raise RealismControlsError(
                f"truth of brick {brick} is missing ({paths.truth_lenses}, {paths.truth_arcs}): "
                "materialize mock_survey_bricks"
            )
        truth = pd.read_parquet(paths.truth_lenses).set_index("name", drop=False)
        stamps = decode_npz(paths.truth_arcs.read_bytes())
        order = {str(n): i for i, n in enumerate(stamps["name"])}
        for band in BANDS:
            kernels[f"{brick}/{band}"] = stamps[f"psf_{band}"]
        known = group[group["object_id"].astype(str).isin(truth.index)]
        skipped["no_truth"] += len(group) - len(known)
        t = truth.loc[known["object_id"].astype(str)].reset_index(drop=True)
        # the cutout is centred on floor(x + 0.5) of the object's position: the stamp's centre
        x, y = brick_wcs(parse_brick_name(str(brick))).all_world2pix(
            known["ra"].to_numpy(float), known["dec"].to_numpy(float), 0
        )
        centred = (np.floor(np.asarray(x) + 0.5) == t["stamp_center_x"].to_numpy()) & (
            np.floor(np.asarray(y) + 0.5) == t["stamp_center_y"].to_numpy()
        )
        skipped["stamp_not_centred"] += int((~centred).sum())
        known, t = known[centred].reset_index(drop=True), t[centred].reset_index(drop=True)
        extra = t.drop(columns=["ra", "dec", "source"], errors="ignore")
        joined = pd.concat([known, extra], axis=1)
        joined = joined.loc[:, ~joined.columns.duplicated()]
        tables.append(joined)
        arcs.append(stamps["arcs"][[order[str(n)] for n in t["name"]]])
    if not tables or sum(len(t) for t in tables) == 0:
        raise RealismControlsError(f"no positive with truth in splits {splits}")
    return pd.concat(tables, ignore_index=True), np.concatenate(arcs), kernels, skipped


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


def run_realism_controls(
    project: Project,
    config: RealismControlsConfig,
    manifest: pd.DataFrame,
    storage: StorageResource,
    compute: ComputeResource,
    *,
    log: Any,
    expected_checkpoint_sha256: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Twins, scores, embeddings, statistics; writes the figure then ``controls.json``."""
    start = time.perf_counter()
    settings = project.settings
    sky = load_demo_sky(settings.config_dir / "demo_sky.yaml")
    priors = load_priors(settings.config_dir, settings.profile)
    model, checkpoint_sha = shared.load_frozen_model(
        storage,
        config.model_config_name,
        settings.config_dir,
        profile=settings.profile,
        expected_sha256=expected_checkpoint_sha256,
    )
    device = compute.torch_device()
    store = storage.object_store()

    table, arcs, kernels, skipped = lenses_with_truth(
        manifest, config.splits, settings.mock_survey_root
    )
    n = len(table)
    if n < 4:
        raise RealismControlsError(f"need >= 4 lenses with truth for the probe, got {n}")
    arrays = read_host_arrays(store.read_bytes, table, ("cutout", "invvar"))
    if not arrays["usable"].all():
        bad = table["object_id"].to_numpy()[~arrays["usable"]]
        raise RealismControlsError(f"cutouts with NaN pixels: {', '.join(map(str, bad[:5]))}")
    cutouts, invvar = arrays["cutout"], arrays["invvar"]
    removed = remove_arcs(cutouts, arcs)
    ix, iy = table["stamp_center_x"].to_numpy(), table["stamp_center_y"].to_numpy()
    lens = lens_geometry(
        table,
        (table["x"].to_numpy(float) - ix) * PIXEL_SCALE_ARCSEC,
        (table["y"].to_numpy(float) - iy) * PIXEL_SCALE_ARCSEC,
    )
    gains = np.stack([table[f"gain_{b}"].to_numpy(float) for b in BANDS], axis=1)
    theta_e = table["theta_e"].to_numpy(float)

    def twin_images(sources: Any, tag: int) -> np.ndarray:
        unit = lensed_unit_images(lens, sources, size=LENS_STAMP_NPIX)
        twin_arcs = np.empty(arcs.shape)
        for brick in sorted(set(table["brickname"])):
            rows = np.flatnonzero((table["brickname"] == brick).to_numpy())
            kern = [kernels[f"{brick}/{b}"] for b in BANDS]
            twin_arcs[rows] = matched_twin_arcs(unit[rows], arcs[rows], kern)
        mags = nanomaggies_to_mag(lensed_flux(twin_arcs))
        if not np.allclose(mags, nanomaggies_to_mag(lensed_flux(arcs)), atol=1e-6, equal_nan=True):
            raise RealismControlsError("twin arcs do not keep the originals' lensed magnitudes")
        return add_arcs(removed, twin_arcs, gains, _rng(config.seed, 1, tag))

    sets = {"original": cutouts}
    sets["same_model"] = twin_images(
        twin_sources(sky.lenses.source_model(), theta_e, _rng(config.seed, 2)), 2
    )
    sets["sersic"] = twin_images(
        sersic_twin_sources(priors, config.sersic_prior, theta_e, _rng(config.seed, 3)), 3
    )
    for k, fraction in enumerate(config.structure_fractions):
        model_f = sky.lenses.source_model(fraction)
        dose_sources = twin_sources(model_f, theta_e, _rng(config.seed, 4))
        sets[f"dose_{k}"] = twin_images(dose_sources, 10 + k)

    from stronglens_assets.science.learning.scoring import embed_cutouts, score_cutouts

    scores = {
        name: score_cutouts(model, images, batch_size=config.batch_size, device=device)
        for name, images in sets.items()
    }
    embeddings = {
        name: embed_cutouts(model, images, batch_size=config.batch_size, device=device)
        for name, images in sets.items()
    }
    thresholds, unresolved = _thresholds(storage, config)
    probe_kw = {
        "n_permutations": config.n_permutations,
        "n_bootstrap": config.n_bootstrap,
        "confidence": config.confidence,
        "n_folds": config.probe_folds,
        "seed": config.seed,
    }
    r_band = BANDS.index("r")

    def brightness_of(images: np.ndarray) -> np.ndarray:
        """D06's brightness-only features (r-band annulus magnitude and S/N) per lens."""
        return np.concatenate(
            [
                brightness_features(images[i : i + 1], invvar[i : i + 1], band=r_band,
                                    theta_e=float(theta_e[i]))
                for i in range(n)
            ]
        )  # fmt: skip

    brightness = {name: brightness_of(images) for name, images in sets.items()}

    def control(name: str) -> dict[str, Any]:
        probe = paired_probe_control(embeddings["original"], embeddings[name], **probe_kw)
        ratios = [
            detection_ratio(scores["original"], scores[name], value, label)
            for label, value in thresholds
        ]
        baseline = paired_probe_control(
            brightness["original"], brightness[name], **{**probe_kw, "n_bootstrap": 0}
        )
        log.info(f"realism_controls: {name}: probe AUC {probe['probe_auc']:.3f}")
        return {
            "probe_auc": probe["probe_auc"],
            "null_band": probe["null_band"],
            "detection_ratio": ratios[0]["ratio"],
            "permutation_p": probe["permutation_p"],
            "auc_ci": probe["auc_ci"],
            "probe": probe,
            "detection": ratios,
            "brightness_only": {
                "probe_auc": baseline["probe_auc"],
                "null_band": baseline["null_band"],
                "feature": "r-band magnitude and S/N in the annulus |r - theta_E| <= 0.75 "
                "arcsec (D06's brightness_features)",
            },
            "mean_score": float(np.mean(scores[name])),
        }

    negative, positive = control("same_model"), control("sersic")
    dose = [
        {"structure_fraction": float(f), **control(f"dose_{k}")}
        for k, f in enumerate(config.structure_fractions)
    ]
    doc = {
        "negative": {"twins": "same-model (the mock's source model)", **negative},
        "positive": {"twins": f"Sersic ({config.sersic_prior} prior)", **positive},
        "dose_response": dose,
        "originals": {
            "n": n,
            "mean_score": float(np.mean(scores["original"])),
            "mock_structure_fraction": sky.lenses.structure_fraction,
            "splits": config.splits,
            "left_out": skipped,
        },
        "thresholds": [{"label": label, "value": value} for label, value in thresholds],
        "unresolved_thresholds": unresolved,
        "data": EMBEDDED_DEFAULT_LABEL,
        "model_config": config.model_config_name,
        "checkpoint_sha256": checkpoint_sha,
        "priors_sha256": priors_sha256(priors),
        "seed": config.seed,
        "seconds": round(time.perf_counter() - start, 2),
    }
    fig = realism_controls_figure(
        dose, negative, positive, title=with_data_label("Realism controls", True)
    )
    png = figure_png(fig, dpi=100)
    store.write_bytes(CONTROLS_FIGURE_KEY, png)
    store.write_bytes(CONTROLS_KEY, (json.dumps(doc, indent=2) + "\n").encode())
    return doc, _metadata(doc, png, store), checkpoint_sha


def _thresholds(
    storage: StorageResource, config: RealismControlsConfig
) -> tuple[list[tuple[str, float]], list[dict[str, Any]]]:
    """Fixed thresholds, plus the model's resolved FPR thresholds where its evaluation wrote
    them (contract 2: ``shared.load_model_thresholds``); unresolved ones are listed with their
    reason, never guessed."""
    out = [(fixed_label(t), float(t)) for t in config.fixed_thresholds]
    try:
        resolved, unresolved = shared.load_model_thresholds(storage, config.model_config_name)
    except ThresholdsFormatError as exc:
        return out, [{"reason": f"model thresholds unavailable: {exc}"}]
    out += [(s.label, float(s.value)) for s in resolved if s.fpr_target is not None]
    return out, list(unresolved)


def _metadata(doc: dict[str, Any], png: bytes, store: Any) -> dict[str, Any]:
    def fmt(c: dict[str, Any]) -> str:
        lo, hi = c["null_band"]
        ratio = c["detection_ratio"]
        return (
            f"{c['probe_auc']:.3f} (null [{lo:.3f}, {hi:.3f}]), ratio "
            f"{'n/a' if ratio is None else f'{ratio:.2f}'}, brightness-only AUC "
            f"{c['brightness_only']['probe_auc']:.3f}"
        )

    rows = "\n".join(f"| {r['structure_fraction']:g} | {fmt(r)} |" for r in doc["dose_response"])
    return {
        "data": doc["data"],
        "n_lenses": doc["originals"]["n"],
        "negative_control": fmt(doc["negative"]),
        "positive_control": fmt(doc["positive"]),
        "dose_response": dg.MetadataValue.md(
            "| structure fraction | probe AUC (null band), detection ratio, brightness |\n"
            "|---|---|\n" + rows
        ),
        "figure": dg.MetadataValue.md(png_data_uri_markdown(png, "realism controls")),
        "controls_json": dg.MetadataValue.path(store.uri(CONTROLS_KEY)),
        "checkpoint_sha256": doc["checkpoint_sha256"],
        "seconds": doc["seconds"],
    }


# --------------------------------------------------------------------------------------------
# Asset
# --------------------------------------------------------------------------------------------


def build_assets(project: Project) -> list:
    settings = project.settings
    config = load_realism_controls_config(project)
    model_name = config.model_config_name
    one_model = dg.SpecificPartitionsPartitionMapping([model_name])
    checkpoint_dep = dg.AssetDep(MODEL_CHECKPOINT, partition_mapping=one_model)
    thresholds_dep = dg.AssetDep("evaluation_thresholds", partition_mapping=one_model)

    @dg.asset(
        group_name=D06_GROUP,
        deps=[checkpoint_dep, thresholds_dep],
        kinds={"pytorch", "numpy"},
        check_specs=[frozen_check_spec("realism_controls")],
        pool=GPU_POOL,
        op_tags=gpu_op_tags(settings.config_dir),
    )
    def realism_controls(
        context: dg.AssetExecutionContext,
        training_manifest: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """Truth-based twins of the held-out lenses (embedded default only): probe AUC of
        same-model twins (negative control: inside the permutation null), Sersic twins
        (positive control) and a structure-fraction dose-response, with detection ratios and
        a brightness-only baseline; ``results/D06/realism_controls/controls.json`` + figure.
        On real data there is no truth: skipped, and the metadata says so."""
        if not project.uses_mock_survey:
            reason = (
                "real survey data: no lens has a known noiseless arc, so no twin can be made; "
                "the realism controls run only in the embedded default (mock DR10)"
            )
            context.log.info(f"realism_controls skipped: {reason}")
            yield dg.Output(
                {"skipped": True, "reason": reason}, metadata=ui_metadata({"skipped": reason})
            )
            yield dg.AssetCheckResult(
                check_name=shared.FROZEN_CHECK,
                passed=True,
                metadata=ui_metadata({"skipped": reason}),
            )
            return
        doc, metadata, sha = run_realism_controls(
            project,
            config,
            training_manifest,
            storage,
            compute,
            log=context.log,
            expected_checkpoint_sha256=shared.recorded_checkpoint_sha(
                context.instance, config.model_config_name
            ),
        )
        value = {
            "controls_key": CONTROLS_KEY,
            "figure_key": CONTROLS_FIGURE_KEY,
            "negative_probe_auc": doc["negative"]["probe_auc"],
            "positive_probe_auc": doc["positive"]["probe_auc"],
            "checkpoint_sha256": sha,
        }
        yield dg.Output(value, metadata=ui_metadata(metadata))
        yield frozen_model_check(context, model_name, sha)

    return [realism_controls]
