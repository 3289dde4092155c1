"""What the zoo's compact checkpoints cost: size, and rate and quality against the full-precision models.

For every shipped model whose training run is still in ``runs/<profile>/``, codes Kodak images with
the run's float32 ``model.pt`` and with the shipped compact one (float16 weights, xz), and reports
the file sizes and the mean and largest changes in bpp, PSNR_avg and VMAF. Results go to
``reports/benchmarks/zoo_fidelity.{json,md}``.

    python benchmarks/zoo_fidelity.py [--images 4] [--profile lab]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import numpy as np
import pandas as pd

from proxiqa_lab.codec import LearnedCodec
from proxiqa_lab.evaluation import evaluate
from proxiqa_lab.fileio import atomic_write_text
from proxiqa_lab.paths import reports_root, runs_root
from proxiqa_lab.studies import eval_images
from proxiqa_lab.zoo import load_registry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="Kodak images coded per model (default: 4)")
    parser.add_argument("--profile", default="lab")
    args = parser.parse_args()
    images, source = eval_images("kodak", args.images, fallback=False)
    rows = []
    for model in load_registry():
        full = runs_root() / model.profile / model.name / "model.pt"
        if model.profile != args.profile or model.architecture == "proxiqa" or not full.is_file():
            continue
        start = time.perf_counter()
        a = evaluate(LearnedCodec([full]), images, metrics=("psnr_avg", "vmaf"), progress=False)
        b = evaluate(LearnedCodec([model.path]), images, metrics=("psnr_avg", "vmaf"), progress=False)
        diff = {m: (b[m].to_numpy() - a[m].to_numpy()) for m in ("bpp", "psnr_avg", "vmaf")}
        rows.append({"model": model.name, "full_MB": full.stat().st_size / 1e6,
                     "compact_MB": model.path.stat().st_size / 1e6,
                     **{f"{m}_mean_abs": float(np.abs(d).mean()) for m, d in diff.items()},
                     **{f"{m}_max_abs": float(np.abs(d).max()) for m, d in diff.items()},
                     "seconds": round(time.perf_counter() - start, 1)})
        print(f"{model.name}: |Δbpp| {rows[-1]['bpp_mean_abs']:.5f}, |ΔPSNR| {rows[-1]['psnr_avg_mean_abs']:.4f} dB, "
              f"|ΔVMAF| {rows[-1]['vmaf_mean_abs']:.4f}", flush=True)
    if not rows:
        print("no shipped model has its training run in runs/; nothing to compare", file=sys.stderr)
        return 1
    table = pd.DataFrame(rows)
    out = reports_root() / "benchmarks"
    summary = {"command": "python " + shlex.join(sys.argv), "images": list(images), "source": source,
               "models": len(rows), "rows": rows,
               "total": {"full_MB": float(table["full_MB"].sum()), "compact_MB": float(table["compact_MB"].sum())},
               "worst": {c: float(table[c].max()) for c in table.columns if c.endswith("_max_abs")}}
    atomic_write_text(out / "zoo_fidelity.json", json.dumps(summary, indent=1) + "\n")
    md = [f"# Zoo fidelity: compact (float16, xz) against full-precision models\n\n`{summary['command']}`, "
          f"{len(images)} Kodak images ({', '.join(images)}), {len(rows)} models.\n\n"
          f"Sizes: {summary['total']['full_MB']:.1f} MB of float32 `model.pt` against "
          f"{summary['total']['compact_MB']:.1f} MB compact. Largest change over every model and image: "
          f"bpp {summary['worst']['bpp_max_abs']:.5f}, PSNR_avg {summary['worst']['psnr_avg_max_abs']:.4f} dB, "
          f"VMAF {summary['worst']['vmaf_max_abs']:.4f}.\n\n",
          "| model | MB float32 | MB compact | mean abs Δbpp | mean abs ΔPSNR_avg (dB) | mean abs ΔVMAF "
          "| max abs ΔVMAF |\n"
          "|---|---:|---:|---:|---:|---:|---:|\n",
          *(f"| {r['model']} | {r['full_MB']:.2f} | {r['compact_MB']:.2f} | {r['bpp_mean_abs']:.5f} | "
            f"{r['psnr_avg_mean_abs']:.4f} | {r['vmaf_mean_abs']:.4f} | {r['vmaf_max_abs']:.4f} |\n" for r in rows)]
    atomic_write_text(out / "zoo_fidelity.md", "".join(md))
    print(f"-> {out / 'zoo_fidelity.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
