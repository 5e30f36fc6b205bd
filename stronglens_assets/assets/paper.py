"""Paper outputs: ``paper_figures``, ``paper_tables``, ``comparison_gallery``, ``d06_provenance``.

They read the D06 results where the D06 assets write them (contract item 5, the seeds'
layout under ``results/D06/``) and the model's calibration report, and write:

* ``paper/figures/fig{1..4}_*.{pdf,png,json}``: Figures 1 to 4 (PDF for the paper, PNG for
  the UI, the caption and inputs in a JSON sidecar) and ``paper/figures/figures.tex``;
* ``paper/tables/*.tex``: the LaTeX tables that ``paper/main.tex`` inputs;
* ``results/D06/comparison_figure/figure5.{pdf,png,json}`` (also copied to
  ``paper/figures/fig5_comparison.pdf`` with ``paper/figures/figure5.tex``) and the offline
  gallery ``results/D06/gallery/index.html``;
* ``results/D06/provenance.json`` with a blocking check that recomputes the config and
  checkpoint checksums and fails on drift.

``paper/build`` builds ``paper/main.tex`` against a local copy of the ``paper/`` prefix.
Science is in :mod:`~stronglens_assets.science.figures`, :mod:`~.gallery`, :mod:`~.tables`
and :mod:`~.provenance`; this module only reads, calls and writes.
"""

import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.config import StrictModel, load_config
from stronglens_assets.errors import StronglensError
from stronglens_assets.project import Project
from stronglens_assets.resources.object_store import IntegrityError, ObjectNotFoundError
from stronglens_assets.resources.result_sets import ResultSetSource
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science import figures as F
from stronglens_assets.science import tables as T
from stronglens_assets.science.core.hashing import sha256_bytes, sha256_file, sha256_json
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.science.experiments.config import D06_CONFIG_FILENAME, load_d06_config
from stronglens_assets.science.lensing.priors import (
    BRIGHT_ARC_VARIANTS,
    load_priors,
    priors_sha256,
)
from stronglens_assets.science.reporting import gallery as G
from stronglens_assets.science.reporting import provenance as P
from stronglens_assets.science.reporting.d06_results import D06Results, read_d06_results
from stronglens_assets.science.reporting.labels import (
    EMBEDDED_DEFAULT_LABEL,
    data_label,
    is_mock_environment,
    lens_kind,
    lens_set_label,
    with_data_label,
)
from stronglens_assets.science.reporting.paper_outputs import render_paper
from stronglens_assets.science.reporting.plots import png_data_uri_markdown
from stronglens_assets.settings import PROJECT_ROOT
from stronglens_assets.storage_keys import (
    BRIGHT_ARC_SET,
    D06_ROOT,
    FIGURE5_KEY,
    FIGURES_PREFIX,
    GALLERY_KEY,
    PROVENANCE_KEY,
    TABLES_PREFIX,
    TIER_A_SET,
)

PAPER_GROUP = "paper"
D06_ASSETS = (
    "grid_completeness",
    "bright_arc",
    "linear_probe",
    "tier_a_scoring",
    "poisson_diagnostics",
)


class FiguresConfig(StrictModel):
    dpi: int = Field(default=150, ge=30, le=600)
    ui_dpi: int = Field(default=50, ge=20, le=300)
    embedding_method: str = Field(default="pca", pattern="^(pca|umap|auto)$")


class StretchConfig(StrictModel):
    q: float = Field(default=8.0, gt=0)
    stretch: float = Field(default=0.5, gt=0)
    minimum: float = 0.0
    scale_g: float = Field(default=6.0, gt=0)
    scale_r: float = Field(default=3.4, gt=0)
    scale_z: float = Field(default=2.2, gt=0)


class GalleryConfig(StrictModel):
    figure_real: int = Field(default=6, ge=1)
    figure_injections: int = Field(default=6, ge=1)
    html_max_real: int = Field(default=64, ge=0)
    html_max_injections: int = Field(default=64, ge=0)
    injection_variants: list[str] = Field(default_factory=lambda: ["baseline"], min_length=1)
    stretch: StretchConfig = Field(default_factory=StretchConfig)

    @field_validator("injection_variants")
    @classmethod
    def _known_variants(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(BRIGHT_ARC_VARIANTS))
        if unknown:
            raise ValueError(
                f"unknown bright-arc variant(s) {unknown}; known: {list(BRIGHT_ARC_VARIANTS)}"
            )
        return value


class PaperConfig(StrictModel):
    """``configs/paper.yaml``."""

    figures: FiguresConfig = Field(default_factory=FiguresConfig)
    gallery: GalleryConfig = Field(default_factory=GalleryConfig)


def load_paper_config(config_dir: Any) -> PaperConfig:
    """Load ``<config_dir>/paper.yaml`` (ConfigError names file and field)."""
    from pathlib import Path

    return load_config(Path(config_dir) / "paper.yaml", PaperConfig)


# --------------------------------------------------------------------------------------------
# Reading D06 outputs
# --------------------------------------------------------------------------------------------


class MissingResultError(StronglensError, FileNotFoundError):
    """A D06 result file the paper needs is not in storage."""


def _read(storage: StorageResource, key: str) -> bytes:
    try:
        return storage.read_bytes(key)
    except ObjectNotFoundError as exc:
        raise MissingResultError(f"{storage.uri(key)} is missing") from exc


def d06_source(storage: StorageResource) -> ResultSetSource:
    """The D06 result sets, seen in the published layout (``grid_no_poisson/...``)."""
    return ResultSetSource(storage.object_store(), D06_ROOT)


def d06_results(storage: StorageResource) -> D06Results:
    """Every D06 result the paper reads, through the published-layout reader."""
    return read_d06_results(d06_source(storage))


def verify_d06_results(storage: StorageResource) -> list[str]:
    """Re-read every file of every D06 result set through its pointer (each read is checked
    against the sha256 the producer recorded there); one problem line per file that fails."""
    source = d06_source(storage)
    problems = []
    for key in source.list_keys():
        try:
            source.read_bytes(key)
        except (IntegrityError, ObjectNotFoundError, FileNotFoundError) as exc:
            problems.append(f"{key}: {exc}")
    return problems


def _result_bytes(storage: StorageResource, key: str) -> bytes:
    source = d06_source(storage)
    try:
        return source.read_bytes(key)
    except FileNotFoundError as exc:
        raise MissingResultError(
            f"{source.uri(key)} is missing: materialize the D06 asset that writes it first"
        ) from exc


def _data_note(environment: str) -> str | None:
    """The caption note of the paper outputs of the embedded default (``None`` on survey data)."""
    if not is_mock_environment(environment):
        return None
    return f"Data: {EMBEDDED_DEFAULT_LABEL}; its lenses are mock (simulated)."


def _png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(png_data_uri_markdown(png, alt))


def _write_all(storage: StorageResource, pending: Mapping[str, bytes]) -> dict[str, str]:
    """Write every pending output (only once all of them were computed, so a failure while
    reading or rendering leaves the previous outputs untouched); return key -> sha256."""
    for key, data in pending.items():
        storage.write_bytes(key, data)
    return {key: sha256_bytes(data) for key, data in sorted(pending.items())}


def _version(written: Mapping[str, str]) -> dg.DataVersion:
    return dg.DataVersion(sha256_json(dict(written)))


def _figure_tex(entries: list[dict[str, Any]]) -> str:
    blocks = []
    for entry in entries:
        blocks.append(
            "\n".join(
                [
                    r"\begin{figure*}[htbp]",
                    r"\centering",
                    f"\\includegraphics[width=\\textwidth]{{{entry['graphic']}}}",
                    f"\\caption{{{T.latex_escape(entry['caption'])}}}",
                    f"\\label{{fig:{entry['name']}}}",
                    r"\end{figure*}",
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


# --------------------------------------------------------------------------------------------
# Provenance helpers (instance queries)
# --------------------------------------------------------------------------------------------


_INPUT_TAG = "dagster/input_data_version/"


def _latest_per_partition(
    instance: dg.DagsterInstance, key: dg.AssetKey, page: int = 500, max_pages: int = 40
) -> tuple[list[dict[str, Any]], set[dg.AssetKey]]:
    """Latest materialization of ``key``, of every partition when it is partitioned, and the
    upstream keys those materializations recorded (``dagster/input_data_version/<key>`` tags).

    Records come newest first; paging stops at the first page when the asset is unpartitioned
    and after ``max_pages`` pages at most.
    """
    out: dict[str | None, dict[str, Any]] = {}
    parents: set[dg.AssetKey] = set()
    cursor = None
    for _ in range(max_pages):
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key), limit=page, cursor=cursor
        )
        for record in result.records:
            materialization = record.asset_materialization
            if materialization is None or materialization.partition in out:
                continue
            tags = materialization.tags or {}
            parents |= {
                dg.AssetKey.from_user_string(tag[len(_INPUT_TAG) :])
                for tag in tags
                if tag.startswith(_INPUT_TAG)
            }
            out[materialization.partition] = {
                "asset": key.to_user_string(),
                "partition": materialization.partition,
                "data_version": tags.get("dagster/data_version"),
                "code_version": tags.get("dagster/code_version"),
                "run_id": record.run_id,
                "timestamp": datetime.fromtimestamp(record.timestamp, UTC)
                .isoformat()
                .replace("+00:00", "Z"),
            }
        if None in out or not result.has_more:
            break
        cursor = result.cursor
    return sorted(out.values(), key=lambda item: str(item["partition"] or "")), parents


def upstream_lineage(
    instance: dg.DagsterInstance, parents: Iterable[dg.AssetKey]
) -> list[dict[str, Any]]:
    """Latest materialization of every asset (and partition) upstream of ``parents``.

    Walks the lineage Dagster recorded: each materialization's input data-version tags name
    the assets it read, so the walk follows what was actually used, to the sources. Sorted
    by asset and partition.
    """
    queue, seen, rows = list(parents), set(), []
    while queue:
        key = queue.pop()
        if key in seen:
            continue
        seen.add(key)
        found, upstream = _latest_per_partition(instance, key)
        rows += found
        queue += sorted(upstream - seen, key=lambda k: k.to_user_string())
    return sorted(rows, key=lambda r: (r["asset"], str(r["partition"] or "")))


def _checkpoint_sha_now(storage: StorageResource, key: str) -> str | None:
    try:
        return sha256_bytes(storage.read_bytes(key))
    except ObjectNotFoundError:
        return None


def _partition_value(values: Any, partition: str) -> Any:
    """An input mapped from one partition of a partitioned asset: the IO manager hands an
    unpartitioned asset ``{partition: value}``; return ``value``."""
    if isinstance(values, Mapping) and isinstance(values.get(partition), Mapping):
        return values[partition]
    return values


def _collect_sha(summaries: Mapping[str, Any], field: str) -> dict[str, str]:
    """``field`` of every D06 summary (partitioned ones are dicts of partition -> summary)."""
    found: dict[str, str] = {}
    for name, summary in summaries.items():
        items = (
            summary.items()
            if isinstance(summary, Mapping) and summary and field not in summary
            else [(None, summary)]
        )
        for partition, value in items:
            if isinstance(value, Mapping) and value.get(field):
                label = name if partition is None else f"{name}[{partition}]"
                found[label] = str(value[field])
    return found


# --------------------------------------------------------------------------------------------
# Assets
# --------------------------------------------------------------------------------------------


def build_assets(project: Project) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    settings = project.settings
    config = load_paper_config(settings.config_dir)
    d06 = load_d06_config(settings.config_dir, settings.profile)
    model_name = d06.model_config_name
    one_model = dg.SpecificPartitionsPartitionMapping([model_name])
    extra_configs = (
        [settings.footprint_file]
        if settings.footprint_file
        and not str(settings.footprint_file).startswith(str(settings.config_dir))
        else []
    )

    @dg.asset(
        group_name=PAPER_GROUP,
        kinds={"matplotlib", "pdf"},
        deps=list(D06_ASSETS),
    )
    def paper_figures(
        context: dg.AssetExecutionContext, storage: dg.ResourceParam[StorageResource]
    ) -> dg.Output[dict]:
        """The paper's figures (PDF, PNG and LaTeX each), ``paper/summary.json`` and
        ``paper/manifest.json``, rendered from the D06 result sets read in the published layout
        (:func:`~stronglens_assets.science.reporting.paper_outputs.render_paper`, as the
        ``stronglens paper`` command renders the published directory). An output whose input
        is absent is skipped and listed in the manifest."""
        results = d06_results(storage)
        outputs = render_paper(
            results,
            embedding_method=config.figures.embedding_method,
            dpi=config.figures.dpi,
            data_note=_data_note(settings.env),
        )
        pending = {
            f"{FIGURES_PREFIX}/{path.removeprefix('figures/')}": data
            for path, data in outputs.files.items()
            if path.startswith("figures/")
        }
        # the full list of skipped outputs (paper_tables renders without figures)
        pending[f"{TABLES_PREFIX}/skipped.tex"] = outputs.files["tables/skipped.tex"]
        pending["paper/summary.json"] = outputs.files["summary.json"]
        pending["paper/manifest.json"] = outputs.files["manifest.json"]
        written = _write_all(storage, pending)
        metadata: dict[str, Any] = {
            "files": len(written),
            "data": data_label(is_mock_environment(settings.env)),
        }
        for path, data in outputs.files.items():
            if path.startswith("figures/") and path.endswith(".png"):
                name = path.removeprefix("figures/").removesuffix(".png")
                metadata[name] = _png_markdown(data, name)
        completeness = outputs.summary.get("completeness", {})
        for grid, rates in completeness.items():
            if "p>0.3" in rates:
                metadata[f"completeness_{grid}"] = rates["p>0.3"]["rate"]
        metadata["skipped"] = dg.MetadataValue.md(
            "\n".join(f"- {s.output}: {s.reason}" for s in outputs.skipped) or "none"
        )
        return dg.Output(
            {"keys": written, "skipped": [vars(s) for s in outputs.skipped]},
            data_version=_version(written),
            metadata=ui_metadata(metadata),
        )

    @dg.asset(
        group_name=PAPER_GROUP,
        kinds={"latex"},
        deps=list(D06_ASSETS),
        ins={"calibration_report": dg.AssetIn(partition_mapping=one_model)},
    )
    def paper_tables(
        context: dg.AssetExecutionContext,
        calibration_report: dict,
        storage: dg.ResourceParam[StorageResource],
    ) -> dg.Output[dict]:
        """LaTeX tables under ``paper/tables/`` from the D06 result sets (published layout:
        Tier-A recall, completeness by threshold / theta_E / magnitude, bright arcs, McNemar,
        probe, missed Tier-A lenses) and the calibration of the D06 model."""
        outputs = render_paper(
            d06_results(storage), figures=False, data_note=_data_note(settings.env)
        )
        tables = {
            path.removeprefix("tables/").removesuffix(".tex"): data.decode("utf-8")
            for path, data in outputs.files.items()
            if path.startswith("tables/") and path != "tables/skipped.tex"
        }
        tables["calibration"] = T.calibration_table(
            _partition_value(calibration_report, model_name), model=model_name
        )
        if is_mock_environment(settings.env):
            note = f"% Data: {EMBEDDED_DEFAULT_LABEL}; its lenses are mock (simulated).\n"
            tables = {name: note + text for name, text in tables.items()}
        written = _write_all(
            storage, {f"{TABLES_PREFIX}/{name}.tex": text.encode() for name, text in tables.items()}
        )
        context.add_output_metadata(
            ui_metadata(
                {
                    "data": data_label(is_mock_environment(settings.env)),
                    "tables": sorted(tables),
                    "completeness_table": dg.MetadataValue.md(
                        "```latex\n" + tables.get("completeness_thresholds", "(skipped)") + "```"
                    ),
                }
            )
        )
        return dg.Output(
            {"keys": written, "tables": sorted(tables)}, data_version=_version(written)
        )

    @dg.asset(
        group_name=PAPER_GROUP,
        kinds={"html", "pdf"},
        deps=["tier_a_scoring", "bright_arc"],
    )
    def comparison_gallery(
        context: dg.AssetExecutionContext, storage: dg.ResourceParam[StorageResource]
    ) -> dg.Output[dict]:
        """Figure 5 (Tier-A lenses above injections, grz Lupton composites) as PDF/PNG and
        the offline HTML gallery ``results/D06/gallery/index.html``, sortable by score. Lenses
        are labelled "mock" in the embedded default and where planted, "real" only for lenscat
        objects on real data."""
        from stronglens_assets.resources.shards import read_npz_key

        mock_data = is_mock_environment(settings.env)

        stretch = G.RGBStretch(**config.gallery.stretch.model_dump())
        store = storage.object_store()
        tier_a_key = f"{TIER_A_SET}/tier_a_scores.parquet"
        scores = pd.read_parquet(io.BytesIO(_result_bytes(storage, tier_a_key)))
        for column in ("object_id", "score", "cutout_key", "cutout_row"):
            if column not in scores.columns:
                raise ValueError(f"{tier_a_key} lacks column {column!r}")
        scores = scores.sort_values("object_id", kind="stable").reset_index(drop=True)
        real_rows = G.pick_by_score_rank(scores["score"], config.gallery.html_max_real)
        shards: dict[str, dict[str, np.ndarray]] = {}
        real: list[G.GalleryItem] = []
        for row in scores.iloc[sorted(real_rows)].itertuples(index=False):
            if row.cutout_key not in shards:
                shards[row.cutout_key] = read_npz_key(store, row.cutout_key)
            cutout = shards[row.cutout_key]["cutout"][int(row.cutout_row)]
            params = {"tier": "A"}
            for column in ("source", "ra", "dec", "mag_r", "shape_r"):
                if column in scores.columns:
                    value = getattr(row, column)
                    params[column] = value.item() if hasattr(value, "item") else value
            source = str(getattr(row, "source", "lenscat"))
            real.append(
                G.GalleryItem(
                    str(row.object_id),
                    lens_kind(source, mock_data=mock_data),
                    float(row.score),
                    G.grz_composite(cutout, stretch),
                    params,
                )
            )
        injections: list[G.GalleryItem] = []
        for variant in config.gallery.injection_variants:
            arrays = decode_npz(
                _result_bytes(storage, f"{BRIGHT_ARC_SET.format(variant=variant)}/cutouts.npz")
            )
            images = arrays["images"]
            m = min(len(images), config.gallery.html_max_injections)
            score_values = np.asarray(arrays["scores"], dtype=np.float64)[:m]
            for i in range(m):
                params: dict[str, Any] = {"variant": variant}
                for name, values in arrays.items():
                    per_injection = values.ndim == 1 and len(values) == len(arrays["scores"])
                    if name in ("images", "scores") or not per_injection:
                        continue
                    value = values[i]
                    params[name] = value.item() if hasattr(value, "item") else value
                injections.append(
                    G.GalleryItem(
                        f"{variant}-{i:04d}",
                        "injection",
                        float(score_values[i]),
                        G.grz_composite(images[i], stretch),
                        params,
                    )
                )
        pending: dict[str, bytes] = {}
        fig_real = [
            real[i]
            for i in G.pick_by_score_rank([r.score for r in real], config.gallery.figure_real)
        ]
        fig_inj = [
            injections[i]
            for i in G.pick_by_score_rank(
                [r.score for r in injections], config.gallery.figure_injections
            )
        ]
        lens_label = lens_set_label(item.kind for item in fig_real)
        fig = G.comparison_figure(
            fig_real,
            fig_inj,
            title=with_data_label(
                f"Figure 5: {lens_label} (top) and injections (bottom)", mock_data
            ),
        )
        preview = F.render_png(fig, dpi=config.figures.ui_dpi)
        pdf, png = F.render_figure(fig, dpi=config.figures.dpi)
        caption = (
            f"{lens_label[0].upper()}{lens_label[1:]} (top row, {len(fig_real)} at evenly "
            "spaced ranks of their CNN "
            f"score) beside bright-arc injections (bottom row, {len(fig_inj)}, same rule), "
            "grz colour composites with the Lupton et al. (2004) asinh stretch "
            f"(Q = {stretch.q:g}, stretch = {stretch.stretch:g}, band scales "
            f"g {stretch.scale_g:g}, r {stretch.scale_r:g}, z {stretch.scale_z:g}); "
            "north up, east left."
            + (f" Data: {EMBEDDED_DEFAULT_LABEL}; every lens is simulated." if mock_data else "")
        )
        pending[f"{FIGURE5_KEY}.pdf"] = pdf
        pending[f"{FIGURE5_KEY}.png"] = png
        sidecar = {
            "figure": 5,
            "name": "comparison",
            "caption": caption,
            "pdf": f"{FIGURE5_KEY}.pdf",
            "png": f"{FIGURE5_KEY}.png",
            "inputs": [f"{D06_ROOT}/{tier_a_key}"]
            + [
                f"{D06_ROOT}/{BRIGHT_ARC_SET.format(variant=v)}/cutouts.npz"
                for v in config.gallery.injection_variants
            ],
        }
        pending[f"{FIGURE5_KEY}.json"] = (json.dumps(sidecar, indent=2) + "\n").encode()
        pending[f"{FIGURES_PREFIX}/fig5_comparison.pdf"] = pdf
        tex = _figure_tex(
            [
                {
                    "name": "fig5_comparison",
                    "graphic": "figures/fig5_comparison.pdf",
                    "caption": caption,
                }
            ]
        )
        pending[f"{FIGURES_PREFIX}/figure5.tex"] = tex.encode()
        page = G.gallery_html(
            real + injections,
            title=with_data_label(
                f"D06 gallery: {lens_set_label(item.kind for item in real)} and injections",
                mock_data,
            ),
            description=(
                "Tier-A validation lenses (red border; real or mock, with the catalogue source "
                "of each) "
                f"and bright-arc injections of {', '.join(config.gallery.injection_variants)} "
                "(blue border) with their CNN score p(lens) and parameters (theta_e, r_eff in "
                "arcsec; source_mag in AB mag). grz colour composites with the Lupton et al. "
                f"(2004) asinh stretch (Q = {stretch.q:g}, stretch = {stretch.stretch:g}, band "
                f"scales g {stretch.scale_g:g}, r {stretch.scale_r:g}, z {stretch.scale_z:g}); "
                "north up, east left."
            ),
        )
        pending[GALLERY_KEY] = page.encode("utf-8")
        written = _write_all(storage, pending)
        return dg.Output(
            {"keys": written, "real": len(real), "injections": len(injections)},
            data_version=_version(written),
            metadata=ui_metadata(
                {
                    "figure_5": _png_markdown(preview, "Figure 5"),
                    "gallery": dg.MetadataValue.path(storage.uri(GALLERY_KEY)),
                    "thumbnails": len(real) + len(injections),
                    "data": data_label(mock_data),
                    "real": sum(item.kind == "real" for item in real),
                    "mock": sum(item.kind == "mock" for item in real),
                    "injections": len(injections),
                }
            ),
        )

    d06_ins = {name: dg.AssetIn() for name in D06_ASSETS}
    d06_ins["injection_priors"] = dg.AssetIn()
    d06_ins["model_checkpoint"] = dg.AssetIn(partition_mapping=one_model)

    @dg.asset(group_name=PAPER_GROUP, kinds={"json"}, ins=d06_ins)
    def d06_provenance(
        context: dg.AssetExecutionContext,
        storage: dg.ResourceParam[StorageResource],
        grid_completeness: dict,
        bright_arc: dict,
        linear_probe: dict,
        tier_a_scoring: dict,
        poisson_diagnostics: dict,
        injection_priors: dict,
        model_checkpoint: dict,
    ) -> dg.Output[dict]:
        """``results/D06/provenance.json``: git commit, SHA-256 of every config, the checkpoint
        sha256, data version / run id / time of every upstream materialization, package
        versions; its blocking check fails when a config or the checkpoint drifted."""
        summaries = {
            "grid_completeness": grid_completeness,
            "bright_arc": bright_arc,
            "linear_probe": linear_probe,
            "tier_a_scoring": tier_a_scoring,
            "poisson_diagnostics": poisson_diagnostics,
        }
        checkpoint = _partition_value(model_checkpoint, model_name)
        for field in ("sha256", "checkpoint_key"):
            if field not in checkpoint:
                raise ValueError(f"model_checkpoint summary lacks {field!r}")
        sha_now = _checkpoint_sha_now(storage, checkpoint["checkpoint_key"])
        if sha_now != checkpoint["sha256"]:
            raise ValueError(
                f"checkpoint {checkpoint['checkpoint_key']} has sha256 {sha_now}, but "
                f"model_checkpoint recorded {checkpoint['sha256']}: re-run the D06 assets"
            )
        used = _collect_sha(summaries, "checkpoint_sha256")
        stale = sorted(name for name, sha in used.items() if sha != checkpoint["sha256"])
        if stale:
            raise ValueError(
                f"D06 results {stale} were computed with another checkpoint than "
                f"{checkpoint['checkpoint_key']} ({checkpoint['sha256']}): re-materialize them"
            )
        priors = injection_priors
        priors_now = priors_sha256(load_priors(settings.config_dir, settings.profile))
        priors_used = _collect_sha(summaries, "priors_sha256")
        other = sorted(name for name, sha in priors_used.items() if sha != priors_now)
        if other or priors.get("sha256") != priors_now:
            raise ValueError(
                f"D06 results {other or ['injection_priors']} were computed with other injection "
                f"priors than {settings.config_dir / 'injection_priors.yaml'} holds now "
                f"(sha256 {priors_now}): re-materialize injection_priors and the D06 assets"
            )
        d06_config = settings.config_dir / D06_CONFIG_FILENAME
        config_now = sha256_file(d06_config)
        config_used = _collect_sha(summaries, "d06_config_sha256")
        changed = sorted(name for name, sha in config_used.items() if sha != config_now)
        if changed:
            raise ValueError(
                f"D06 results {changed} were computed with another {d06_config} than it holds "
                f"now (sha256 {config_now}): re-materialize them"
            )
        unverified = verify_d06_results(storage)
        if unverified:
            raise ValueError(
                "D06 result files do not match the sha256 their producer recorded: "
                + "; ".join(unverified[:5])
                + (f" (and {len(unverified) - 5} more)" if len(unverified) > 5 else "")
            )
        graph = context.job_def.asset_layer.asset_graph
        upstream = upstream_lineage(context.instance, graph.get(context.asset_key).parent_keys)
        record = P.build_provenance(
            git=P.git_state(PROJECT_ROOT),
            configs=P.config_checksums(settings.config_dir, extra_configs),
            checkpoint={
                "model_config": checkpoint.get("model_config", model_name),
                "key": checkpoint["checkpoint_key"],
                "sha256": checkpoint["sha256"],
            },
            upstream=upstream,
            packages=P.package_versions(),
            run_id=context.run.run_id,
            created_at=P.utc_now(),
            extra={
                "environment": settings.env,
                "profile": settings.profile,
                "storage": settings.storage_uri,
                "priors_sha256": priors.get("sha256") if isinstance(priors, Mapping) else None,
                "d06_checkpoint_sha256": used,
                "d06_priors_sha256": priors_used,
                "d06_config_sha256": config_used,
            },
        )
        data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
        uri = storage.write_bytes(PROVENANCE_KEY, data)
        git = record["git"]
        return dg.Output(
            {
                "key": PROVENANCE_KEY,
                "sha256": sha256_bytes(data),
                "checkpoint_sha256": checkpoint["sha256"],
                "configs": len(record["configs"]),
            },
            metadata=ui_metadata(
                {
                    "uri": dg.MetadataValue.path(uri),
                    "git_commit": git["commit"] or f"unknown ({git['reason']})",
                    "git_dirty": str(git["dirty"]),
                    "configs": len(record["configs"]),
                    "upstream_materializations": len(upstream),
                    "checkpoint_sha256": checkpoint["sha256"],
                }
            ),
        )

    @dg.asset_check(asset=d06_provenance, blocking=True)
    def provenance_checksums_match(
        storage: dg.ResourceParam[StorageResource],
    ) -> dg.AssetCheckResult:
        """Recompute the SHA-256 of every config file and of the checkpoint; fail (ERROR, so
        downstream steps are blocked) when any differs from ``provenance.json``."""
        if not storage.exists(PROVENANCE_KEY):
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{storage.uri(PROVENANCE_KEY)} does not exist; materialize "
                "d06_provenance",
            )
        record = json.loads(_read(storage, PROVENANCE_KEY))
        configs_now = P.config_checksums(settings.config_dir, extra_configs)
        sha_now = _checkpoint_sha_now(storage, record["checkpoint"]["key"])
        drift = P.check_drift(record, configs_now, sha_now)
        return dg.AssetCheckResult(
            passed=not drift.drifted,
            severity=dg.AssetCheckSeverity.ERROR,
            description=drift.describe(),
            metadata=ui_metadata(
                {
                    "changed_configs": drift.changed,
                    "missing_configs": drift.missing,
                    "added_configs": drift.added,
                    "checkpoint": drift.checkpoint or "unchanged",
                    "provenance_created_at": record.get("created_at", ""),
                }
            ),
        )

    return [
        paper_figures,
        paper_tables,
        comparison_gallery,
        d06_provenance,
        provenance_checksums_match,
    ]
