"""Table II's BMSHJ rows at equal training steps: BMSHJ VMAF_p against BMSHJ MSE fine-tuned as long.

    python benchmarks/bmshj_equal_steps.py [--images 24] [--jobs 2]

In the lab profile the BMSHJ ``proxy:vmaf`` models are fine-tuned for 1,500 steps from the BMSHJ
MSE models that Table II measures them against, so part of their gain is the extra training. This
trains (or reuses, or resumes) the equal-steps controls under ``runs/lab/``: each BMSHJ MSE model
fine-tuned with MSE for the same 1,500 steps (``StudySettings.bmshj_specs(controls=True)``; the
MSE and ``proxy:vmaf`` models are the zoo's). Then it evaluates the three BMSHJ curves and the BLS
MSE anchor on Kodak (real bitstreams, libvmaf) and writes ``reports/lab_science/bmshj_equal_steps``
``.json`` and ``.md``: BD-rates (PCHIP) of BMSHJ VMAF_p against both MSE curves, with the
controls' measured training time.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

from proxiqa_lab.evaluation import bd_summary, bd_table, evaluate
from proxiqa_lab.studies import eval_images, settings_for, summary_records, to_jsonable
from proxiqa_lab.studies.grid import learned_codec, train_chains
from proxiqa_lab.studies.rd import BMSHJ_CONTROL
from proxiqa_lab.training import load_run

METRICS = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")
CONTROL = BMSHJ_CONTROL


def markdown(rows: list[dict], anchor: str) -> str:
    head = "| codec | " + " | ".join(METRICS) + " |\n|---|" + "---:|" * len(METRICS) + "\n"
    body = "".join(f"| {r['codec']} | " + " | ".join(f"{r[f'{m}_mean']:+.2f} ± {r[f'{m}_std']:.2f}"
                                                      if r.get(f"{m}_mean") is not None else "n/a"
                                                      for m in METRICS) + " |\n"
                   for r in rows if r["codec"] != anchor)
    return head + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="Kodak images evaluated (file order)")
    parser.add_argument("--jobs", type=int, default=2, help="controls trained side by side")
    parser.add_argument("--out", default="reports/lab_science")
    args = parser.parse_args()
    lab = settings_for("lab")
    start = time.perf_counter()
    grid = train_chains(lab.bmshj_specs(("mse", "proxy:vmaf"), controls=True), "lab", jobs=args.jobs,
                        train=lab.train_options(), finetune_steps=lab.finetune_steps, device="cpu")
    train_wall = time.perf_counter() - start
    bls = train_chains(lab.specs(["mse"]), "lab", jobs=1, train=lab.train_options(),
                       finetune_steps=lab.finetune_steps, device="cpu")
    codecs = [learned_codec(bls, "mse", name="BLS MSE"),
              learned_codec(grid, "mse", finetune=False, name="BMSHJ MSE"),
              learned_codec(grid, "proxy:vmaf", name="BMSHJ VMAF_p"),
              learned_codec(grid, "mse", finetune=True, name=CONTROL)]
    images, source = eval_images("kodak", args.images)
    t0 = time.perf_counter()
    df = pd.concat([evaluate(c, images, metrics=METRICS, progress=False) for c in codecs], ignore_index=True)
    eval_s = time.perf_counter() - t0
    tables = {}
    for anchor in ("BLS MSE", "BMSHJ MSE", CONTROL):
        compared = df if anchor == "BLS MSE" else df[df["codec"] != "BLS MSE"]
        tables[anchor] = to_jsonable(summary_records(bd_summary(bd_table(compared, anchor, list(METRICS),
                                                                         method="pchip"))))
    controls = grid[grid["finetune"].astype(bool) & (grid["objective"] == "mse")]
    result = {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "images": sorted(images), "source": source, "bd_method": "pchip",
        "controls": [{"run": Path(r).name, "train_seconds": load_run(r).train_seconds,
                      "init_checkpoint": json.loads((Path(r) / "config.json").read_text())["init_checkpoint"]}
                     for r in controls["run"]],
        "runs": {row["label"] + f" λ={row['lmbda']:g}" + (" (control)" if row["finetune"] and row["objective"] == "mse"
                                                           else ""): {"run": Path(row["run"]).name,
                                                                      "status": row["status"]}
                 for _, row in grid.iterrows()},
        "train_wall_s": round(train_wall, 1), "eval_s": round(eval_s, 1),
        "mean_bpp": df.groupby("codec")["bpp"].mean().round(4).to_dict(),
        "bd": tables,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bmshj_equal_steps.json").write_text(json.dumps(result, indent=2) + "\n")
    df.to_csv(out / "bmshj_equal_steps_rd.csv", index=False)
    minutes = [round(c["train_seconds"] / 60, 1) for c in result["controls"]]
    lines = [
        "# BMSHJ VMAF_p against BMSHJ MSE trained as long", "",
        f"`{result['command']}`: {len(images)} Kodak images ({source}), real bitstreams, libvmaf; "
        f"BD-rate (%, PCHIP), mean ± std over images. The controls are the BMSHJ MSE models fine-tuned with "
        f"MSE for {lab.finetune_steps:,} steps, as many as the VMAF_p models were fine-tuned from them "
        f"(training time recorded per control: {minutes} min).", "",
        "## Against BMSHJ MSE (Table II's comparison: VMAF_p has 1,500 more steps)", "",
        markdown(tables["BMSHJ MSE"], "BMSHJ MSE"),
        f"## Against {CONTROL}", "",
        markdown(tables[CONTROL], CONTROL),
        "## Against BLS MSE (Table II's anchor)", "",
        markdown(tables["BLS MSE"], "BLS MSE"),
        "Mean bpp per codec: " + ", ".join(f"{k} {v}" for k, v in result["mean_bpp"].items()), "",
    ]
    (out / "bmshj_equal_steps.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
