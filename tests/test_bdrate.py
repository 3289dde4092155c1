"""BD-rate / BD-metric against reference values, their defining properties, and bad input."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from proxiqa_lab.evaluation import METHODS, BDWarning, bd_metric, bd_rate, bd_summary, bd_table, summary_markdown

REFERENCE = json.loads((Path(__file__).parent / "expected" / "bdrate_reference.json").read_text())
RATES = np.geomspace(0.05, 2.0, 8)
VMAF = 100 * (1 - np.exp(-2.2 * RATES**0.6))


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: c["name"][:30])
@pytest.mark.parametrize("method", METHODS)
def test_matches_reference_implementation(case, method):
    args = (case["rate_anchor"], case["metric_anchor"], case["rate_test"], case["metric_test"])
    expected = case["expected"][method]
    assert bd_rate(*args, method=method) == pytest.approx(expected["bd_rate"], rel=1e-8, abs=1e-8)
    assert bd_metric(*args, method=method) == pytest.approx(expected["bd_metric"], rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method):
    assert bd_rate(RATES, VMAF, RATES, VMAF, method) == pytest.approx(0.0, abs=1e-12)
    assert bd_metric(RATES, VMAF, RATES, VMAF, method) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_rates_scaled_by_0_9_give_minus_10_percent(method):
    assert bd_rate(RATES, VMAF, 0.9 * RATES, VMAF, method) == pytest.approx(-10.0, abs=1e-9)
    assert bd_rate(0.9 * RATES, VMAF, RATES, VMAF, method) == pytest.approx(100 / 9, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_metric_shift_gives_bd_metric(method):
    assert bd_metric(RATES, VMAF, RATES, VMAF + 1.5, method) == pytest.approx(1.5, abs=1e-9)


def test_point_order_does_not_matter():
    order = np.random.default_rng(0).permutation(8)
    test = (RATES * 0.8, VMAF + 0.3)
    assert bd_rate(RATES[order], VMAF[order], *test) == pytest.approx(bd_rate(RATES, VMAF, *test), abs=1e-12)


def test_repeated_points_are_merged():
    r, m = np.r_[RATES[0], RATES], np.r_[VMAF[0], VMAF]
    assert bd_rate(r, m, 0.9 * RATES, VMAF) == pytest.approx(-10.0, abs=1e-9)


@pytest.mark.parametrize(
    ("rates", "metric", "match"),
    [
        (RATES[:3], VMAF[:3], "at least 4"),
        ([RATES[0]] * 5, [VMAF[0]] * 5, "at least 4"),
        (np.r_[RATES[:-1], np.nan], VMAF, "finite"),
        (np.r_[0.0, RATES[1:]], VMAF, "> 0"),
        (RATES, VMAF[:-1], "equal length"),
        (RATES, ["a"] * 8, "numbers"),
    ],
)
def test_bad_curves_are_rejected(rates, metric, match):
    with pytest.raises(ValueError, match=match):
        bd_rate(rates, metric, RATES, VMAF, "cubic")


def test_repeated_metric_values_have_no_fit():
    flat = np.r_[VMAF[:6], VMAF[5], VMAF[5]]
    with pytest.raises(ValueError, match="reached at two different rates"), warnings.catch_warnings():
        warnings.simplefilter("ignore", BDWarning)
        bd_rate(RATES, flat, RATES, VMAF)


def test_unknown_method():
    with pytest.raises(ValueError, match="cubic, pchip, akima"):
        bd_rate(RATES, VMAF, RATES, VMAF, method="spline")


def test_non_overlapping_curves_give_nan_with_warning():
    with pytest.warns(BDWarning, match="do not overlap"):
        assert math.isnan(bd_rate(RATES, VMAF, RATES, VMAF + 200))


def test_non_monotone_curve_warns():
    bumpy = VMAF.copy()
    bumpy[4], bumpy[5] = bumpy[5], bumpy[4]
    with pytest.warns(BDWarning, match="does not rise"):
        assert math.isfinite(bd_rate(RATES, bumpy, RATES, VMAF))


def test_pchip_stays_within_the_data_where_a_cubic_fit_overshoots():
    # Kodim23 in the lab profile: an SSIM-trained model whose VMAF saturates near 82.2 at three
    # rates, against the MSE model. A cubic least-squares fit of log-rate bends steeply through the
    # nearly equal VMAF values; the piecewise interpolants cannot leave the points' rate ratios.
    mse = ([0.159, 0.3765, 0.6272, 0.806, 0.8241], [53.3159, 70.7846, 79.6576, 84.2828, 83.9997])
    ssim = ([0.247, 0.5189, 0.7747, 0.9184, 0.9409], [60.1479, 77.7283, 82.1583, 82.2377, 82.1914])
    lo, hi = min(ssim[0]) / max(mse[0]), max(ssim[0]) / min(mse[0])  # widest possible rate ratios
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BDWarning)  # both curves dip at their last point
        assert bd_rate(*mse, *ssim, "cubic") > 100 * (hi - 1)
        for method in ("pchip", "akima"):
            assert 100 * (lo - 1) < bd_rate(*mse, *ssim, method) < 100 * (hi - 1)


def _table(scale: dict[str, float]) -> pd.DataFrame:
    rows = []
    for codec, s in scale.items():
        for image, offset in (("kodim01", 0.0), ("kodim02", 2.0)):
            for p, (r, v) in enumerate(zip(RATES, VMAF)):
                rows.append({"image": image, "codec": codec, "point": p, "bpp": s * r,
                             "psnr_avg": 25 + 4 * np.log2(r / 0.05) + offset, "vmaf": v + offset})
    return pd.DataFrame(rows)


def test_bd_table_and_summary():
    table = bd_table(_table({"bls": 1.0, "jpeg": 2.0, "hevc": 0.8}), baseline="bls")
    assert list(table.columns) == ["psnr_avg", "vmaf"]
    assert list(table.index) == [("jpeg", "kodim01"), ("jpeg", "kodim02"), ("hevc", "kodim01"), ("hevc", "kodim02")]
    np.testing.assert_allclose(table.loc["jpeg"].to_numpy(), 100.0, atol=1e-9)
    np.testing.assert_allclose(table.loc["hevc"].to_numpy(), -20.0, atol=1e-9)
    summary = bd_summary(table)
    assert summary.loc["hevc", ("vmaf", "mean")] == pytest.approx(-20.0)
    assert summary.loc["hevc", ("vmaf", "std")] == pytest.approx(0.0, abs=1e-9)
    md = summary_markdown(summary)
    assert "| hevc | -20.00 ± 0.00 | -20.00 ± 0.00 |" in md


def test_bd_table_bad_input():
    df = _table({"bls": 1.0, "jpeg": 2.0})
    with pytest.raises(ValueError, match="codecs there: bls, jpeg"):
        bd_table(df, baseline="hm")
    with pytest.raises(ValueError, match="not in the table"):
        bd_table(df, baseline="bls", metrics=["ssim"])


def test_bd_table_cell_nan_when_curve_unusable():
    df = _table({"bls": 1.0, "jpeg": 2.0})
    df = df[~((df["codec"] == "jpeg") & (df["image"] == "kodim02") & (df["point"] > 2))]
    with pytest.warns(UserWarning, match="kodim02"):
        table = bd_table(df, baseline="bls", method="cubic")  # three points: too few for a cubic
    assert table.loc[("jpeg", "kodim02")].isna().all()
    assert table.loc[("jpeg", "kodim01")].notna().all()


def test_three_points_need_an_interpolating_method():
    """Three rate points (e.g. three λ) suffice for PCHIP/Akima; the cubic fit needs four."""
    from proxiqa_lab.evaluation import bd_rate

    rate, vmaf = [0.2, 0.4, 0.8], [40.0, 60.0, 75.0]
    for method in ("pchip", "akima"):
        assert bd_rate(rate, vmaf, [0.9 * r for r in rate], vmaf, method=method) == pytest.approx(-10.0)
    with pytest.raises(ValueError, match="'cubic' method needs at least 4"):
        bd_rate(rate, vmaf, rate, vmaf, method="cubic")
