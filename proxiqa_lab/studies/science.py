"""Lab-scale experiments on the recipe: arms of fine-tunes, their evaluation, and how they compare.

An :class:`Arm` is one setting of the recipe (objective, α, steps, proxy options) at one or more
λ. Every run of an arm is a fine-tune from the lab MSE model of its λ, in ``runs/<profile>/``
under the grid's naming (:class:`~proxiqa_lab.studies.grid.RunSpec`), so a notebook that asks
for the same model finds it. Arms are compared with the **equal-steps MSE control**: the same
MSE models fine-tuned for as many steps with MSE, which separates what the objective gives
from what the extra steps give.

* With three or more λ an arm has an RD curve, and is compared by per-image BD-rate.
* With one λ it has one point per image, compared by :func:`point_savings`, the rate saving
  at equal quality against the control's curve (the limit of a BD-rate whose overlap shrinks
  to the point), and by :func:`point_deltas`, the quality change at equal rate. That screens a
  recipe at a third of the cost; each is defined only where the point falls inside the control's
  range.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from proxiqa_lab.studies.grid import RunSpec, mse_bases, train_grid, train_side_by_side

#: The λ of the lab curves compared here: the training-steps study's three rate points.
CURVE_LAMBDAS = (0.0067, 0.025, 0.0932)
#: The λ a recipe is screened at.
SCREEN_LAMBDA = 0.025


@dataclass(frozen=True)
class Arm:
    """One setting of the recipe, fine-tuned from the MSE model of each of its λ.

    Attributes:
        name: how tables name the arm.
        objective: training objective (``"mse"`` for the equal-steps control).
        alpha: α of eq. (10).
        lambdas: its rate points.
        steps: fine-tune steps (``None``: the profile's, 1,500 in the lab).
        options: other ``TrainConfig`` fields, as (name, value) pairs.
    """

    name: str
    objective: str
    alpha: float = 0.5
    lambdas: tuple[float, ...] = (SCREEN_LAMBDA,)
    steps: int | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def specs(self) -> list[RunSpec]:
        options = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in self.options))
        return [RunSpec(self.objective, float(v), float(self.alpha), True, options, steps=self.steps)
                for v in self.lambdas]


def train_arms(arms: list[Arm], settings, jobs: int = 2, device: str = "cpu") -> pd.DataFrame:
    """Train (or reuse, or resume) every run of ``arms``, ``jobs`` runs side by side, one thread each.

    Args:
        arms: the arms.
        settings: the profile's :class:`~proxiqa_lab.studies.settings.StudySettings` (its anchor,
            MSE models and fine-tune length).
        jobs: worker processes.
        device: where to train.

    Returns:
        One row per (arm, run), with :func:`~proxiqa_lab.studies.grid.train_grid`'s columns and ``arm``.
    """
    lambdas = sorted({v for arm in arms for v in arm.lambdas})
    bases = mse_bases(lambdas, settings.anchor_lmbda)
    options = {"profile": settings.profile, "train": settings.train_options(),
               "finetune_steps": settings.finetune_steps, "device": device}
    specs = list(dict.fromkeys(s for arm in arms for s in arm.specs()))
    if jobs > 1:
        # the run(s) trained from scratch first; then the other MSE models side by side, each
        # after its own start; then every arm's run after the MSE model of its λ
        roots = [b for b in bases if b.base_lmbda is None]
        train_grid(roots, progress=False, **options)
        train_side_by_side([roots + [b] for b in bases if b.base_lmbda is not None], options, jobs)
        train_side_by_side([mse_bases([s.lmbda], settings.anchor_lmbda) + [s] for s in specs], options, jobs)
    else:
        train_grid(bases, progress=False, **options)
    table = train_grid(bases + specs, progress=False, **options).iloc[len(bases):].reset_index(drop=True)
    by_spec = {spec: row for spec, (_, row) in zip(specs, table.iterrows())}
    rows = [{**by_spec[s].to_dict(), "arm": arm.name} for arm in arms for s in arm.specs()]
    return pd.DataFrame(rows)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def evaluate_runs(grid: pd.DataFrame, images: dict, metrics, cache_dir: str | Path | None = None,
                  progress: bool = False, jobs: int = 1) -> pd.DataFrame:
    """Real bitstreams and true metrics of each run's model on ``images``; ``codec`` is the run folder's name.

    An evaluation is kept in ``cache_dir`` (one CSV per run) and reused while the model file, the
    images and the metrics are the same. With ``jobs`` > 1 and a ``cache_dir``, the runs not yet
    cached are evaluated in that many worker processes first.
    """
    from proxiqa_lab.codec import LearnedCodec
    from proxiqa_lab.evaluation import evaluate

    runs = list(dict.fromkeys(grid["run"]))
    if jobs > 1 and cache_dir is not None and len(runs) > 1:
        with ProcessPoolExecutor(min(jobs, len(runs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in [pool.submit(_evaluate_one, run, images, list(metrics), str(cache_dir)) for run in runs]:
                done.result()
    frames = []
    for run in runs:
        run = Path(run)
        model = run / "model.pt"
        key = hashlib.sha256(f"{_sha256(model)} {sorted(images)} {list(metrics)}".encode()).hexdigest()[:16]
        cached = Path(cache_dir) / f"{run.name}-{key}.csv" if cache_dir is not None else None
        if cached is not None and cached.is_file():
            frames.append(pd.read_csv(cached))
            continue
        df = evaluate(LearnedCodec([model], name=run.name), images, metrics=metrics, progress=progress)
        if cached is not None:
            from proxiqa_lab.fileio import atomic_write_text

            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cached, df.to_csv(index=False))
            df = pd.read_csv(cached)  # the same types as a cached table
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _evaluate_one(run: str, images: dict, metrics: list, cache_dir: str) -> None:
    """Worker of :func:`evaluate_runs`: one run into the cache, one torch thread."""
    import torch

    torch.set_num_threads(1)
    evaluate_runs(pd.DataFrame({"run": [run]}), images, metrics, cache_dir=cache_dir)


def curve(rd: pd.DataFrame, grid: pd.DataFrame, arm: str) -> pd.DataFrame:
    """The per-image RD table of one arm, its runs as the points of one codec named ``arm``."""
    runs = [Path(r).name for r in grid.loc[grid["arm"] == arm, "run"]]
    if not runs:
        raise ValueError(f"no runs of arm {arm!r}; arms: {sorted(set(grid['arm']))}")
    part = rd[rd["codec"].isin(runs)].copy()
    part["point"] = part["codec"]
    part["codec"] = arm
    return part


def point_savings(control: pd.DataFrame, test: pd.DataFrame, metrics) -> pd.DataFrame:
    """Per-image rate saving (%) of a one-point ``test`` at equal quality against a ``control`` curve.

    For each image and metric: the rate at which the control reaches the test's quality
    (PCHIP of log-rate over the metric, as the BD-rate fit), against the test's rate. NaN where
    the test's quality lies outside the control's range, or the control's metric is not increasing.

    Returns:
        Rows indexed by image, one column per metric (negative: the test needs fewer bits).
    """
    from scipy.interpolate import PchipInterpolator

    out = {}
    for image, t in test.groupby("image", sort=False):
        c = control[control["image"] == image].sort_values("bpp")
        row = {}
        for m in metrics:
            q, r = c[m].to_numpy(float), np.log(c["bpp"].to_numpy(float))
            value = float(t[m].iloc[0])
            if len(q) < 2 or np.any(np.diff(q) <= 0) or not (q[0] <= value <= q[-1]):
                row[m] = math.nan
                continue
            rate = float(np.exp(PchipInterpolator(q, r)(value)))
            row[m] = (float(t["bpp"].iloc[0]) / rate - 1) * 100
        out[image] = row
    return pd.DataFrame.from_dict(out, orient="index")[list(metrics)]


def point_deltas(control: pd.DataFrame, test: pd.DataFrame, metrics) -> pd.DataFrame:
    """Per-image quality change of a one-point ``test`` at equal rate against a ``control`` curve.

    For each image and metric: the test's quality minus the control's at the test's rate (PCHIP
    of the metric over log-rate, as the BD-metric fit). NaN where the test's rate lies outside
    the control's rates. The vertical counterpart of :func:`point_savings`, defined where a
    test point reaches beyond the control's quality range (as exact-VMAF fine-tunes do).

    Returns:
        Rows indexed by image, one column per metric (in the metric's units; positive is better).
    """
    from scipy.interpolate import PchipInterpolator

    out = {}
    for image, t in test.groupby("image", sort=False):
        c = control[control["image"] == image].sort_values("bpp")
        r = np.log(c["bpp"].to_numpy(float))
        rate = float(np.log(t["bpp"].iloc[0]))
        row = {}
        for m in metrics:
            inside = len(r) >= 2 and np.all(np.diff(r) > 0) and r[0] <= rate <= r[-1]
            row[m] = float(t[m].iloc[0]) - float(PchipInterpolator(r, c[m].to_numpy(float))(rate)) if inside else math.nan
        out[image] = row
    return pd.DataFrame.from_dict(out, orient="index")[list(metrics)]


def log_summary(run: str | Path, tail: float = 0.1) -> dict[str, float]:
    """What a run's ``log.csv`` says at its end: proxy and true metric over the last ``tail`` of the
    logged rows, their gap, and the mean gradient diagnostics over the last half of the run."""
    from proxiqa_lab.training import load_run

    log = load_run(run).log
    last = log.tail(max(1, int(round(len(log) * tail))))
    out = {"bpp": float(last["bpp"].mean()), "metric_true": float(last["metric_true"].mean()),
           "metric_proxy": float(last["metric_proxy"].mean())}
    out["gap"] = out["metric_proxy"] - out["metric_true"]
    out["max_abs_gap"] = float((last["metric_proxy"] - last["metric_true"]).abs().max())
    half = log[log["step"] > log["step"].max() / 2]
    for column in ("grad_cos_proxy", "grad_cos_mse", "grad_scale_proxy"):
        values = pd.to_numeric(half.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        out[column] = float(values.mean()) if len(values) else math.nan
    return out


#: Where ``benchmarks/lab_science.py`` writes its results (committed with the kit).
SUMMARY = ("reports", "lab_science", "summary.json")
#: Columns of the tables below, in the order the paper's tables use them.
TABLE_METRICS = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")


def load_summary(path: str | Path | None = None) -> dict:
    """The lab-science results (``reports/lab_science/summary.json``), as the committed report has them."""
    from proxiqa_lab.paths import project_root

    path = Path(path) if path is not None else project_root().joinpath(*SUMMARY)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `python benchmarks/lab_science.py` to measure it")
    import json

    return json.loads(path.read_text())


def _cell(stats: dict, digits: int = 1, min_n: int = 1) -> str:
    """``mean ± std`` of a summary cell; "out of range" when fewer than ``min_n`` images had a value."""
    if stats.get("n", 0) < min_n or not math.isfinite(stats["mean"]):
        return "out of range"
    std = stats["std"] if stats["std"] is not None and math.isfinite(stats["std"]) else 0.0
    return f"{stats['mean']:+.{digits}f} ± {std:.{digits}f}"


def screened_run(entry: dict) -> dict | None:
    """An arm's run at the screen's λ (:data:`SCREEN_LAMBDA`) in a summary entry, or ``None``."""
    return next((r for r in entry["runs"].values() if abs(r["lmbda"] - SCREEN_LAMBDA) < 1e-12), None)


def science_table(kind: str, arms=None, summary: dict | None = None) -> pd.DataFrame:
    """One table of the lab-science results, mean ± std over the Kodak images.

    Args:
        kind: ``"screen"`` (at λ = 0.025 against the equal-steps MSE control: rate saving at equal
            quality and quality change at equal rate, with the proxy-gradient diagnostics) or
            ``"curves"`` (PCHIP BD-rate against the control over the curve λ).
        arms: arm names to show, in order (default: every arm that has this kind of result).
        summary: :func:`load_summary`'s dict (default: the committed one).
    """
    summary = load_summary() if summary is None else summary
    key = {"screen": "point_saving_vs_control", "curves": "bd_vs_control"}.get(kind)
    if key is None:
        raise ValueError(f"kind must be 'screen' or 'curves', got {kind!r}")
    entries = summary["arms"]
    names = list(arms) if arms else [a for a in entries if key in entries[a]]
    missing = [a for a in names if a not in entries or key not in entries[a]]
    if missing:
        warnings.warn(f"the lab-science report has no {kind} result for arm(s) {missing}: shown as 'not measured'; "
                      f"`python benchmarks/lab_science.py` trains and reports them", stacklevel=2)
    rows = []
    for name in names:
        if name in missing:
            rows.append({"arm": name, "steps": "not measured"})
            continue
        entry = entries[name]
        cells = entry[key] if kind == "screen" else entry[key]["pchip"]
        row = {"arm": name, "steps": entry["steps"]}
        screened = screened_run(entry)
        if kind == "screen" and screened and "kodak_mean" in screened:
            row["bpp"] = screened["kodak_mean"]["bpp"]
        if kind == "curves":
            row.update({m: _cell(cells[m]) for m in TABLE_METRICS if m in cells})
        else:
            row.update({f"saving {m} (%)": _cell(cells[m], min_n=12) for m in ("ssim", "vmaf", "vmaf_neg") if m in cells})
            deltas = entry.get("point_delta_vs_control", {})
            row.update({f"Δ{m} at equal rate": _cell(deltas[m], 2, min_n=12) for m in ("psnr_avg", "vmaf", "vmaf_neg")
                        if m in deltas})
        if kind == "screen" and screened:
            log = screened["log"]
            row.update({"cos(∇M̂, ∇M)": log["grad_cos_proxy"], "cos(MSE dir., ∇M)": log["grad_cos_mse"],
                        "proxy − true": log["gap"]})
        row["train min"] = round(sum(r["train_seconds"] for r in entry["runs"].values()) / 60, 1)
        rows.append(row)
    if not rows:
        warnings.warn(f"the lab-science report has no {kind} result yet; `python benchmarks/lab_science.py` "
                      "trains and reports the arms", stacklevel=2)
        return pd.DataFrame(columns=["arm", "steps"]).set_index("arm")
    return pd.DataFrame(rows).set_index("arm").round(3)
