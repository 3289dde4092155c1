"""First signal of the lab recipe on Kodak: MSE against ``proxy:vmaf`` across the lab's λ, MSE
against JPEG, and the pretrained-proxy failure of Sec. III-C on Kodim01.

    python benchmarks/lab_signal.py [--lambdas 0.0018 0.0067 0.025 0.0932 0.18] [--images 24] [--jobs 2]

Trains (or reuses, or resumes) the runs under ``runs/lab/`` with the lab profile, the same run
folders that the notebooks use in the lab profile, so rerunning continues where it stopped:
the anchor MSE model (λ=0.0932, from scratch), the MSE models of the other λ fine-tuned from
it, ``proxy:vmaf`` fine-tuned from the MSE model of each λ, the same MSE models fine-tuned as
long with MSE (the control with equal steps), and the frozen pretrained proxy's run at the
middle λ. Then evaluates them and JPEG on Kodak with the true metrics and writes
``reports/lab_signal/``: ``summary.json`` (with measured training seconds per run), the
per-image RD table and the per-image BD-rates (PCHIP).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from proxiqa_lab.data import dataset_files, load_image
from proxiqa_lab.evaluation import bd_summary, bd_table, evaluate, save_rd
from proxiqa_lab.studies import settings_for
from proxiqa_lab.studies.adversarial import decoded_scores, pretrained_proxy, proxy_true_gap
from proxiqa_lab.studies.grid import RunSpec, learned_codec, train_chains
from proxiqa_lab.studies.rd import classical_codecs
from proxiqa_lab.training import LAB_LAMBDAS, load_run

METRICS = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")


def records(table: pd.DataFrame) -> list[dict]:
    """A BD summary (codec rows, (metric, mean|std) columns) as JSON records keyed ``metric_mean``."""
    flat = table.copy()
    flat.columns = [f"{m}_{stat}" for m, stat in flat.columns]
    return json.loads(flat.reset_index().to_json(orient="records"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(LAB_LAMBDAS),
                        help="λ of the study (default: the lab profile's); must include the anchor λ")
    parser.add_argument("--images", type=int, default=24, help="Kodak images evaluated (file order)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--jobs", type=int, default=1, help="training chains (one per λ) run in parallel")
    parser.add_argument("--out", default="reports/lab_signal")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings_for("lab")
    mid = sorted(args.lambdas)[len(args.lambdas) // 2]

    t0 = time.perf_counter()
    proxy_path, proxy_info = pretrained_proxy("lab", **settings.pretrain)
    # MSE models, proxy:vmaf fine-tuned from them, the same MSE models fine-tuned as long with
    # MSE (the control: equal steps and lr schedule), and the failing recipe of Sec. III-C: the
    # frozen pretrained proxy, fine-tuning the MSE model of the middle λ.
    settings = settings.replace(lambdas=tuple(args.lambdas))
    specs = settings.specs(["mse", "proxy:vmaf"])
    specs += [RunSpec("mse", float(lmbda), finetune=True) for lmbda in args.lambdas]
    specs += [RunSpec("pretrained-proxy:vmaf", mid, finetune=True, overrides=(("proxy_init", str(proxy_path)),))]
    grid = train_chains(specs, "lab", args.jobs, train=settings.train_options(), finetune_steps=settings.finetune_steps,
                        device="auto")
    train_seconds = time.perf_counter() - t0
    adversarial = load_run(grid[grid["objective"] == "pretrained-proxy:vmaf"]["run"].iloc[0])
    base = grid[~grid["finetune"]]  # the MSE models: the anchor and those fine-tuned from it
    mse_ft = grid[grid["finetune"] & (grid["objective"] == "mse")]

    images = {p.stem: load_image(p) for p in dataset_files("kodak")[: args.images]}
    codecs = [learned_codec(base, "mse", name="BLS MSE"), learned_codec(mse_ft, "mse", name="BLS MSE+ft"),
              learned_codec(grid, "proxy:vmaf", name="BLS VMAF_p")]
    codecs += classical_codecs(["jpeg"], settings.classical_points)
    tables, eval_seconds = [], {}
    for codec in codecs:
        t = time.perf_counter()
        df = evaluate(codec, images, metrics=METRICS, progress=False)
        eval_seconds[codec.name] = round(time.perf_counter() - t, 1)
        save_rd(df, out, codec.name.replace(" ", "_"), f"{codec.name}, lab profile, Kodak ({len(images)} images)")
        tables.append(df)
    rd = pd.concat(tables, ignore_index=True)
    rd.to_csv(out / "rd_per_image.csv", index=False)
    # PCHIP: robust to the flat top of the narrow lab models' curves (the cubic fit needs four points).
    vs_mse = bd_table(rd[rd["codec"] != "jpeg"], baseline="BLS MSE", metrics=METRICS, method="pchip")
    vs_mse_ft = bd_table(rd[rd["codec"].isin(["BLS MSE+ft", "BLS VMAF_p"])], baseline="BLS MSE+ft",
                         metrics=METRICS, method="pchip")
    vs_jpeg = bd_table(rd, baseline="jpeg", metrics=METRICS, method="pchip")
    vs_mse.to_csv(out / "bd_per_image_vs_mse.csv")
    vs_mse_ft.to_csv(out / "bd_per_image_vs_mse_ft.csv")
    vs_jpeg.to_csv(out / "bd_per_image_vs_jpeg.csv")

    kodim01 = load_image(dataset_files("kodak")[0])
    fooled = decoded_scores(adversarial.out, kodim01, "vmaf")
    honest_run = grid[(grid["objective"] == "proxy:vmaf") & (grid["lmbda"] == mid)]["run"].iloc[0]
    honest = decoded_scores(honest_run, kodim01, "vmaf")
    result = {
        "lambdas": args.lambdas,
        "kodak_images": len(images),
        "train_wall_seconds_this_invocation": round(train_seconds, 1),
        "run_train_seconds": {Path(r).name: round(load_run(r).train_seconds, 1) for r in grid["run"]},
        "jobs": args.jobs,
        "evaluate_seconds": eval_seconds,
        "bd_vs_mse": records(bd_summary(vs_mse)),
        "bd_vs_mse_ft": records(bd_summary(vs_mse_ft)),
        "bd_vs_jpeg": records(bd_summary(vs_jpeg)),
        "rd_mean": json.loads(rd.assign(point=rd["point"].astype(str)).groupby(["codec", "point"])[["bpp", *METRICS]]
                              .mean().reset_index().to_json(orient="records")),
        "pretrained_proxy": {"heldout": proxy_info.get("report", proxy_info),
                             "training_gap": proxy_true_gap(adversarial.log, "metric_true", "metric_proxy", last=10),
                             "kodim01": {k: fooled[k] for k in ("bpp", "true", "proxy", "proxy_std")}},
        "alternating_proxy_kodim01": {k: honest[k] for k in ("bpp", "true", "proxy", "proxy_std")},
        "alternating_training_gap": proxy_true_gap(load_run(honest_run).log, "metric_true", "metric_proxy", last=10),
        "command": "python " + shlex.join(sys.argv),
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
