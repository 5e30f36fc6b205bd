"""Tests of stronglens_assets.science.reporting.gallery: composites, Figure 5, and the HTML gallery
loaded in a real headless browser (Debian chromium)."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from astropy.visualization import make_lupton_rgb

from stronglens_assets.science.figures import render_figure
from stronglens_assets.science.reporting import gallery as G
from stronglens_assets_tests.paper_tools import load_in_chromium, pdf_page_count, png_size


def _cutout(seed: int, arc: float = 0.3) -> np.ndarray:
    """A (3, 101, 101) grz cutout in nanomaggies: red galaxy, blue arc, Gaussian noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:101, :101] - 50.0
    r = np.hypot(x, y)
    galaxy = np.exp(-r / 4.0)
    ring = np.exp(-((r - 12.0) ** 2) / 4.0) * (np.cos(np.arctan2(y, x) - seed) > 0.3)
    bands = [0.2 * galaxy + arc * ring, 0.6 * galaxy + 0.7 * arc * ring, galaxy + 0.4 * arc * ring]
    return (np.stack(bands) + rng.normal(0, 0.01, (3, 101, 101))).astype(np.float32)


def _items(n_real: int = 3, n_inj: int = 4) -> list[G.GalleryItem]:
    items = []
    for i in range(n_real + n_inj):
        kind = "real" if i < n_real else "injection"
        params = {"theta_e": 1.0 + 0.1 * i, "source_mag": 22.0} if kind == "injection" else {}
        params["tier"] = "A" if kind == "real" else "inj"
        items.append(
            G.GalleryItem(f"obj-{i}", kind, (i * 0.37) % 1.0, G.grz_composite(_cutout(i)), params)
        )
    return items


def test_composite_maps_z_r_g_to_red_green_blue():
    only = {}
    for band in range(3):
        cutout = np.zeros((3, 11, 11), np.float32)
        cutout[band] = 1.0
        only[band] = G.grz_composite(cutout)[5, 5].astype(int)
    assert np.argmax(only[0]) == 2  # g -> blue
    assert np.argmax(only[1]) == 1  # r -> green
    assert np.argmax(only[2]) == 0  # z -> red
    stretch = G.RGBStretch(q=5, stretch=0.2, scale_g=1.0, scale_r=1.0, scale_z=1.0)
    cutout = _cutout(1)
    expected = make_lupton_rgb(cutout[2], cutout[1], cutout[0], stretch=0.2, Q=5, minimum=0)
    np.testing.assert_array_equal(G.grz_composite(cutout, stretch), expected)


def test_composite_rejects_bad_input():
    bad = _cutout(0)
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        G.grz_composite(bad)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        G.grz_composite(np.zeros((4, 5, 5)))
    with pytest.raises(ValueError, match="stretch"):
        G.RGBStretch(stretch=0)


def test_png_puts_row_zero_at_the_bottom():
    rgb = np.zeros((4, 3, 3), np.uint8)
    rgb[0] = 255  # first array row white
    image = mpimg.imread(io.BytesIO(G.png_bytes(rgb)))
    assert image.shape[:2] == (4, 3)
    assert image[-1, :, :3].min() == 1.0 and image[0, :, :3].max() == 0.0


def test_pick_by_score_rank():
    scores = [0.1, 0.9, 0.5, 0.7, 0.3]
    assert G.pick_by_score_rank(scores, 3) == [1, 2, 0]  # best, median, worst
    assert G.pick_by_score_rank(scores, 10) == [1, 3, 2, 4, 0]
    assert G.pick_by_score_rank(scores, 0) == []
    assert G.pick_by_score_rank([], 3) == []


def test_comparison_figure_has_two_rows_and_one_page():
    items = _items(3, 4)
    fig = G.comparison_figure(items[:3], items[3:], title="Figure 5")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 7
    assert fig.axes[0].get_ylabel() == "real Tier-A lenses"
    mock = [G.GalleryItem(i.object_id, "mock", i.score, i.rgb, i.params) for i in items[:3]]
    fig = G.comparison_figure(mock, items[3:], title="Figure 5")
    assert fig.axes[0].get_ylabel() == "mock Tier-A lenses"
    pdf, png = render_figure(fig, dpi=50)
    assert pdf_page_count(pdf) == 1
    width, height = png_size(png)
    assert (width, height) == (round(50 * (1.9 * 4 + 0.6)), 230)
    with pytest.raises(ValueError, match="at least one"):
        G.comparison_figure([], [], title="x")


def test_gallery_html_is_self_contained_and_escaped():
    items = _items(2, 3)
    items.append(G.GalleryItem("<b>evil</b>&", "real", 0.5, items[0].rgb, {"note": "<x>"}))
    page = G.gallery_html(items, title="Gallery <1>")
    assert page == G.gallery_html(items, title="Gallery <1>")  # deterministic
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;&amp;" in page
    assert "&lt;x&gt;" in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(sources) == len(items)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    first = base64.b64decode(sources[0].split(",", 1)[1])
    assert png_size(first) == (101, 101)
    assert 'data-expected-thumbnails="6"' in page
    with pytest.raises(ValueError, match="kind"):
        G.GalleryItem("x", "lens", 0.5, items[0].rgb)


def _scores_in_dom(dom: str) -> list[float]:
    return [float(s) for s in re.findall(r'<figure class="card[^"]*" data-score="([0-9.]+)"', dom)]


def test_gallery_loads_in_headless_chromium(tmp_path):
    items = _items(3, 5)
    path = tmp_path / "index.html"
    path.write_text(G.gallery_html(items, title="Gallery"))
    page = load_in_chromium(path.as_uri() + "#sort=score-desc", tmp_path / "profile")
    assert page.console == [], page.console
    assert 'data-thumbnails-loaded="8"' in page.dom
    assert re.search(r'id="thumbnail-count">8<', page.dom)
    scores = _scores_in_dom(page.dom)
    assert len(scores) == 8 and scores == sorted(scores, reverse=True)
    ascending = load_in_chromium(path.as_uri() + "#sort=score-asc", tmp_path / "profile2")
    assert _scores_in_dom(ascending.dom) == sorted(scores)


def test_browser_check_sees_script_errors_and_broken_images(tmp_path):
    """The page-load check itself can fail: a script error and an undecodable image show."""
    items = _items(1, 1)
    page = G.gallery_html(items, title="Gallery")
    broken = re.sub(r'src="data:image/png;base64,[^"]*"', 'src="data:image/png;base64,AAAA"', page)
    broken = broken.replace("</body>", "<script>undefinedFunction();</script></body>")
    path = tmp_path / "broken.html"
    path.write_text(broken)
    result = load_in_chromium(path.as_uri(), tmp_path / "profile")
    assert any("Uncaught" in line for line in result.console)
    assert 'data-thumbnails-loaded="0"' in result.dom
