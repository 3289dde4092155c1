"""BD-rate against training steps (Sec. IV-E, Fig. 11), from checkpoints kept during training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from proxiqa_lab.evaluation.bdrate import DEFAULT_METHOD


def training_steps_study(
    grid: pd.DataFrame,
    steps: Sequence[int],
    images: Mapping[str, np.ndarray],
    objective: str = "proxy:vmaf",
    baseline_step: int | None = None,
    metric: str = "vmaf",
    progress: bool = False,
    method: str = DEFAULT_METHOD,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BD-rate of ``objective`` after each kept step, against two MSE baselines (Fig. 11).

    * ``"<objective> (MSE @ baseline_step)"``, the solid lines of Fig. 11: the same MSE model
      (trained ``baseline_step`` steps) is the anchor at every step;
    * ``"<objective> (MSE @ same step)"``, the dotted line: the MSE model trained with the
      same procedure for the same number of steps is the anchor.

    Args:
        grid: from :func:`proxiqa_lab.studies.train_grid`, with ``mse`` and ``objective`` runs
            trained with ``keep_checkpoints_at`` covering ``steps``. When the ``objective``
            runs are fine-tunes, the MSE runs compared are the MSE fine-tunes of the grid (see
            :meth:`~proxiqa_lab.studies.StudySettings.steps_plan`), not the models they start from.
        steps: the kept steps to evaluate.
        images: ``{name: uint8 (H, W, 3)}``.
        objective: the perceptually optimised objective.
        baseline_step: step of the fixed MSE anchor (default: the middle one of ``steps``; the
            paper anchored at MSE after 1M of its 2.1M steps).
        metric: the BD-rate metric (the paper's Fig. 11 uses VMAF).
        progress: tqdm bars.
        method: BD fit (see :func:`proxiqa_lab.evaluation.bd_rate`).

    Returns:
        ``(table, per_image)``: ``table`` has one row per (curve, step) with ``bd_rate_mean``,
        ``bd_rate_std`` (over images) and ``n_images``; ``per_image`` the underlying BD-rates.
    """
    import warnings

    from proxiqa_lab.evaluation import BDWarning, bd_rate, evaluate
    from proxiqa_lab.evaluation.bdrate import check_method
    from proxiqa_lab.studies.grid import learned_codec

    check_method(method)
    if "finetune" in grid:
        tuned = grid.loc[grid["objective"] == objective, "finetune"].astype(bool)
        if tuned.any():
            grid = grid[grid["finetune"].astype(bool)]
    steps = sorted(int(s) for s in steps)
    baseline_step = steps[len(steps) // 2] if baseline_step is None else int(baseline_step)
    if baseline_step not in steps:
        steps = sorted({*steps, baseline_step})
    curves: dict[tuple[str, int], pd.DataFrame] = {}
    for step in steps:
        for obj in ("mse", objective):
            codec = learned_codec(grid, obj, step=step)
            curves[(obj, step)] = evaluate(codec, images, metrics=(metric,), progress=progress)
    rows = []
    for step in steps:
        test = curves[(objective, step)]
        for curve, anchor in ((f"{objective} (MSE @ {baseline_step})", curves[("mse", baseline_step)]),
                              (f"{objective} (MSE @ same step)", curves[("mse", step)])):
            for image in images:
                a, t = anchor[anchor["image"] == image], test[test["image"] == image]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", BDWarning)
                    try:
                        value = bd_rate(a["bpp"], a[metric], t["bpp"], t[metric], method)
                    except ValueError:  # too few distinct points: reported as NaN
                        value = float("nan")
                rows.append({"curve": curve, "step": step, "image": image, "bd_rate": value})
    per_image = pd.DataFrame(rows)
    table = (per_image.groupby(["curve", "step"], sort=False)["bd_rate"]
             .agg(bd_rate_mean="mean", bd_rate_std="std", n_images="count").reset_index())
    return table, per_image
