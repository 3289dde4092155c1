"""The α/λ explorer, driven without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from proxiqa_lab.widgets import AlphaLambdaExplorer


@pytest.fixture
def grid():
    rows = []
    for alpha in (0.0, 0.5, 1.0):
        for lmbda in (0.002, 0.01, 0.05):
            bpp = 0.1 + 10 * lmbda + 0.01 * alpha
            rows.append({"alpha": alpha, "lmbda": lmbda, "bpp": bpp, "vmaf": 40 + 300 * lmbda + 5 * alpha,
                         "psnr_avg": 25 + 100 * lmbda, "proxy": 45 + 300 * lmbda + 5 * alpha})
    return pd.DataFrame(rows)


def test_sliders_move_the_point_text_and_crop(grid):
    crops = {(a, v): np.full((8, 8, 3), int(a * 100 + v * 1000), np.uint8) for a, v in zip(grid.alpha, grid.lmbda)}
    explorer = AlphaLambdaExplorer(grid, crops=crops)
    box = explorer.widget()
    assert explorer.alpha_slider in box.children[0].children
    first_png = explorer.image.value
    explorer.alpha_slider.value = 1.0
    explorer.lmbda_slider.value = 0.05
    row = explorer.current
    assert explorer.image.value[:4] == b"\x89PNG" and explorer.image.value != first_png
    assert (row["alpha"], row["lmbda"]) == (1.0, 0.05)
    x, y = explorer.marker.get_data()
    assert (x[0], y[0]) == pytest.approx((row["bpp"], row["vmaf"]))
    assert "λ = 0.05" in explorer.text.get_text() and f"{row['proxy']:.3f}" in explorer.text.get_text()
    assert explorer._image.get_array()[0, 0, 0] == 150
    explorer.alpha_slider.value = 0.0
    x2, _ = explorer.marker.get_data()
    assert x2[0] == pytest.approx(0.6) and explorer._image.get_array()[0, 0, 0] == 50


def test_select_from_code_snaps_to_grid_and_updates_sliders(grid, tmp_path):
    explorer = AlphaLambdaExplorer(grid)
    explorer.widget()
    row = explorer.select(alpha=0.45, lmbda=0.0021)
    assert (row["alpha"], row["lmbda"]) == (0.5, 0.002)
    assert explorer.alpha_slider.value == 0.5 and explorer.lmbda_slider.value == 0.002
    explorer.draw().savefig(tmp_path / "explorer.png")
    assert (tmp_path / "explorer.png").stat().st_size > 0


def test_missing_grid_point_and_bad_input(grid):
    explorer = AlphaLambdaExplorer(grid.iloc[1:])
    explorer.select(alpha=0.0, lmbda=0.002)
    assert explorer.current is None and "not trained" in explorer.describe()
    assert explorer.marker.get_data()[0] == [] or len(explorer.marker.get_data()[0]) == 0
    with pytest.raises(ValueError, match="lack column"):
        AlphaLambdaExplorer(grid.drop(columns="bpp"))
    with pytest.raises(ValueError, match="lmbda must be > 0"):
        explorer.select(lmbda=-1)
    with pytest.raises(ValueError, match="several rows"):
        AlphaLambdaExplorer(pd.concat([grid, grid.iloc[:1]]))
