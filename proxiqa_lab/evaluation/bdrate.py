"""Bjøntegaard delta rate and delta metric (VCEG-M33), as used for the paper's Tables I, II and IV.

BD-rate is the average horizontal gap between two RD curves: log-rate is fitted as a function
of the quality metric, both fits are integrated over the metric interval where the curves
overlap, and the mean log-rate difference ``Δ`` is reported as ``(exp(Δ) - 1) * 100`` percent
(negative: the test codec needs fewer bits for the same quality). BD-metric (BD-PSNR style) is
the vertical counterpart: the metric is fitted as a function of log-rate and the mean difference
is reported in the metric's own units.

Interpolation methods:

* ``"cubic"``: one cubic polynomial through all points (least squares), as in VCEG-M33;
* ``"pchip"``: piecewise cubic Hermite interpolation, as in the JCT-VC / JVET common test
  conditions' spreadsheet and the ``bjontegaard`` package;
* ``"akima"``: Akima interpolation (Herglotz et al., ICIP 2022).

The default is PCHIP (:data:`DEFAULT_METHOD`), here, in the command line and in the notebooks:
one cubic through points of nearly equal quality can bend far outside the data (a saturating
learned-codec curve gave a BD-rate of +70,020 %). A cubic fit whose integral overflows gives NaN
with a :class:`BDWarning` that says so.

Input rules (checked, with errors that say what was given):

* each curve has at least 4 points for ``"cubic"`` (a cubic fit through fewer is exact and
  meaningless) and at least 3 for ``"pchip"``/``"akima"`` (interpolants through the points);
  rates and metric values are finite, rates are > 0;
* repeated identical (rate, metric) points are merged (a codec whose knob cannot reach a target
  may produce the same point twice); after that the fitted coordinate (the metric for BD-rate,
  the rate for BD-metric) must have distinct values, otherwise the curve has no unique fit;
* curves do not have to be monotone. A curve whose metric falls while its rate rises gets a
  :class:`BDWarning`, because BD values are then hard to interpret;
* curves whose fitted coordinates do not overlap give NaN with a :class:`BDWarning` (so that a
  table of many images still fills in); the overlap is otherwise not required to be large.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

METHODS = ("cubic", "pchip", "akima")
#: The fit used when none is named.
DEFAULT_METHOD = "pchip"
#: Fewest distinct RD points per curve, by method.
MIN_POINTS = {"cubic": 4, "pchip": 3, "akima": 3}


class BDWarning(UserWarning):
    """A BD value could not be computed (NaN) or is questionable."""


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else a ValueError naming them."""
    if method not in METHODS:
        raise ValueError(f"unknown BD method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def _curve(rate, metric, what: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    check_method(method)
    try:
        rate = np.asarray(rate, dtype=np.float64)
        metric = np.asarray(metric, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: rates and metric values must be numbers ({err})") from err
    if rate.ndim != 1 or metric.ndim != 1 or rate.shape != metric.shape:
        raise ValueError(f"{what}: rates and metric values must be 1-D of equal length, "
                         f"got shapes {rate.shape} and {metric.shape}")
    if not (np.isfinite(rate).all() and np.isfinite(metric).all()):
        raise ValueError(f"{what}: rates and metric values must be finite, got rates {rate.tolist()} "
                         f"and metric {metric.tolist()}")
    if (rate <= 0).any():
        raise ValueError(f"{what}: rates must be > 0 (BD works on log-rate), got {rate.tolist()}")
    pairs = np.unique(np.stack([rate, metric], 1), axis=0)  # merge repeated points, sort by rate
    if len(pairs) < MIN_POINTS[method]:
        raise ValueError(f"{what}: the {method!r} method needs at least {MIN_POINTS[method]} distinct RD points, "
                         f"got {len(pairs)} ({len(rate)} given)")
    rate, metric = pairs[:, 0], pairs[:, 1]
    if (np.diff(metric) < 0).any():
        warnings.warn(f"{what}: the metric does not rise with the rate ({metric.round(4).tolist()} "
                      f"at rates {rate.round(4).tolist()}); BD values may mislead", BDWarning, stacklevel=4)
    return rate, metric


def _fit(x: np.ndarray, y: np.ndarray, method: str, what: str, over: str = "metric"):
    """Fit y(x) and return a function integrating it over [a, b].

    ``over`` names x for messages: ``"metric"`` (BD-rate fits log-rate over the metric) or
    ``"log-rate"`` (BD-metric fits the metric over log-rate).
    """
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if (np.diff(x) == 0).any():
        shown = np.exp(x) if over == "log-rate" else x
        repeated = sorted({float(v) for v, d in zip(shown[1:], np.diff(x)) if d == 0})
        if over == "log-rate":
            raise ValueError(f"{what}: the rate {', '.join(f'{v:.6g}' for v in repeated)} appears twice with "
                             f"different quality; a BD-metric fit needs one quality per rate (merge or drop "
                             f"the repeated point)")
        raise ValueError(f"{what}: the quality {', '.join(f'{v:.6g}' for v in repeated)} is reached at two "
                         f"different rates; a BD-rate fit needs one rate per quality value (merge or drop "
                         f"the repeated point)")
    if method == "cubic":
        poly = np.polynomial.Polynomial.fit(x, y, 3).integ()
        return lambda a, b: poly(b) - poly(a)
    interp = PchipInterpolator(x, y) if method == "pchip" else Akima1DInterpolator(x, y)
    return lambda a, b: float(interp.integrate(a, b))


def _bd_delta(x1, y1, x2, y2, method: str, over: str = "metric") -> float:
    """Mean of y2(x) - y1(x) over the overlap of the x ranges (NaN + warning if none); ``method`` checked by _curve."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not hi > lo:
        warnings.warn(f"RD curves do not overlap (anchor spans [{x1.min():.4g}, {x1.max():.4g}], test "
                      f"[{x2.min():.4g}, {x2.max():.4g}]); BD value is NaN", BDWarning, stacklevel=3)
        return math.nan
    f1 = _fit(x1, y1, method, "anchor curve", over)
    f2 = _fit(x2, y2, method, "test curve", over)
    with np.errstate(over="ignore", invalid="ignore"):
        delta = (f2(lo, hi) - f1(lo, hi)) / (hi - lo)
    if not math.isfinite(delta):
        warnings.warn(f"the {method} fit diverges over the overlap [{lo:.4g}, {hi:.4g}] (curves of nearly equal "
                      f"quality at different rates); BD value is NaN: use method='pchip'", BDWarning, stacklevel=3)
        return math.nan
    return delta


def bd_rate(rate_anchor, metric_anchor, rate_test, metric_test, method: str = DEFAULT_METHOD) -> float:
    """Bjøntegaard delta rate of the test curve against the anchor, in percent (VCEG-M33).

    Args:
        rate_anchor, metric_anchor: the anchor (baseline) RD points, e.g. bpp and VMAF.
        rate_test, metric_test: the test codec's RD points.
        method: "pchip" (JVET CTC, the default), "cubic" (VCEG-M33) or "akima".

    Returns:
        Mean bitrate change at equal quality, in percent (-10 means 10% fewer bits); NaN with
        a :class:`BDWarning` when the metric ranges do not overlap or the fit diverges.
    """
    r1, m1 = _curve(rate_anchor, metric_anchor, "anchor curve", method)
    r2, m2 = _curve(rate_test, metric_test, "test curve", method)
    delta = _bd_delta(m1, np.log(r1), m2, np.log(r2), method)
    if not math.isfinite(delta):
        return math.nan
    if delta > math.log(sys.float_info.max):
        warnings.warn(f"the {method} fit puts the test curve's rate more than 1e308 times the anchor's (a fit "
                      f"through nearly flat curves); BD-rate is NaN: use method='pchip'", BDWarning, stacklevel=2)
        return math.nan
    return math.expm1(delta) * 100.0


def bd_metric(rate_anchor, metric_anchor, rate_test, metric_test, method: str = DEFAULT_METHOD) -> float:
    """Bjøntegaard delta metric (BD-PSNR style): mean metric gain of the test curve at equal rate.

    Args:
        rate_anchor, metric_anchor: the anchor (baseline) RD points.
        rate_test, metric_test: the test codec's RD points.
        method: "pchip" (the default), "cubic" or "akima".

    Returns:
        Mean metric difference (test minus anchor) over the overlapping log-rate interval, in
        the metric's units; NaN with a :class:`BDWarning` when the rate ranges do not overlap.
    """
    r1, m1 = _curve(rate_anchor, metric_anchor, "anchor curve", method)
    r2, m2 = _curve(rate_test, metric_test, "test curve", method)
    return _bd_delta(np.log(r1), m1, np.log(r2), m2, method, over="log-rate")
