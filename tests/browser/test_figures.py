"""What the static figures must show, checked where people see them: rendered by plotly.js
in Chromium (issue 16, item 9). Matrix axes carry integer ticks only; the catalogue
scatter's legend and the disagreement table count the same systems."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from labkit.symmetry import LieGANConfig, liegan, so2_invariant
from labkit.widgets import disagreement_table_figure, discovery_figure, invariants_scatter_figure
from tests.widgets.test_table_plots import _comparison


def _show(page: Any, figures: list[Any], path: Path) -> None:
    html = "".join(f.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False)
                   for i, f in enumerate(figures))
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{html}"
                    "</body></html>")
    page.goto(path.as_uri())
    page.wait_for_selector(".main-svg", timeout=30_000)


def _texts(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_text_contents() if t.strip()]


@pytest.fixture(scope="module")
def discovery() -> Any:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return liegan(so2_invariant(500, seed=0), LieGANConfig(steps=300), seed=0, device="cpu")
    finally:
        torch.set_num_threads(n)


def test_matrix_axes_show_integer_ticks_only(page, tmp_path, discovery):
    _show(page, [discovery_figure(discovery, title="so2")], tmp_path / "discovery.html")
    for subplot in ("xy", "x2y2"):  # the learned generator and the truth
        for axis in ("x", "y"):
            ticks = _texts(page, f"g.subplot.{subplot} .{axis}axislayer-above text")
            assert ticks, (subplot, axis)
            assert all(re.fullmatch(r"-?\d+", t) for t in ticks), (subplot, axis, ticks)
    assert not page.console.real_errors()


def test_scatter_legend_and_table_count_the_same_disagreements(page, tmp_path):
    comparison = _comparison()
    _show(page, [invariants_scatter_figure(comparison), disagreement_table_figure(comparison)],
          tmp_path / "invariants.html")
    legend = " ".join(_texts(page, ".legendtext"))
    drawn = re.search(r"disagrees \((\d+)", legend)
    title = re.search(r"(\d+) disagreements", " ".join(_texts(page, ".gtitle")))
    assert drawn and title, (legend, _texts(page, ".gtitle"))
    assert int(drawn.group(1)) == int(title.group(1)) == len(comparison.disagreements())
    assert not page.console.real_errors()
