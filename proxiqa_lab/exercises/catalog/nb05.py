"""Exercises of notebook 05 (limitations, SSIM): reading Table IV, SSIM_p against SSIM + L_d, and the
crops of Fig. 10."""

import math

from proxiqa_lab.exercises.core import Exercise, register

NB = "05_limitations_ssim"

#: Table IV's columns and the answer words of 05.2
COLUMNS = {"SSIM (14)": "SSIM", "SSIM_p (10)(11)": "SSIM_p", "SSIM+L_d (13)": "SSIM+L_d"}


def _or_zero(x: float) -> float:
    """A BD-rate, or 0 where it is NaN (the questions ask for 0 then: tiny smoke models' curves may not overlap)."""
    return x if math.isfinite(x) else 0.0


def _cell(results: dict, row: str, column: str) -> float:
    """Table IV's entry (row ``"SSIM BD-rate"``, column ``"SSIM_p (10)(11)"``); None (not computable) is NaN."""
    value = next(r for r in results["table_iv"] if r["bd_rate"] == row).get(column)
    return math.nan if value is None else float(value)


def _best_ssim(results: dict) -> str:
    """The optimisation whose mean SSIM BD-rate is the most negative."""
    values = {word: _cell(results, "SSIM BD-rate", column) for column, word in COLUMNS.items()}
    finite = {w: v for w, v in values.items() if math.isfinite(v)}
    return min(finite, key=finite.get) if finite else "none"


def _ssim_p_against_ld(results: dict) -> float:
    """Mean over images of the SSIM BD-rate (%) of BLS SSIM_p against BLS SSIM+Ld (the anchor)."""
    import numpy as np

    from proxiqa_lab.evaluation import bd_rate

    points = results["rd_points"]
    values = []
    for image in results["images"]:
        curve = {codec: sorted((p["bpp"], p["ssim"]) for p in points if p["codec"] == codec and p["image"] == image)
                 for codec in ("BLS SSIM+Ld", "BLS SSIM_p")}
        (ra, ma), (rt, mt) = (zip(*curve["BLS SSIM+Ld"]), zip(*curve["BLS SSIM_p"]))
        try:
            values.append(bd_rate(ra, ma, rt, mt, method=results["bd_method"]))
        except ValueError:  # too few distinct points in a tiny profile
            values.append(math.nan)
    return float(np.nanmean(values)) if any(math.isfinite(v) for v in values) else 0.0


register(
    Exercise(
        "05.1", NB, "Read SSIM_p's SSIM saving off Table IV", "read", "seconds",
        expected=lambda r: _or_zero(_cell(r, "SSIM BD-rate", "SSIM_p (10)(11)")), tolerance=0.01,
        hint="Table IV's SSIM BD-rate row and the SSIM_p (10)(11) column; give it in % with its sign, two decimals "
             "as the table shows",
    ),
    Exercise(
        "05.2", NB, "Which optimisation reaches the best SSIM?", "predict", "seconds",
        expected=_best_ssim, choices=(*COLUMNS.values(), "none"),
        hint="the most negative entry of Table IV's SSIM BD-rate row wins (more negative: fewer bits for the same "
             "SSIM); answer with the column's short name, as the question lists them",
    ),
    Exercise(
        "05.3", NB, "What direct SSIM costs in PSNR", "read", "seconds",
        expected=lambda r: _or_zero(_cell(r, "PSNR BD-rate", "SSIM (14)")), tolerance=0.01, rel_tolerance=0.0005,
        hint="Table IV's PSNR BD-rate row, SSIM (14) column, in % with its sign; compare it with the paper's "
             "figure quoted above the table",
    ),
    Exercise(
        "05.4", NB, "SSIM_p against SSIM + L_d", "extend", "seconds",
        expected=_ssim_p_against_ld, tolerance=0.01, rel_tolerance=0.001,
        hint="anchor BLS SSIM+Ld, test BLS SSIM_p, bpp as the rate and ssim as the metric, one BD-rate per "
             "evaluated image with method=BD_METHOD, then the mean over the images (leave out any NaN)",
    ),
    Exercise(
        "05.5", NB, "Colour at equal rate", "change", "~1 min",
        good_answer=("sets both CROP_BPPS to one rate (e.g. [0.3, 0.3]) and reruns sections 3 and 4; compares "
                     "crops whose captions give close rates",
                     "SSIM (14) keeps edges and texture but shifts or washes out colours; SSIM_p and SSIM + L_d "
                     "look alike (the paper's Fig. 10)",
                     "the SSIM of (14) compares local means, variances and covariances of each RGB channel and is "
                     "barely sensitive to a slow shift of mean intensity or hue, so nothing in (14) holds the "
                     "colours; the SSIM of the tables (libvmaf float_ssim) is on luma only and cannot see them",
                     "the pixel loss L_d (MSE) of (10) and (13) pins the pixel values, hence the colours, at the "
                     "cost of some SSIM: this is the gap of Table IV"),
    ),
)
