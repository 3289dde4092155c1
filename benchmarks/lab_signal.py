"""First signal of the lab recipe on Kodak: MSE against ``proxy:vmaf`` at three λ, plus the
pretrained-proxy failure of Sec. III-C on Kodim01.

    python benchmarks/lab_signal.py [--lambdas 0.0067 0.025 0.0932] [--images 24] [--threads N]

Trains (or reuses, or resumes) the runs under ``runs/lab/`` with the lab profile, the same run
folders that the notebooks use in the lab profile, so rerunning continues where it stopped.
Then evaluates them and JPEG on Kodak with the true metrics and writes
``reports/lab_signal/``: ``summary.json``, the per-image RD table and the
per-image BD-rates. BD-rates use PCHIP: three λ give three RD points per model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from proxiqa_lab.data import dataset_files, load_image
from proxiqa_lab.evaluation import bd_summary, bd_table, evaluate, save_rd
from proxiqa_lab.studies import settings_for
from proxiqa_lab.studies.adversarial import decoded_scores, pretrained_proxy, proxy_true_gap
from proxiqa_lab.studies.grid import grid_specs, learned_codec, train_grid
from proxiqa_lab.studies.rd import classical_codecs
from proxiqa_lab.training import load_run, make_config, train

METRICS = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")


def run_seconds(run: str) -> float:
    """Training time of a run, estimated from its log: the timed logged steps times ``log_every``."""
    found = load_run(run)
    return float(found.log["seconds"].sum() * found.config.log_every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0067, 0.025, 0.0932])
    parser.add_argument("--images", type=int, default=24, help="Kodak images evaluated (file order)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default="reports/lab_signal")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings_for("lab")

    t0 = time.perf_counter()
    specs = grid_specs(["mse", "proxy:vmaf"], args.lambdas, finetune=True)
    grid = train_grid(specs, profile="lab", train=settings.train_options(), finetune_steps=settings.finetune_steps)
    proxy_path, proxy_info = pretrained_proxy("lab", **settings.pretrain)
    mid = sorted(args.lambdas)[len(args.lambdas) // 2]
    # The failing recipe of Sec. III-C: the frozen pretrained proxy, fine-tuning the MSE model of the middle λ.
    mse_mid = grid[(grid["objective"] == "mse") & (grid["lmbda"] == mid)]
    config = make_config("lab", objective="pretrained-proxy:vmaf", lmbda=mid, alpha=0.5,
                         init_checkpoint=str(mse_mid["model"].iloc[0]), proxy_init=proxy_path,
                         steps=settings.finetune_steps, **settings.train_options())
    adversarial = train(config, out=Path(grid["run"].iloc[0]).parent / f"bls64-pretrained-proxy_vmaf-lmbda{mid:g}-alpha0.5-ft")
    train_seconds = time.perf_counter() - t0

    images = {p.stem: load_image(p) for p in dataset_files("kodak")[: args.images]}
    codecs = [learned_codec(grid, "mse", name="BLS MSE"), learned_codec(grid, "proxy:vmaf", name="BLS VMAF_p")]
    codecs += classical_codecs(["jpeg"], settings.classical_points)
    tables = []
    for codec in codecs:
        df = evaluate(codec, images, metrics=METRICS, progress=False)
        save_rd(df, out, codec.name.replace(" ", "_"), f"{codec.name}, lab profile, Kodak ({len(images)} images)")
        tables.append(df)
    rd = pd.concat(tables, ignore_index=True)
    rd.to_csv(out / "rd_per_image.csv", index=False)
    # Three λ give three RD points per model: PCHIP interpolates them (the cubic fit needs four).
    vs_mse = bd_table(rd[rd["codec"] != "jpeg"], baseline="BLS MSE", metrics=METRICS, method="pchip")
    vs_jpeg = bd_table(rd[rd["codec"] != "BLS VMAF_p"], baseline="jpeg", metrics=METRICS, method="pchip")
    vs_mse.to_csv(out / "bd_per_image_vs_mse.csv")
    vs_jpeg.to_csv(out / "bd_per_image_vs_jpeg.csv")
    summary_mse, summary_jpeg = bd_summary(vs_mse), bd_summary(vs_jpeg)

    kodim01 = load_image(dataset_files("kodak")[0])
    fooled = decoded_scores(adversarial.out, kodim01, "vmaf")
    honest_run = grid[(grid["objective"] == "proxy:vmaf") & (grid["lmbda"] == mid)]["run"].iloc[0]
    honest = decoded_scores(honest_run, kodim01, "vmaf")
    result = {
        "lambdas": args.lambdas,
        "kodak_images": len(images),
        "train_wall_seconds_this_invocation": round(train_seconds, 1),
        "run_train_seconds_estimated": {Path(r).name: round(run_seconds(r), 1) for r in list(grid["run"]) + [str(adversarial.out)]},
        "bd_vs_mse": json.loads(summary_mse.to_json(orient="records")),
        "bd_vs_jpeg": json.loads(summary_jpeg.to_json(orient="records")),
        "rd_mean": json.loads(rd.assign(point=rd["point"].astype(str)).groupby(["codec", "point"])[["bpp", *METRICS]]
                              .mean().reset_index().to_json(orient="records")),
        "pretrained_proxy": {"heldout": proxy_info.get("report", proxy_info),
                             "training_gap": proxy_true_gap(adversarial.log, "metric_true", "metric_proxy", last=10),
                             "kodim01": {k: fooled[k] for k in ("bpp", "true", "proxy", "proxy_std")}},
        "alternating_proxy_kodim01": {k: honest[k] for k in ("bpp", "true", "proxy", "proxy_std")},
        "alternating_training_gap": proxy_true_gap(load_run(honest_run).log, "metric_true", "metric_proxy", last=10),
        "command": "python " + " ".join(sys.argv),
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
