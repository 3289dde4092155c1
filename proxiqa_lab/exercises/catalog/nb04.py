"""Exercises of notebook 04 (rate-distortion): reading Tables I and II, VMAF against VMAF-NEG, the
equal-steps control, a BD-rate by hand, and the BD fit."""

import math

from proxiqa_lab.exercises.core import Exercise, register

NB = "04_rate_distortion"

#: the learned models of 04.2, in the order the question lists them
VMAF_MODELS = ("BLS VMAF_p", "BLS VMAF_direct", "BMSHJ VMAF_p")


def _row(results: dict, codec: str, part: str = "datasets", dataset: str = "kodak") -> dict:
    """The Table II row (mean and std per metric) of ``codec`` on ``dataset``."""
    return next(row for row in results[part][dataset]["bd_summary"] if row["codec"] == codec)


def _value(x) -> float:
    """A recorded BD-rate as a float (a BD-rate that could not be computed is recorded as None: NaN)."""
    return math.nan if x is None else float(x)


def _or_zero(x: float) -> float:
    """A BD-rate, or 0 where it is NaN (the questions ask for 0 then: tiny smoke models' curves may not overlap)."""
    return x if math.isfinite(x) else 0.0


def _neg_gap(results: dict) -> float:
    """VMAF-NEG minus VMAF mean BD-rate (points) of the model that answers 04.2."""
    model = _most_saving(results)
    if model == "none":
        return 0.0
    row = _row(results, model)
    return _or_zero(_value(row["vmaf_neg_mean"]) - _value(row["vmaf_mean"]))


def _most_saving(results: dict) -> str:
    """The model of :data:`VMAF_MODELS` with the most negative mean VMAF BD-rate on Kodak."""
    present = {row["codec"]: _value(row["vmaf_mean"]) for row in results["datasets"]["kodak"]["bd_summary"]}
    finite = {c: present[c] for c in VMAF_MODELS if c in present and math.isfinite(present[c])}
    return min(finite, key=finite.get) if finite else "none"


def _equal_steps(results: dict) -> str:
    """Whether BLS VMAF_p still saves VMAF rate against the equal-steps MSE control on Kodak."""
    if "kodak" not in results.get("equal_steps", {}):
        return "no control"
    return "yes" if _value(_row(results, "BLS VMAF_p", "equal_steps")["vmaf_mean"]) < 0 else "no"


def _by_hand(results: dict) -> float:
    """Table I's VMAF BD-rate of BLS VMAF_p on the image of Fig. 8."""
    image = results["fig8_image"]
    return _or_zero(next(_value(row["vmaf"]) for row in results["datasets"]["kodak"]["bd_per_image"]
                         if row["codec"] == "BLS VMAF_p" and row["image"] == image))


register(
    Exercise(
        "04.1", NB, "Read VMAF_p's saving off Table II", "read", "seconds",
        expected=lambda r: _or_zero(_value(_row(r, "BLS VMAF_p")["vmaf_mean"])), tolerance=0.01,
        hint="Table II's Kodak block, the BLS VMAF_p row, the vmaf column: give the mean (the number before ±), "
             "in % with its sign",
    ),
    Exercise(
        "04.2", NB, "Which learned model saves most VMAF rate?", "predict", "seconds",
        expected=_most_saving, choices=(*VMAF_MODELS, "none"),
        hint="the most negative mean in Table II's vmaf column on Kodak wins; all three are measured against the "
             "same BLS MSE baseline",
    ),
    Exercise(
        "04.3", NB, "VMAF against VMAF-NEG", "read", "seconds",
        expected=_neg_gap, tolerance=0.02,
        hint="take the row of the model that answers 04.2 in Table II on Kodak and subtract its vmaf mean from its "
             "vmaf_neg mean (VMAF-NEG minus VMAF); the result is in percentage points and keeps its sign",
    ),
    Exercise(
        "04.4", NB, "Against MSE trained as long", "read", "seconds",
        expected=_equal_steps, choices=("yes", "no", "no control"),
        hint="read the table of 'Against MSE trained as long' (not Table II): the Kodak block, the BLS VMAF_p row, "
             "the vmaf column; a saving is a negative BD-rate",
    ),
    Exercise(
        "04.5", NB, "A BD-rate by hand", "extend", "seconds",
        expected=_by_hand, tolerance=0.01, rel_tolerance=0.001,
        hint="take the BLS MSE points as the anchor and the BLS VMAF_p points as the test, both on the Fig. 8 image "
             "only, bpp as the rate and vmaf as the metric, and pass method=BD_METHOD to bd_rate",
    ),
    Exercise(
        "04.6", NB, "PCHIP against the cubic fit", "change", "~2 min",
        good_answer=("sets BD_METHOD = \"cubic\" (the paper's VCEG-M33 fit) and reruns the notebook (the classical "
                     "codecs' points come back from the RD cache)",
                     "most BD-rates move by a few points, and the ranking of the objectives stays; the largest "
                     "changes are where the curves saturate (VMAF near 100 at high rates) or barely overlap",
                     "one cubic through all four points can bend outside the data, while PCHIP is piecewise and "
                     "keeps the monotone shape of the points; a cubic that diverges gives NaN",
                     "the cubic needs at least 4 distinct points per curve, PCHIP 3",
                     "the paper's Tables I and II used the cubic fit, so compare the kit with the paper with the "
                     "same fit"),
    ),
)
