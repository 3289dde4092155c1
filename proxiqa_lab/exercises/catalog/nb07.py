"""Exercises of notebook 07 (α / λ explorer): VMAF against VMAF-NEG as α rises, the rate α saves, another image."""

from proxiqa_lab.exercises.core import Exercise, register

NB = "07_alpha_lambda_explorer"


def _row(results: dict, alpha: float, lmbda: float) -> dict:
    return next(g for g in results["grid"] if abs(g["alpha"] - alpha) < 1e-9 and abs(g["lmbda"] - lmbda) < 1e-9)


def _middle(results: dict) -> float:
    lambdas = sorted(results["lambdas"])
    return lambdas[len(lambdas) // 2]


def neg_direction(results: dict) -> str:
    """Whether VMAF-NEG is higher at the largest α than at the smallest, at the middle λ."""
    lo, hi = min(results["alphas"]), max(results["alphas"])
    lm = _middle(results)
    return "up" if _row(results, hi, lm)["vmaf_neg"] > _row(results, lo, lm)["vmaf_neg"] else "down"


def rate_saved(results: dict) -> float:
    """bpp at the smallest α minus bpp at the largest α, at the largest λ."""
    lm = max(results["lambdas"])
    return _row(results, min(results["alphas"]), lm)["bpp"] - _row(results, max(results["alphas"]), lm)["bpp"]


def psnr_cost(results: dict) -> float:
    """PSNR_avg at the smallest α minus at the largest α, averaged over the λ of the grid (dB)."""
    lo, hi = min(results["alphas"]), max(results["alphas"])
    diffs = [_row(results, lo, lm)["psnr_avg"] - _row(results, hi, lm)["psnr_avg"] for lm in results["lambdas"]]
    return sum(diffs) / len(diffs)


register(
    Exercise(
        "07.1", NB, "VMAF-NEG as α rises", "predict", "seconds",
        expected=neg_direction, choices=("up", "down"),
        hint="on the second RD plane (VMAF-NEG), follow the middle λ from the smallest α's line to the largest α's, "
             "or compare the two vmaf_neg entries of the grid table",
    ),
    Exercise(
        "07.2", NB, "VMAF above VMAF-NEG for the selected model", "read", "seconds",
        expected=lambda r: r["selected"]["vmaf"] - r["selected"]["vmaf_neg"], tolerance=0.05,
        hint="the text panel of section 2's figure lists vmaf and vmaf_neg of the ringed model; subtract, in points "
             "of the 0-100 scale",
    ),
    Exercise(
        "07.3", NB, "Rate saved by the largest α", "read", "seconds",
        expected=rate_saved, tolerance=0.002,
        hint="at the largest λ, take the bpp of the smallest α minus the bpp of the largest α (grid table, in bits "
             "per pixel, three decimals)",
    ),
    Exercise(
        "07.4", NB, "What α costs in PSNR", "extend", "~1 min",
        expected=psnr_cost, tolerance=0.01,
        hint="for each λ, PSNR_avg at the smallest α minus PSNR_avg at the largest α, then the mean of those "
             "differences, in dB (positive when the larger α loses PSNR)",
    ),
    Exercise(
        "07.5", NB, "Another image", "change", "~1 min",
        good_answer=("sets IMAGE to another Kodak image (e.g. kodim23) and reruns sections 1 and 2: the shipped "
                     "models are reused, only the coding and scoring run",
                     "the ordering holds: a larger α lowers the rate and PSNR, raises VMAF, and VMAF-NEG gains "
                     "little or falls",
                     "the size of the effects changes with the content (textured images show the sharpening more)"),
    ),
    Exercise(
        "07.6", NB, "Which objective does the figure show?", "read", "seconds",
        good_answer=("the title and legend say direct:vmaf: VMAF's exact gradient, no proxy (in the course and "
                     "lab profiles; proxy:vmaf in smoke)",
                     "the lab proxy's gradient carries almost no VMAF information (notebook 03), so the proxy "
                     "would show α trading pixel loss for nothing",
                     "what rises with α is partly enhancement: VMAF climbs where VMAF-NEG does not, which the "
                     "proxy:vmaf rows of the α sweep table do not show at all"),
    ),
)
