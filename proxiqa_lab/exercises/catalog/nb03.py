"""Exercises of notebook 03 (alternating training): the final values, the proxy's fit and its gradient."""

from proxiqa_lab.exercises.core import Exercise, register

NB = "03_alternating_training"
LMBDA = 0.025


def _final(results: dict, label: str, lmbda: float = LMBDA) -> dict:
    return next(row for row in results["final"] if row["label"] == label and abs(row["lmbda"] - lmbda) < 1e-9)


def _cosine(results: dict, lmbda: float = LMBDA) -> dict:
    return next(row for row in results["gradient_cosine"]
                if row["label"] == "BLS VMAF_p" and abs(row["lmbda"] - lmbda) < 1e-9)


register(
    Exercise(
        "03.1", NB, "Rate of the proxy run against MSE's", "read", "seconds",
        expected=lambda r: 100 * (1 - _final(r, "BLS VMAF_p")["bpp"] / _final(r, "BLS MSE")["bpp"]), tolerance=0.5,
        hint="the Results table of last logged values has a bpp for BLS MSE and for BLS VMAF_p at every λ; give "
             "(1 − VMAF_p's bpp / MSE's bpp) in percent, e.g. 12.3 (negative if the proxy run spends more)",
    ),
    Exercise(
        "03.2", NB, "How close does the proxy end?", "read", "seconds",
        expected=lambda r: _final(r, "BLS VMAF_p")["metric_proxy"] - _final(r, "BLS VMAF_p")["metric_true"],
        tolerance=0.1,
        hint="in the same table, subtract the true metric (metric_true) from the proxy's (metric_proxy) of the "
             "BLS VMAF_p run; VMAF points, one decimal, negative when the proxy under-rates",
    ),
    Exercise(
        "03.3", NB, "Whose gradient points where VMAF rises?", "predict", "seconds",
        expected=lambda r: "proxy" if _cosine(r)["grad_cos_proxy"] > _cosine(r)["grad_cos_mse"] else "mse",
        choices=("proxy", "mse"),
        hint="section 4 plots both cosines with the exact ∂VMAF/∂x̂, solid for the proxy and dashed for the MSE "
             "direction; the table under the Results gives their means over the second half of each run",
    ),
    Exercise(
        "03.4", NB, "Read the proxy's cosine", "read", "seconds",
        expected=lambda r: _cosine(r)["grad_cos_proxy"], tolerance=0.002,
        hint="the mean cosines table of the Results cell: the grad_cos_proxy column of the BLS VMAF_p row; a cosine "
             "is between -1 and 1, give it to 3 decimals",
    ),
    Exercise(
        "03.5", NB, "Tracking is not steering", "read", "seconds",
        good_answer=("the proxy's score follows the true VMAF of the patches closely (Fig. 7b per λ): it predicts "
                     "the level of the score",
                     "the codec uses only the proxy's gradient ∂M̂/∂x̂, and its cosine with the exact gradient is "
                     "near 0 while the MSE direction's is clearly positive",
                     "fitted only to the codec's latest outputs, the proxy never sees how the score changes when x̂ "
                     "moves, so nothing makes it learn the slope",
                     "so at α = 0.5 the proxy term acts almost as a constant: the codec sees half of λ on its pixel "
                     "term and moves to a lower rate, not to a better VMAF"),
    ),
    Exercise(
        "03.6", NB, "Train the grid yourself, in small", "change", "~2 min",
        good_answer=("sets PROFILE = \"smoke\" (tiny models trained from scratch for 12 steps) and reruns",
                     "the runs now train here (status trained, not shipped) and land in runs/smoke/; a rerun reuses "
                     "them (seconds ≈ 0)",
                     "the curves are short and the models bad; the proxy's and true scores have not converged, so "
                     "smoke only shows that the pipeline works",
                     "the checks of this notebook's exercises still apply: they follow the run's own results"),
    ),
)
