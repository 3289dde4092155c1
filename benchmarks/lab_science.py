"""Lab-scale science: why the paper's VMAF gain is missing at laptop scale, and what brings it back.

    python benchmarks/lab_science.py [--only ARM ...] [--jobs 2] [--images 24] [--no-train] [--fresh]

Every arm below fine-tunes the lab MSE model of its λ (runs/lab/, shared with the notebooks) and
is compared with the equal-steps MSE control: the same MSE models fine-tuned for as many steps
with MSE. Arms with the three curve λ get per-image BD-rates against the control (PCHIP and the
paper's cubic fit); one-λ arms (the screen, at λ = 0.025) get the per-image rate saving at equal
quality against the control's curve (``studies.science.point_savings``). Every proxy arm logs
the cosine between its proxy's gradient and the exact VMAF gradient (``diagnose_every``).

Writes ``reports/lab_science/``: ``summary.json`` (every number below, each run's training time),
``screen.md``, ``curves.md``, ``fooled_proxy.md``, ``rd_per_image.csv``, per-image tables and the
gradient diagnostic (``gradient_log.csv``, ``gradient_alignment.png``). Training resumes where it
stopped; evaluations are cached in ``runs/lab/eval_cache``. Arms of the previous report whose runs
are gone (a fresh checkout) are kept, marked †, unless ``--fresh``; the retrained control is
compared with the one they were measured against (``control_vs_previous``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shlex
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from proxiqa_lab.data import dataset_files, load_image
from proxiqa_lab.evaluation import bd_table
from proxiqa_lab.paths import runs_root
from proxiqa_lab.studies import pretrained_proxy_path, settings_for
from proxiqa_lab.studies.grid import mse_bases, train_grid
from proxiqa_lab.studies.science import (CURVE_LAMBDAS, SCREEN_LAMBDA, Arm, curve, evaluate_runs, log_summary,
                                         point_deltas, point_savings, screened_run, train_arms)

METRICS = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")
LABELS = {"psnr_avg": "PSNR_avg", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "vmaf": "VMAF", "vmaf_neg": "VMAF-NEG"}
DIAG = (("diagnose_every", 50),)
CONTROL = "MSE, equal steps"
#: Marks the arms a report keeps from the previous one (see :func:`carry_over`).
CARRIED_MARK = "†"
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
    # twice as long (screened against the 1,500-step control like the rest: the MSE arm says what
    # the extra steps alone give)
    Arm("MSE, 3000 steps", "mse", steps=3000),
    Arm("VMAF_p α=0.5, 3000 steps", "proxy:vmaf", steps=3000, options=DIAG),
    # what the released code does
    Arm("VMAF_p |100 − M̂|", "proxy:vmaf", options=DIAG + (("proxy_abs", True),)),
    Arm("VMAF_p pristine pair", "proxy:vmaf", options=DIAG + (("proxy_pristine", 0.5),)),
    # the proxy's learning rate and steps
    Arm("VMAF_p proxy lr 1e-2", "proxy:vmaf", options=DIAG + (("proxy_lr", 1e-2),)),
    Arm("VMAF_p 4 proxy steps", "proxy:vmaf", options=DIAG + (("proxy_steps", 4),)),
    Arm("VMAF_p proxy lr 1e-4", "proxy:vmaf", options=DIAG + (("proxy_lr", 1e-4),)),
    Arm("VMAF_direct α=0.5, 3000 steps", "direct:vmaf", steps=3000),
    # recipes that could teach the proxy the metric's slope
    Arm("VMAF_p slope recipe", "proxy:vmaf", options=SLOPE),
    Arm("VMAF_p slope recipe α=0.95", "proxy:vmaf", 0.95, options=SLOPE),
    Arm("SSIM_p slope recipe", "proxy:ssim", options=SLOPE),
    Arm("VMAF_p proxy warm-up", "proxy:vmaf", options=DIAG + (("proxy_warmup", 300),)),
    Arm("VMAF_p grad probes + warm-up", "proxy:vmaf",
        options=DIAG + (("proxy_probes", ["grad"]), ("proxy_warmup", 300))),
]
#: The proxy arms whose gradient diagnostic ``gradient_alignment.png`` plots (when measured).
FIGURE_ARMS = ["VMAF_p α=0.5 (kit)", "VMAF_p α=0.8", "VMAF_p α=0.95", "VMAF_p pristine pair", "VMAF_p proxy lr 1e-2",
               "VMAF_p α=0.5, 3000 steps", "VMAF_p 4 proxy steps", "VMAF_p slope recipe"]
#: Names of the pretrained-proxy runs (notebook 02), trained with the arms; α = 1 is the kit's
#: schedule (``StudySettings.fooling_alpha``), α = 0.9 keeps a little pixel loss.
FOOLING = ["frozen α=1", "alternating α=1", "frozen α=0.9", "alternating α=0.9, proxy from the pretrained one"]

#: The RD grid's α = 0.5 run, shown beside them (notebook 02's Fig. 7c).
FOOLING_RD_GRID = "alternating α=0.5 (RD grid)"


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

    specs = [s for s in fooling_specs(settings, "vmaf", SCREEN_LAMBDA, proxy_path) if s.objective != "mse"]
    by_name = dict(zip([FOOLING[0], FOOLING[1], FOOLING_RD_GRID], specs))
    by_name.update({a.name: a.specs()[0] for a in fooling_arms(proxy_path)[2:]})
    runs = {name: runs_root() / "lab" / spec.name("bls", 64) for name, spec in by_name.items()}
    return {name: str(run) for name, run in runs.items() if (run / "model.pt").is_file()}


def _pretrain(options: dict) -> str:
    """Worker: the lab's pretrained VMAF proxy (Sec. III-C), one torch thread."""
    from proxiqa_lab.studies import pretrained_proxy

    torch.set_num_threads(1)
    return pretrained_proxy("lab", **options)[0]


def fooling_table(runs: dict, image) -> dict:
    """Kodim01 decoded by each run, true VMAF vs the run's proxy; and the training gap over the last 10 %."""
    from proxiqa_lab.studies import decoded_scores, proxy_true_gap
    from proxiqa_lab.training import load_run

    out = {}
    for name, run in runs.items():
        scores = decoded_scores(run, image, "vmaf")
        gap = proxy_true_gap(load_run(run).log, "metric_true", "metric_proxy", last=0.1)
        out[name] = {"run": Path(run).name, "kodim01": {k: scores[k] for k in ("bpp", "true", "proxy", "proxy_std")},
                     "last_10_percent": gap, "train_seconds": round(load_run(run).train_seconds, 1)}
    return out


def fooling_markdown(fooling: dict) -> str:
    lines = ["| run | Kodim01 bpp | true VMAF | proxy | training: true | proxy | gap | mean abs gap | max abs gap |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, entry in fooling.items():
        k, g = entry["kodim01"], entry["last_10_percent"]
        lines.append(f"| {md(name)}{CARRIED_MARK if entry.get('carried') else ''} | {k['bpp']:.3f} | {k['true']:.2f} | "
                     f"{k['proxy']:.2f} | {g['true']:.2f} | {g['proxy']:.2f} | {g['gap']:+.2f} | "
                     f"{g['mean_abs_gap']:.2f} | {g['max_abs_gap']:.2f} |")
    return "\n".join(lines)


def gradient_log(grid: pd.DataFrame) -> pd.DataFrame:
    """The gradient diagnostic rows of the proxy arms' runs at λ = 0.025 (``log.csv``), one per logged step."""
    from proxiqa_lab.training import load_run

    rows = grid[grid["objective"].str.startswith("proxy:") & (grid["lmbda"] == SCREEN_LAMBDA)]
    columns = ["label", "lmbda", "step", "grad_cos_proxy", "grad_cos_mse", "grad_scale_proxy"]
    logs = [load_run(r["run"]).log.assign(label=r["arm"], lmbda=r["lmbda"]) for _, r in rows.iterrows()]
    logs = [log.dropna(subset=["grad_cos_proxy"])[columns] for log in logs if "grad_cos_proxy" in log]
    return pd.concat(logs, ignore_index=True) if logs else pd.DataFrame(columns=columns)


def save_gradient_figure(logs: pd.DataFrame, out: Path) -> None:
    """The proxy-gradient diagnostic of the VMAF proxy arms in ``FIGURE_ARMS``, against training steps."""
    from proxiqa_lab import figures

    logs = logs[logs["label"].isin(FIGURE_ARMS)]
    if logs.empty:
        return
    order = {name: i for i, name in enumerate(FIGURE_ARMS)}
    logs = logs.sort_values(["label", "step"], key=lambda c: c.map(order) if c.name == "label" else c, kind="stable")
    figures.save_figure(figures.gradient_alignment(logs), out, "gradient_alignment")


def md(name: str) -> str:
    """An arm's name as a Markdown table cell (``|`` escaped: ``VMAF_p |100 − M̂|``)."""
    return name.replace("|", "\\|")


def cell(stats: dict | None, digits: int = 1, min_n: int = 1) -> str:
    """``mean ± std`` of a ``{"mean", "std", "n"}`` cell; "out of range" when fewer than ``min_n`` images have one."""
    if not stats or stats["n"] < max(min_n, 1):
        return "out of range" if min_n > 1 else "n/a"
    mean = f"{stats['mean']:+.{digits}f}"
    return f"{mean} ± {stats['std']:.{digits}f}" if stats["n"] > 1 else mean


def stats(table: pd.DataFrame) -> dict:
    """Mean, std and count over images of each metric column."""
    return {m: {"mean": table[m].mean(), "std": table[m].std(ddof=1), "n": int(table[m].notna().sum())}
            for m in METRICS}


def arm_entry(arm: Arm, grid: pd.DataFrame, rd: pd.DataFrame, control_rd: pd.DataFrame) -> tuple[dict, list]:
    """One arm's summary: its runs (λ, training time, Kodak means, log), BD-rates against the control on
    three λ, and the λ = 0.025 point's rate saving and quality change; with the per-image BD tables."""
    rows = grid[grid["arm"] == arm.name]
    entry = {"objective": arm.objective, "alpha": arm.alpha, "steps": int(rows["steps"].iloc[0]),
             "options": {k: v for k, v in arm.options}, "runs": {}}
    for _, row in rows.iterrows():
        run_rd = rd[rd["codec"] == Path(row["run"]).name]
        entry["runs"][Path(row["run"]).name] = {
            "lmbda": row["lmbda"], "train_seconds": round(float(row["train_seconds"]), 1),
            "kodak_mean": {k: float(run_rd[k].mean()) for k in ("bpp", *METRICS)}, "log": log_summary(row["run"])}
    per_image = []
    if arm.name == CONTROL:
        return entry, per_image
    if len(arm.lambdas) >= 3:
        both = pd.concat([control_rd, curve(rd, grid, arm.name)], ignore_index=True)
        entry["bd_vs_control"] = {}
        for method in ("pchip", "cubic"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = bd_table(both, baseline=CONTROL, metrics=METRICS, method=method)
            per_image.append(table.assign(fit=method))
            entry["bd_vs_control"][method] = stats(table)
    for _, row in rows[rows["lmbda"] == SCREEN_LAMBDA].iterrows():
        test = rd[rd["codec"] == Path(row["run"]).name]
        entry["point_saving_vs_control"] = stats(point_savings(control_rd, test, METRICS))
        entry["point_delta_vs_control"] = stats(point_deltas(control_rd, test, METRICS))
    return entry, per_image


def screen_line(name: str, entry: dict) -> str | None:
    """The arm's λ = 0.025 row of ``screen.md`` (``None`` without one)."""
    run = screened_run(entry)
    if "point_saving_vs_control" not in entry or run is None:
        return None
    logs = run["log"]
    diag = [f"{logs[k]:+.3f}" if math.isfinite(logs[k]) else "–"
            for k in ("grad_cos_proxy", "grad_cos_mse", "grad_scale_proxy", "gap")]
    saving, delta = entry["point_saving_vs_control"], entry["point_delta_vs_control"]
    return (f"| {md(name)}{CARRIED_MARK if entry.get('carried') else ''} | {run['kodak_mean']['bpp']:.3f} | "
            + " | ".join(cell(saving[m], min_n=12) for m in SCREEN_SAVINGS) + " | "
            + " | ".join(cell(delta[m], 2, min_n=12) for m in SCREEN_DELTAS) + " | "
            + " | ".join(diag) + f" | {run['train_seconds'] / 60:.1f} |")


def curve_lines(name: str, entry: dict) -> list[str]:
    """The arm's rows of ``curves.md`` (one per fit)."""
    mark = CARRIED_MARK if entry.get("carried") else ""
    return [f"| {md(name)}{mark} | {method} | " + " | ".join(cell(table[m]) for m in METRICS) + " |"
            for method, table in entry.get("bd_vs_control", {}).items()]


def carry_over(result: dict, previous: dict) -> list[str]:
    """Keep the previous report's arms and fooling runs that this report did not measure again.

    Their runs are no longer in ``runs/lab`` (a fresh checkout), so they are kept as measured, marked
    ``carried``; the retrained control's Kodak means are compared with the previous control's
    (``control_vs_previous``: the largest absolute difference), which tells whether the carried
    comparisons still hold against it. Returns the names carried.
    """
    carried = []
    for key, known in (("arms", [a.name for a in ARMS]), ("fooled_proxy", FOOLING + [FOOLING_RD_GRID])):
        for name, entry in previous.get(key, {}).items():
            if name in known and name not in result[key]:
                result[key][name] = {**entry, "carried": True}
                carried.append(name)
    order = {name: i for i, name in enumerate([a.name for a in ARMS])}
    result["arms"] = dict(sorted(result["arms"].items(), key=lambda kv: order.get(kv[0], len(order))))
    previous_control = previous.get("arms", {}).get(CONTROL, {})
    if carried and not previous_control.get("carried"):
        old, new = previous_control.get("runs", {}), result["arms"].get(CONTROL, {}).get("runs", {})
        shared = set(old) & set(new)
        diffs = [abs(new[r]["kodak_mean"][m] - old[r]["kodak_mean"][m]) for r in shared for m in METRICS]
        result["control_vs_previous"] = {"runs": len(shared), "max_abs_diff": max(diffs, default=math.nan)}
    elif "control_vs_previous" in previous:
        result["control_vs_previous"] = previous["control_vs_previous"]
    return carried


def merge_csv(path: Path, fresh: pd.DataFrame, key: str) -> pd.DataFrame:
    """``fresh`` with the rows of the CSV at ``path`` whose ``key`` it lacks (the carried arms' rows)."""
    if path.is_file():
        old = pd.read_csv(path)
        fresh = pd.concat([fresh, old[~old[key].isin(fresh[key])]], ignore_index=True) if key in old else fresh
    return fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="train only these arms (names as in ARMS); the report covers "
                                                  "every arm whose runs are complete")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained side by side")
    parser.add_argument("--images", type=int, default=24, help="Kodak images evaluated (file order)")
    parser.add_argument("--no-train", action="store_true", help="report on the runs already complete")
    parser.add_argument("--fresh", action="store_true", help="report only the arms measured now (else the previous "
                                                             "report's other arms are kept, marked)")
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
    proxy_path = str(pretrained_proxy_path("lab", **settings.pretrain))
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
    complete = [a for a in ARMS + fooling_arms(proxy_path)
                if all((runs_root() / "lab" / s.name("bls", 64) / "model.pt").is_file() for s in a.specs())]
    if not any(a.name == CONTROL for a in complete):
        sys.exit("the equal-steps MSE control is not trained: run without --no-train first")
    grid = train_arms(complete, settings, jobs=1)  # every run is complete: this only collects them

    fooling = fooling_table(fooling_runs(settings, proxy_path), load_image(dataset_files("kodak")[0]))
    complete = [a for a in complete if a.name not in FOOLING]
    grid = grid[~grid["arm"].isin(FOOLING)]

    images = {p.stem: load_image(p) for p in dataset_files("kodak")[: args.images]}
    rd = evaluate_runs(grid, images, METRICS, cache_dir=runs_root() / "lab" / "eval_cache", jobs=args.jobs)
    control_rd = curve(rd, grid, CONTROL)
    result = {"command": "python " + shlex.join(sys.argv), "kodak_images": len(images), "arms": {},
              "fooled_proxy": fooling}
    per_image = []
    for arm in complete:
        result["arms"][arm.name], tables = arm_entry(arm, grid, rd, control_rd)
        per_image += tables
    per_image = pd.concat(per_image).reset_index() if per_image else pd.DataFrame(columns=["codec", "image"])
    logs = gradient_log(grid)
    carried = []
    if not args.fresh and (out / "summary.json").is_file():
        carried = carry_over(result, json.loads((out / "summary.json").read_text()))
        rd = merge_csv(out / "rd_per_image.csv", rd, "codec")
        per_image = merge_csv(out / "bd_per_image_vs_control.csv", per_image, "codec")
        logs = merge_csv(out / "gradient_log.csv", logs, "label")
    rd.to_csv(out / "rd_per_image.csv", index=False)
    per_image.to_csv(out / "bd_per_image_vs_control.csv", index=False)
    logs.to_csv(out / "gradient_log.csv", index=False)
    save_gradient_figure(logs, out)

    head = (f"Kodak, {len(images)} images, lab profile (BLS N=64), fine-tunes from the MSE model of each λ. "
            f"Mean ± std over images; negative is better. Command: `{result['command']}`.\n\n")
    if carried:
        check = result.get("control_vs_previous", {})
        head += (f"{CARRIED_MARK} measured by an earlier run of this script, whose run folders are not in `runs/lab` "
                 f"now; kept from the previous report. The control retrained since then differs from the one "
                 f"they were compared with by at most {check.get('max_abs_diff', math.nan):.2g} in any Kodak mean "
                 f"({check.get('runs', 0)} runs).\n\n")
    screen = [line for name, entry in result["arms"].items() if (line := screen_line(name, entry))]
    (out / "screen.md").write_text(
        "# Screen at λ = 0.025 against the equal-steps MSE control\n\n" + head
        + "Rate saving at equal quality (%), where the point's quality lies inside the control's range for at "
        "least half of the images (else 'out of range'), and quality change at equal rate (dB for PSNR, points "
        "for MS-SSIM ×1, VMAF and VMAF-NEG; positive is better), where its rate does. The 3,000-step arms are "
        "compared with the same 1,500-step control; `MSE, 3000 steps` shows what the extra steps alone give. "
        "The gradient columns compare the proxy's gradient ∇M̂ and the MSE descent direction x − x̂ with the "
        "exact gradient ∇M of the arm's metric (VMAF, or SSIM for the SSIM_p arms), over the second half of "
        "the run.\n\n"
        + "| arm | bpp | rate saving: " + " | ".join(LABELS[m] for m in SCREEN_SAVINGS)
        + " | at equal rate: Δ" + " | Δ".join(LABELS[m] for m in SCREEN_DELTAS)
        + " | cos(∇M̂, ∇M) | cos(MSE dir., ∇M) | ‖∇M̂‖/‖∇M‖ | proxy − true | train min |\n"
        + "|---|---:|" + "---:|" * (len(SCREEN_SAVINGS) + len(SCREEN_DELTAS) + 5) + "\n"
        + "\n".join(screen) + "\n")
    curves = [line for name, entry in result["arms"].items() for line in curve_lines(name, entry)]
    (out / "curves.md").write_text(
        "# BD-rate vs the equal-steps MSE control (%), λ = " + ", ".join(f"{v:g}" for v in CURVE_LAMBDAS) + "\n\n"
        + head + "The paper's cubic fit needs four rate points; with three it is n/a.\n\n"
        + "| arm | fit | " + " | ".join(LABELS[m] for m in METRICS) + " |\n"
        + "|---|---|" + "---:|" * len(METRICS) + "\n" + "\n".join(curves) + "\n")
    (out / "fooled_proxy.md").write_text(
        "# The pretrained proxy, frozen or alternating (Sec. III-C), λ = 0.025, fine-tuned from the MSE model\n\n"
        "Kodim01 decoded by each run's final codec, scored by libvmaf and by the run's own proxy (mean over "
        "128² tiles); and the batch means of true and proxy VMAF over the last 10 % of the logged training "
        "steps (gap: proxy − true; abs gaps: of each logged step)."
        + (f" {CARRIED_MARK} kept from the previous report." if any(e.get("carried") for e in fooling.values()) else "")
        + "\n\n" + fooling_markdown(result["fooled_proxy"]) + "\n")
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=float))
    print((out / "screen.md").read_text())
    print((out / "curves.md").read_text())


if __name__ == "__main__":
    main()
