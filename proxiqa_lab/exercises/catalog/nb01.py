"""Exercises of notebook 01 (architecture): sizes, the losses of eq. (10), one alternating update."""

from proxiqa_lab.exercises.core import Exercise, register

NB = "01_proxiqa_architecture"


def _term(results: dict, equation: str) -> float:
    return next(row["value"] for row in results["losses"] if row["equation"] == equation)


def _largest_part(results: dict) -> str:
    """Which of the three parts of eq. (10) is the largest on the recorded batch."""
    lmbda, alpha = results["settings"]["lmbda"], results["settings"]["alpha"]
    rate = _term(results, "(6)")
    pixel = lmbda * (1 - alpha) * 255 ** 2 * _term(results, "(7)")
    proxy = _term(results, "(10)") - rate - pixel
    parts = {"rate": rate, "pixel": pixel, "proxy": proxy}
    return max(parts, key=parts.get)


register(
    Exercise(
        "01.1", NB, "How much smaller is the proxy than the paper's codec?", "read", "seconds",
        expected=lambda r: r["parameters"]["bls_192"] / r["parameters"]["proxiqa_128"], rel_tolerance=0.01,
        hint="both parameter counts are in section 1's model summary (BLS at the paper's N = 192); divide the "
             "codec's count by the proxy's: the answer is a ratio, well above 1",
    ),
    Exercise(
        "01.2", NB, "Rebuild eq. (10) from its parts", "extend", "seconds",
        expected=lambda r: _term(r, "(10)"), rel_tolerance=0.002,
        hint="λ·[α·s·L_p + (1−α)·255²·L_d] + L_r with the notebook's LMBDA and ALPHA, s = 1 for VMAF, L_d on the "
             "[0,1] scale as the table gives it; do not forget the rate term outside the bracket",
    ),
    Exercise(
        "01.3", NB, "Which part of eq. (10) is the largest?", "predict", "seconds",
        expected=_largest_part, choices=("rate", "pixel", "proxy"),
        hint="split the total of eq. (10) into L_r, λ(1−α)·255²·L_d and what is left, the proxy part; an untrained "
             "proxy scores every pair near 0, so L_p = M̄ − M̂ is near M̄",
    ),
    Exercise(
        "01.4", NB, "Does one proxy step help?", "predict", "seconds",
        expected=lambda r: ("smaller" if r["mean_abs_error"]["M̂ after proxy step"]
                            < r["mean_abs_error"]["M̂ before proxy step"] else "larger"),
        choices=("smaller", "larger"),
        hint="compare the two entries of the mean |M̂ − M| table at the end of section 3 (the proxy step of "
             "eq. 11 is one Adam step on exactly that error)",
    ),
    Exercise(
        "01.5", NB, "The proxy of another metric", "change", "~1 min",
        good_answer=("sets METRIC = \"ssim\" (or \"ms_ssim\") and reruns from the top",
                     "the true scores M and the proxy's M̂ are now on a 0..1 scale, so L_p = M̄ − M̂ is near 1 and "
                     "the scale factor s of eq. (10) brings it to the pixel term's units",
                     "the proxy network itself (Fig. 4) does not change: same 6-channel input, same parameter count",
                     "the untrained proxy's scores still start near 0 and move towards the true ones after one step"),
    ),
)
