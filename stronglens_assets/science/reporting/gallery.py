"""Figure 5 and the offline HTML gallery: Tier-A lenses beside injections, in colour.

Lenses are "real" only for lenscat objects on real data and "mock" otherwise
(:mod:`~stronglens_assets.science.reporting.labels`).

Colour composites
    grz cutouts in nanomaggies per pixel are turned into RGB with the asinh stretch of
    Lupton et al. (2004, PASP 116, 133) as implemented by
    :func:`astropy.visualization.make_lupton_rgb`: red = z, green = r, blue = g, each band
    first multiplied by a per-band scale (:class:`RGBStretch`, default the Legacy Surveys
    viewer's grz weights g 6.0, r 3.4, z 2.2), then
    ``f(I) = asinh(Q (I - minimum) / stretch) / Q`` applied to the band mean ``I`` with the
    colour ratios kept. The same stretch is used for every object, so lenses and
    injections are directly comparable.

Selection
    :func:`pick_by_score_rank` takes objects at evenly spaced ranks of their score (highest
    first), so a panel spans the whole score distribution instead of showing only the best.

Gallery page
    :func:`gallery_html` writes one self-contained HTML file: thumbnails as ``data:`` PNG URIs,
    inline CSS and JavaScript only, and a Content-Security-Policy that forbids every other
    source, so it works offline and cannot fetch anything. Each card shows the object's id,
    kind, score and parameters. Buttons sort by score; ``#sort=score-desc`` / ``score-asc``
    in the URL applies a sort at load. When the page has loaded, the script writes the number
    of decoded thumbnails into ``#thumbnail-count`` and ``body[data-thumbnails-loaded]``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
from astropy.visualization import make_lupton_rgb
from matplotlib.figure import Figure

from stronglens_assets.science.reporting.labels import LENS_KINDS, lens_set_label

__all__ = [
    "GalleryItem",
    "RGBStretch",
    "comparison_figure",
    "gallery_html",
    "grz_composite",
    "pick_by_score_rank",
    "png_bytes",
]


@dataclass(frozen=True)
class RGBStretch:
    """Parameters of the Lupton et al. (2004) asinh composite (nanomaggies per pixel).

    Attributes:
        q: asinh softening ``Q`` (larger: more logarithmic at the bright end).
        stretch: linear range of the stretch, in scaled nanomaggies per pixel.
        minimum: black level, scaled nanomaggies per pixel.
        scale_g, scale_r, scale_z: per-band multipliers applied before the stretch.
    """

    q: float = 8.0
    stretch: float = 0.5
    minimum: float = 0.0
    scale_g: float = 6.0
    scale_r: float = 3.4
    scale_z: float = 2.2

    def __post_init__(self) -> None:
        for name in ("q", "stretch", "scale_g", "scale_r", "scale_z"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RGBStretch.{name} must be > 0, got {getattr(self, name)}")


def grz_composite(cutout: np.ndarray, stretch: RGBStretch | None = None) -> np.ndarray:
    """Colour composite of a (3, H, W) grz cutout in nanomaggies: (H, W, 3) uint8 RGB.

    Raises:
        ValueError: wrong shape or non-finite pixels.
    """
    stretch = stretch or RGBStretch()
    cutout = np.asarray(cutout)
    if cutout.ndim != 3 or cutout.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) grz cutout, got shape {cutout.shape}")
    if not np.all(np.isfinite(cutout)):
        raise ValueError("cutout has non-finite pixels; cannot make a colour composite")
    g, r, z = (cutout[i].astype(np.float64) for i in range(3))
    return make_lupton_rgb(
        z * stretch.scale_z,
        r * stretch.scale_r,
        g * stretch.scale_g,
        minimum=stretch.minimum,
        stretch=stretch.stretch,
        Q=stretch.q,
    )


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an (H, W, 3) uint8 image, deterministic (fixed metadata).

    Array row 0 is drawn at the bottom, as ``imshow(origin="lower")`` does in Figure 5, so a
    DR10 cutout appears north up, east left in both.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    buffer = io.BytesIO()
    mpimg.imsave(
        buffer, rgb, format="png", origin="lower", metadata={"Software": "stronglens_assets"}
    )
    return buffer.getvalue()


def pick_by_score_rank(scores: Sequence[float], count: int) -> list[int]:
    """Indices of ``count`` objects at evenly spaced score ranks, highest score first.

    Ties keep input order (stable sort). Fewer than ``count`` objects: all of them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if count <= 0 or scores.size == 0:
        return []
    order = np.argsort(-scores, kind="stable")
    if scores.size <= count:
        return [int(i) for i in order]
    ranks = np.unique(np.round(np.linspace(0, scores.size - 1, count)).astype(int))
    return [int(order[r]) for r in ranks]


@dataclass(frozen=True)
class GalleryItem:
    """One object of the gallery.

    Attributes:
        object_id: identifier shown on the card (lenscat name, injection id).
        kind: ``"real"`` (a lenscat lens on real data), ``"mock"`` (a simulated lens:
            :func:`~stronglens_assets.science.reporting.labels.lens_kind`) or ``"injection"``.
        score: CNN p(lens) in [0, 1].
        rgb: (H, W, 3) uint8 colour composite.
        params: parameters shown on the card (e.g. theta_E in arcsec, source mag in AB).
    """

    object_id: str
    kind: str
    score: float
    rgb: np.ndarray
    params: Mapping[str, float | int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in (*LENS_KINDS, "injection"):
            raise ValueError(
                f"GalleryItem.kind must be 'real', 'mock' or 'injection', got {self.kind!r}"
            )
        if not np.isfinite(self.score):
            raise ValueError(f"GalleryItem {self.object_id!r} has a non-finite score")


def comparison_figure(
    real: Sequence[GalleryItem], injections: Sequence[GalleryItem], *, title: str
) -> Figure:
    """Figure 5: Tier-A lenses (top row) beside injections (bottom row), one page.

    The top row says whether its lenses are real or mock
    (:func:`~stronglens_assets.science.reporting.labels.lens_set_label`). Each panel is the
    object's colour composite with its id and score; injection panels also give theta_E and
    the source magnitude when present in ``params``.
    """
    if not real and not injections:
        raise ValueError("Figure 5 needs at least one real lens or injection")
    n_cols = max(len(real), len(injections), 1)
    fig, axes = plt.subplots(
        2, n_cols, figsize=(1.9 * n_cols + 0.6, 4.6), squeeze=False, constrained_layout=True
    )
    lens_label = lens_set_label(item.kind for item in real)
    for row, (items, name) in enumerate(((real, lens_label), (injections, "injections"))):
        for col in range(n_cols):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(items):
                ax.set_axis_off()
                continue
            item = items[col]
            ax.imshow(item.rgb, origin="lower", interpolation="nearest")
            label = f"{item.object_id}\np = {item.score:.3f}"
            extra = [
                f"{key} {item.params[key]:.3g}"
                for key in ("theta_e", "source_mag")
                if isinstance(item.params.get(key), int | float)
            ]
            if extra:
                label += "\n" + ", ".join(extra)
            ax.set_title(label, fontsize=6)
            if col == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


_CSS = """
body { font-family: sans-serif; margin: 1em; background: #fafafa; color: #222; }
#controls button { margin-right: 0.5em; }
#gallery { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 1em; }
figure.card { margin: 0; padding: 6px; width: 212px; background: #fff;
  border: 2px solid #ccc; border-radius: 4px; font-size: 11px; }
figure.card.real, figure.card.mock { border-color: #c0392b; }
figure.card.injection { border-color: #2e6da4; }
figure.card img { width: 202px; height: 202px; image-rendering: pixelated; display: block; }
figure.card dl { display: grid; grid-template-columns: auto auto; margin: 4px 0 0 0; }
figure.card dt { font-weight: bold; } figure.card dd { margin: 0; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var gallery = document.getElementById("gallery");
  function sortCards(mode) {
    var cards = Array.prototype.slice.call(gallery.querySelectorAll("figure.card"));
    cards.sort(function (a, b) {
      var tie = a.dataset.order - b.dataset.order;
      if (mode === "score-asc") { return a.dataset.score - b.dataset.score || tie; }
      if (mode === "score-desc") { return b.dataset.score - a.dataset.score || tie; }
      return tie;
    });
    cards.forEach(function (card) { gallery.appendChild(card); });
    document.body.dataset.sort = mode;
  }
  Array.prototype.forEach.call(document.querySelectorAll("button[data-sort]"), function (b) {
    b.addEventListener("click", function () { sortCards(b.dataset.sort); });
  });
  var match = /sort=(score-asc|score-desc|original)/.exec(window.location.hash);
  sortCards(match ? match[1] : "original");
  window.addEventListener("load", function () {
    var loaded = Array.prototype.filter.call(gallery.querySelectorAll("img"), function (img) {
      return img.complete && img.naturalWidth > 0;
    }).length;
    document.getElementById("thumbnail-count").textContent = String(loaded);
    document.body.dataset.thumbnailsLoaded = String(loaded);
  });
})();
"""

_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)


def _format_value(value: float | int | str) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def gallery_html(items: Sequence[GalleryItem], *, title: str, description: str = "") -> str:
    """A self-contained, offline HTML gallery of ``items`` (see the module docstring).

    The text is deterministic for the same items. Object ids, parameter names and values are
    HTML-escaped.
    """
    cards = []
    for order, item in enumerate(items):
        uri = "data:image/png;base64," + base64.b64encode(png_bytes(item.rgb)).decode("ascii")
        rows = "".join(
            f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(_format_value(value))}</dd>"
            for key, value in item.params.items()
        )
        name = html.escape(item.object_id)
        cards.append(
            f'<figure class="card {item.kind}" data-score="{item.score:.6f}" '
            f'data-order="{order}" data-kind="{item.kind}">'
            f'<img src="{uri}" alt="{name} ({item.kind})" width="202" height="202">'
            f"<figcaption><b>{name}</b> ({item.kind})<br>p(lens) = {item.score:.4f}"
            f"<dl>{rows}</dl></figcaption></figure>"
        )
    n_real = sum(item.kind == "real" for item in items)
    n_mock = sum(item.kind == "mock" for item in items)
    n_inj = len(items) - n_real - n_mock
    summary = {"thumbnails": len(items), "real": n_real, "mock": n_mock, "injections": n_inj}
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f'<body data-expected-thumbnails="{len(items)}" data-thumbnails-loaded="0">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(description)}</p>"
        f"<p>{n_real} real Tier-A lenses, {n_mock} mock Tier-A lenses, {n_inj} injections; "
        f'<span id="thumbnail-count">0</span> of {len(items)} thumbnails loaded.</p>'
        '<div id="controls">sort: '
        '<button type="button" data-sort="score-desc">score, high to low</button>'
        '<button type="button" data-sort="score-asc">score, low to high</button>'
        '<button type="button" data-sort="original">original order</button></div>\n'
        f'<div id="gallery">\n{chr(10).join(cards)}\n</div>\n'
        f'<script type="application/json" id="summary">{json.dumps(summary)}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
