"""Lab-scale science: why the paper's VMAF gain is missing at laptop scale, and what brings it back.

    python benchmarks/lab_science.py [--only ARM ...] [--jobs 2] [--images 24] [--no-train]

Every arm below fine-tunes the lab MSE model of its λ (runs/lab/, shared with the notebooks) and
is compared with the equal-steps MSE control: the same MSE models fine-tuned for as many steps
with MSE. Arms with the three curve λ get per-image BD-rates against the control (PCHIP and the
paper's cubic fit); one-λ arms (the screen, at λ = 0.025) get the per-image rate saving at equal
quality against the control's curve (``studies.science.point_savings``). Every proxy arm logs
the cosine between its proxy's gradient and the exact VMAF gradient (``diagnose_every``).

Writes ``reports/lab_science/``: ``summary.json`` (every number below, each run's training time),
``screen.md``, ``curves.md``, ``rd_per_image.csv``, and per-image tables. Training resumes where it
stopped; evaluations are cached in ``runs/lab/eval_cache``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from proxiqa_lab.data import dataset_files, load_image
from proxiqa_lab.evaluation import bd_summary, bd_table
from proxiqa_lab.paths import runs_root
from proxiqa_lab.studies import settings_for
from proxiqa_lab.studies.grid import mse_bases, train_grid
from proxiqa_lab.studies.science import (CURVE_LAMBDAS, Arm, curve, evaluate_runs, log_summary, point_deltas,
                                         point_savings, train_arms)

METRICS = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")
LABELS = {"psnr_avg": "PSNR_avg", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "vmaf": "VMAF", "vmaf_neg": "VMAF-NEG"}
DIAG = (("diagnose_every", 50),)
CONTROL = "MSE, equal steps"
#: The screen's columns: rate savings at equal quality, and quality changes at equal rate.
SCREEN_SAVINGS = ("ssim", "vmaf", "vmaf_neg")
SCREEN_DELTAS = ("psnr_avg", "ms_ssim", "vmaf", "vmaf_neg")

#: The arms, in training order (most telling first): the headline curves, the fooled proxy
#: (``FOOLING``, trained after them), Table IV, the α sweep, what the released code does, the
#: longer schedule, the proxy's learning rate and steps, and recipes that could teach the proxy
#: the metric's slope. One-λ arms are screened at λ = 0.025.
SLOPE_PROBES = ("proxy_probes", ["source", "contrast", "sharpen", "noise", "grad"])
SLOPE = DIAG + (SLOPE_PROBES, ("proxy_slope_weight", 10.0), ("proxy_warmup", 300))
ARMS = [
    Arm(CONTROL, "mse", lambdas=(0.0009, 0.0018, *CURVE_LAMBDAS)),  # low rates too, for the screen's low-rate points
    Arm("VMAF_p α=0.5 (kit)", "proxy:vmaf", 0.5, CURVE_LAMBDAS, options=DIAG),
    Arm("VMAF_direct α=0.5", "direct:vmaf", 0.5, CURVE_LAMBDAS),
    # Table IV, screened at λ = 0.025: SSIM_p against SSIM + L_d (eq. 13)
    Arm("SSIM_p α=0.5 (kit)", "proxy:ssim", 0.5, options=DIAG),
    Arm("SSIM+L_d α=0.5", "ssim+ld", 0.5),
    # the α sweep, screened at λ = 0.025
    Arm("VMAF_direct α=0.95", "direct:vmaf", 0.95),
    Arm("VMAF_p α=0.95", "proxy:vmaf", 0.95, options=DIAG),
    Arm("VMAF_direct α=0.8", "direct:vmaf", 0.8),
    Arm("VMAF_p α=0.8", "proxy:vmaf", 0.8, options=DIAG),
    # what the released code does
    Arm("VMAF_p |100 − M̂|", "proxy:vmaf", options=DIAG + (("proxy_abs", True),)),
    Arm("VMAF_p pristine pair", "proxy:vmaf", options=DIAG + (("proxy_pristine", 0.5),)),
    # twice as long
    Arm("MSE, 3000 steps", "mse", lambdas=CURVE_LAMBDAS, steps=3000),
    Arm("VMAF_p α=0.5, 3000 steps", "proxy:vmaf", steps=3000, options=DIAG),
    Arm("VMAF_direct α=0.5, 3000 steps", "direct:vmaf", steps=3000),
    # the proxy's learning rate and steps
    Arm("VMAF_p proxy lr 1e-2", "proxy:vmaf", options=DIAG + (("proxy_lr", 1e-2),)),
    Arm("VMAF_p 4 proxy steps", "proxy:vmaf", options=DIAG + (("proxy_steps", 4),)),
    Arm("VMAF_p proxy lr 1e-4", "proxy:vmaf", options=DIAG + (("proxy_lr", 1e-4),)),
    # recipes that could teach the proxy the metric's slope
    Arm("VMAF_p slope recipe", "proxy:vmaf", options=SLOPE),
    Arm("VMAF_p slope recipe α=0.95", "proxy:vmaf", 0.95, options=SLOPE),
    Arm("SSIM_p slope recipe", "proxy:ssim", options=SLOPE),
    Arm("VMAF_p proxy warm-up", "proxy:vmaf", options=DIAG + (("proxy_warmup", 300),)),
    Arm("VMAF_p grad probes + warm-up", "proxy:vmaf",
        options=DIAG + (("proxy_probes", ["grad"]), ("proxy_warmup", 300))),
]
#: Names of the pretrained-proxy runs (notebook 02), trained with the arms; α = 1 is the kit's
#: schedule (``StudySettings.fooling_alpha``), α = 0.9 keeps a little pixel loss.
FOOLING = ["frozen α=1", "alternating α=1", "frozen α=0.9", "alternating α=0.9, proxy from the pretrained one"]


def fooling_arms(proxy_path: str) -> list[Arm]:
    """The pretrained-proxy runs at λ = 0.025 as arms, named as :func:`fooling_runs` trains them."""
    init = (("proxy_init", proxy_path),)
    return [Arm(FOOLING[0], "pretrained-proxy:vmaf", 1.0, options=init + DIAG),
            Arm(FOOLING[1], "proxy:vmaf", 1.0, options=DIAG),
            Arm(FOOLING[2], "pretrained-proxy:vmaf", 0.9, options=init),
            Arm(FOOLING[3], "proxy:vmaf", 0.9, options=init + DIAG)]


def training_order(arms: list[Arm], proxy_path: str, chosen: set[str]) -> list[Arm]:
    """The chosen arms in priority order: the headline curves, α = 1's fooling runs, the rest, α = 0.9's."""
    fooling = [a for a in fooling_arms(proxy_path) if a.name in chosen]
    rest = [a for a in arms if a.name in chosen]
    return rest[:3] + fooling[:2] + rest[3:] + fooling[2:]


def fooling_runs(settings, proxy_path: str) -> dict:
    """The trained runs of the pretrained-proxy experiment (notebook 02) at λ = 0.025, by name.

    The same runs as :func:`~proxiqa_lab.studies.fooling_specs` (α = 1, and the RD grid's α = 0.5),
    with α = 0.9 beside them; runs not trained yet are left out.
    """
    from proxiqa_lab.studies import fooling_specs

    specs = [s for s in fooling_specs(settings, "vmaf", 0.025, proxy_path) if s.objective != "mse"]
    by_name = dict(zip([FOOLING[0], FOOLING[1], "alternating α=0.5 (RD grid)"], specs))
    by_name.update({a.name: a.specs()[0] for a in fooling_arms(proxy_path)[2:]})
    runs = {name: runs_root() / "lab" / spec.name("bls", 64) for name, spec in by_name.items()}
    return {name: str(run) for name, run in runs.items() if (run / "model.pt").is_file()}


def _pretrain(options: dict) -> str:
    """Worker: the lab's pretrained VMAF proxy (Sec. III-C), one torch thread."""
    from proxiqa_lab.studies import pretrained_proxy

    torch.set_num_threads(1)
    return pretrained_proxy("lab", **options)[0]


def fooling_table(runs: dict, image) -> tuple[dict, str]:
    """Kodim01 decoded by each run, true VMAF vs the run's proxy; and the training gap over the last 10 %."""
    from proxiqa_lab.studies import decoded_scores, proxy_true_gap
    from proxiqa_lab.training import load_run

    out, lines = {}, ["| run | Kodim01 bpp | true VMAF | proxy | training: true | proxy | gap | mean abs gap | max abs gap |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        scores = decoded_scores(run, image, "vmaf")
        gap = proxy_true_gap(load_run(run).log, "metric_true", "metric_proxy", last=0.1)
        out[name] = {"run": Path(run).name, "kodim01": {k: scores[k] for k in ("bpp", "true", "proxy", "proxy_std")},
                     "last_10_percent": gap, "train_seconds": round(load_run(run).train_seconds, 1)}
        lines.append(f"| {name} | {scores['bpp']:.3f} | {scores['true']:.2f} | {scores['proxy']:.2f} | "
                     f"{gap['true']:.2f} | {gap['proxy']:.2f} | {gap['gap']:+.2f} | {gap['mean_abs_gap']:.2f} | "
                     f"{gap['max_abs_gap']:.2f} |")
    return out, "\n".join(lines)


def save_gradient_figure(grid: pd.DataFrame, out: Path) -> None:
    """The proxy-gradient diagnostic of the proxy arms at λ = 0.025, against training steps."""
    from proxiqa_lab import figures
    from proxiqa_lab.training import load_run

    rows = grid[grid["objective"].str.startswith("proxy:vmaf") & (grid["lmbda"] == 0.025)]
    if rows.empty:
        return
    logs = pd.concat([load_run(r["run"]).log.assign(label=r["arm"], lmbda=r["lmbda"]) for _, r in rows.iterrows()],
                     ignore_index=True)
    fig = figures.gradient_alignment(logs)
    figures.save_figure(fig, out, "gradient_alignment")


def cell(values: pd.Series, digits: int = 1, min_n: int = 1) -> str:
    """``mean ± std`` of the defined values; "out of range" when fewer than ``min_n`` images have one."""
    values = values.dropna()
    if len(values) < min_n:
        return "out of range" if min_n > 1 else "n/a"
    return f"{values.mean():+.{digits}f} ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else f"{values.mean():+.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="train only these arms (names as in ARMS); the report covers "
                                                  "every arm whose runs are complete")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained side by side")
    parser.add_argument("--images", type=int, default=24, help="Kodak images evaluated (file order)")
    parser.add_argument("--no-train", action="store_true", help="report on the runs already complete")
    parser.add_argument("--out", default="reports/lab_science")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings_for("lab")
    names = [a.name for a in ARMS] + FOOLING
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown arm(s) {unknown}; arms: {names}")
    chosen = set(args.only or names) | {CONTROL}
    if not args.no_train:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pretrain = pool.submit(_pretrain, settings.pretrain)  # beside the MSE model trained from scratch
            roots = [b for b in mse_bases(ARMS[0].lambdas, settings.anchor_lmbda) if b.base_lmbda is None]
            train_grid(roots, "lab", train=settings.train_options(), finetune_steps=settings.finetune_steps,
                       device="cpu", progress=False)
            proxy_path = pretrain.result()
        train_arms(training_order(ARMS, proxy_path, chosen), settings, jobs=args.jobs)
        print(f"trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    proxy_path = _pretrain(settings.pretrain) if args.no_train else proxy_path
    complete = [a for a in ARMS + fooling_arms(proxy_path)
                if all((runs_root() / "lab" / s.name("bls", 64) / "model.pt").is_file() for s in a.specs())]
    grid = train_arms(complete, settings, jobs=1)  # every run is complete: this only collects them

    fooling, fooling_md = fooling_table(fooling_runs(settings, proxy_path), load_image(dataset_files("kodak")[0]))
    (out / "fooled_proxy.md").write_text(
        "# The pretrained proxy, frozen or alternating (Sec. III-C), λ = 0.025, fine-tuned from the MSE model\n\n"
        "Kodim01 decoded by each run's final codec, scored by libvmaf and by the run's own proxy (mean over "
        "128² tiles); and the batch means of true and proxy VMAF over the last 10 % of the logged training "
        "steps (gap: proxy − true; abs gaps: of each logged step).\n\n" + fooling_md + "\n")
    complete = [a for a in complete if a.name not in FOOLING]
    grid = grid[~grid["arm"].isin(FOOLING)]

    images = {p.stem: load_image(p) for p in dataset_files("kodak")[: args.images]}
    rd = evaluate_runs(grid, images, METRICS, cache_dir=runs_root() / "lab" / "eval_cache", jobs=args.jobs)
    rd.to_csv(out / "rd_per_image.csv", index=False)
    control_rd = curve(rd, grid, CONTROL)
    result = {"command": "python " + " ".join(sys.argv), "kodak_images": len(images), "arms": {},
              "fooled_proxy": fooling}
    screen_lines = ["| arm | bpp | rate saving: " + " | ".join(LABELS[m] for m in SCREEN_SAVINGS)
                    + " | at equal rate: Δ" + " | Δ".join(LABELS[m] for m in SCREEN_DELTAS)
                    + " | cos(∇M̂, ∇M) | cos(MSE dir., ∇M) | ‖∇M̂‖/‖∇M‖ | proxy − true | train min |",
                    "|---|---:|" + "---:|" * (len(SCREEN_SAVINGS) + len(SCREEN_DELTAS) + 5)]
    curve_lines = ["| arm | fit | " + " | ".join(LABELS[m] for m in METRICS) + " |",
                   "|---|---|" + "---:|" * len(METRICS)]
    per_image = []
    for arm in complete:
        rows = grid[grid["arm"] == arm.name]
        entry = {"objective": arm.objective, "alpha": arm.alpha, "steps": int(rows["steps"].iloc[0]),
                 "options": {k: v for k, v in arm.options}, "runs": {}}
        for _, row in rows.iterrows():
            logs = log_summary(row["run"])
            run_rd = rd[rd["codec"] == Path(row["run"]).name]
            entry["runs"][Path(row["run"]).name] = {
                "lmbda": row["lmbda"], "train_seconds": round(float(row["train_seconds"]), 1),
                "kodak_mean": {k: float(run_rd[k].mean()) for k in ("bpp", *METRICS)}, "log": logs}
        if arm.name != CONTROL:
            if len(arm.lambdas) >= 3:
                test = curve(rd, grid, arm.name)
                both = pd.concat([control_rd, test], ignore_index=True)
                entry["bd_vs_control"] = {}
                for method in ("pchip", "cubic"):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        table = bd_table(both, baseline=CONTROL, metrics=METRICS, method=method)
                    per_image.append(table.assign(fit=method))
                    entry["bd_vs_control"][method] = {m: {"mean": table[m].mean(), "std": table[m].std(ddof=1),
                                                          "n": int(table[m].notna().sum())} for m in METRICS}
                    curve_lines.append(f"| {arm.name} | {method} | " + " | ".join(cell(table[m]) for m in METRICS) + " |")
            for _, row in rows.iterrows():
                if row["lmbda"] != 0.025:
                    continue
                test = rd[rd["codec"] == Path(row["run"]).name]
                ctrl = control_rd if arm.steps is None else curve(rd, grid, "MSE, 3000 steps")
                saving, delta = point_savings(ctrl, test, METRICS), point_deltas(ctrl, test, METRICS)
                stats = lambda t: {m: {"mean": t[m].mean(), "std": t[m].std(ddof=1),  # noqa: E731
                                       "n": int(t[m].notna().sum())} for m in METRICS}
                entry["point_saving_vs_control"], entry["point_delta_vs_control"] = stats(saving), stats(delta)
                logs = entry["runs"][Path(row["run"]).name]["log"]
                diag = [f"{logs[k]:+.3f}" if math.isfinite(logs[k]) else "–"
                        for k in ("grad_cos_proxy", "grad_cos_mse", "grad_scale_proxy", "gap")]
                screen_lines.append(f"| {arm.name} | {test['bpp'].mean():.3f} | "
                                    + " | ".join(cell(saving[m], min_n=12) for m in SCREEN_SAVINGS) + " | "
                                    + " | ".join(cell(delta[m], 2, min_n=12) for m in SCREEN_DELTAS) + " | "
                                    + " | ".join(diag) + f" | {row['train_seconds'] / 60:.1f} |")
        result["arms"][arm.name] = entry
    if per_image:
        pd.concat(per_image).to_csv(out / "bd_per_image_vs_control.csv")
    save_gradient_figure(grid, out)
    head = (f"Kodak, {len(images)} images, lab profile (BLS N=64), fine-tunes from the MSE model of each λ. "
            f"Mean ± std over images; negative is better. Command: `{result['command']}`.\n\n")
    (out / "screen.md").write_text(
        "# Screen at λ = 0.025 against the equal-steps MSE control\n\n" + head
        + "Rate saving at equal quality (%), where the point's quality lies inside the control's range for at "
        "least half of the images (else 'out of range'), and quality change at equal rate (dB for PSNR, points "
        "for MS-SSIM ×1, VMAF and VMAF-NEG; positive is better), where its rate does. The gradient columns compare "
        "the proxy's gradient ∇M̂ and the MSE descent direction x − x̂ with the exact gradient ∇M of the arm's "
        "metric (VMAF, or SSIM for the SSIM_p arms), over the second half of the run.\n\n"
        + "\n".join(screen_lines) + "\n")
    (out / "curves.md").write_text("# BD-rate vs the equal-steps MSE control (%), λ = "
                                   + ", ".join(f"{v:g}" for v in CURVE_LAMBDAS) + "\n\n" + head
                                   + "\n".join(curve_lines) + "\n")
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=float))
    print((out / "screen.md").read_text())
    print((out / "curves.md").read_text())


if __name__ == "__main__":
    main()
