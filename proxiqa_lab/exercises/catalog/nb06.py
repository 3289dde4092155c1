"""Exercises of notebook 06 (training steps): reading Fig. 11, the learning-rate drop, the baseline's step."""

import math
import re

from proxiqa_lab.exercises.core import Exercise, register

NB = "06_training_steps"


def _curve(results: dict, fixed: bool) -> dict[int, float]:
    """``{step: mean BD-rate}`` of the fixed-baseline curve (``fixed``) or of the same-step one."""
    return {int(r["step"]): r["bd_rate_mean"] for r in results["table"]
            if ("same step" not in r["curve"]) == fixed
            and r["bd_rate_mean"] is not None and math.isfinite(r["bd_rate_mean"])}


def baseline_step(results: dict) -> int:
    """The step of the fixed MSE baseline, as the solid curve's label names it (``... (MSE @ 1500)``)."""
    label = next(r["curve"] for r in results["table"] if "same step" not in r["curve"])
    return int(re.search(r"MSE @ (\d+)", label).group(1))


def drop_direction(results: dict) -> str:
    """Whether the fixed-baseline BD-rate is lower at the last kept step than at the last one before the drop."""
    curve = _curve(results, True)
    drop = results["lr_drop_step"]
    before = [s for s in curve if drop is None or s <= drop] or sorted(curve)[:1]
    return "down" if curve[max(curve)] < curve[max(before)] else "up"


def last_spread(results: dict) -> float:
    """Max minus min of the per-image BD-rates against the fixed baseline at the last kept step."""
    rows = [r for r in results["per_image"] if "same step" not in r["curve"]
            and r["bd_rate"] is not None and math.isfinite(r["bd_rate"])]
    step = max(int(r["step"]) for r in rows)
    vals = [r["bd_rate"] for r in rows if int(r["step"]) == step]
    return max(vals) - min(vals)


register(
    Exercise(
        "06.1", NB, "Read the last point of the solid line", "read", "seconds",
        expected=lambda r: _curve(r, True)[max(_curve(r, True))], tolerance=0.1,
        hint="take the row of section 2's table whose curve is the fixed baseline (not 'same step') at the largest "
             "step that has a value, column bd_rate_mean; a BD-rate is in %, negative means the proxy saves rate",
    ),
    Exercise(
        "06.2", NB, "Where does the BD-rate go after the learning-rate drop?", "predict", "seconds",
        expected=drop_direction, choices=("down", "up"),
        hint="compare the solid line at the last kept step before lr_drop_step (the vertical line) with its "
             "value at the last kept step; lower is better for the proxy",
    ),
    Exercise(
        "06.3", NB, "Where do the two curves meet?", "read", "seconds",
        expected=baseline_step, tolerance=0,
        hint="the two curves differ only in which MSE model they are measured against; find the step where that "
             "model is the same for both (the legend says it), and give it as a whole number of steps",
    ),
    Exercise(
        "06.4", NB, "How much do the images disagree?", "extend", "~1 min",
        expected=last_spread, tolerance=0.1,
        hint="filter per_image to the fixed-baseline curve, leave out NaN, keep the largest step left, then take max minus min of "
             "bd_rate (in percentage points)",
    ),
    Exercise(
        "06.5", NB, "Move the fixed baseline", "change", "~1 min",
        good_answer=("sets BASELINE_STEP to the first kept step and reruns sections 1 and 2 (the runs are reused)",
                     "the solid line now meets the dotted one at that first step, not at the last",
                     "against a weaker (earlier) MSE model the proxy looks better at later steps: the gain of the "
                     "solid line partly measures how much the proxy run trained longer than its baseline, which is "
                     "why Fig. 11 also draws the baseline trained as long (dotted)"),
    ),
    Exercise(
        "06.6", NB, "Do twice the steps let the proxy pull ahead?", "read", "seconds",
        good_answer=("reads the lab_science table: 3,000 steps save about 7 % of rate for MSE (−7.3 %) and for "
                     "proxy:vmaf (−7.0 %) alike",
                     "so the proxy does not pull ahead of MSE trained as long: its gain is the extra training, "
                     "not the proxy",
                     "the proxy's gradient is nearly orthogonal to VMAF's (cosine 0.009), while direct:vmaf gains "
                     "about 25 % VMAF-NEG in 1,500 steps"),
    ),
)
