"""Encode and decode time of the lab's learned codecs on every device here (Table V's learned rows).

    python benchmarks/learned_runtime.py [--runs runs/lab] [--root DIR] [--images 24] [--repeats 3]

Times the lab profile's MSE and ``proxy:vmaf`` models (one per λ, from the run folders that
notebook 03 trains) and an untrained BLS at the paper's width (N=192), on the CPU and, when
torch sees one, on CUDA, with :func:`proxiqa_lab.studies.runtime_study` (warm-up on each image,
median of the repeats, model loading excluded), after one discarded round over all codecs. It
is notebook 08's learned-codec part without the notebook stack, for a GPU server. Writes
reports/benchmarks/learned_runtime_<devices>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

from proxiqa_lab import studies
from proxiqa_lab.codec import LearnedCodec
from proxiqa_lab.paths import reports_root, runs_root
from proxiqa_lab.training import make_config


def lab_checkpoints(runs: Path, objective: str) -> list[Path]:
    """model.pt of the lab grid's runs of ``objective``, in λ order (an error names the missing ones)."""
    lab, cfg = studies.settings_for("lab"), make_config("lab")
    specs = [s for s in lab.specs([objective]) if s.objective == objective]
    paths = [runs / s.name(cfg.architecture, cfg.N) / "model.pt" for s in specs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"missing lab models (run notebook 03 in the lab profile first): {missing}")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=None, help="lab run folders (default: runs/lab)")
    parser.add_argument("--root", help="data root (default: $PROXIQA_LAB_DATA or ./data)")
    parser.add_argument("--images", type=int, default=None, help="first N Kodak images (default: the lab's)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default: the lab's)")
    args = parser.parse_args()
    lab = studies.settings_for("lab")
    runs = args.runs or runs_root() / "lab"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    codecs = [(LearnedCodec(lab_checkpoints(runs, o), name=label, device=d), d)
              for o, label in (("mse", "BLS MSE"), ("proxy:vmaf", "BLS VMAF_p")) for d in devices]
    codecs += [(studies.paper_width_codec("lab", device=d), d) for d in devices]
    images, source = studies.eval_images("kodak", args.images or lab.runtime_images, args.root)
    repeats = args.repeats or lab.runtime_repeats
    first = dict([next(iter(images.items()))])
    studies.runtime_study(codecs, first, 1)  # a discarded round: thread pools, kernels and clocks warm up
    times = studies.runtime_study(codecs, images, repeats)
    table = studies.runtime_table(times)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                          "cpu_threads": torch.get_num_threads(),
                          "gpu": torch.cuda.get_device_name() if "cuda" in devices else None},
              "images": list(images), "source": source, "repeats": repeats,
              "table_v": table.round(3).to_dict(orient="records")}
    out = reports_root() / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    stem = "learned_runtime_" + "_".join(devices)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    gpu = f", GPU {result['machine']['gpu']}" if result["machine"]["gpu"] else ""
    lines = [
        "# Learned codecs: encode and decode time (Table V layout)", "",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs "
        f"({result['machine']['cpu_threads']} torch threads){gpu}, torch {result['machine']['torch']}. "
        f"Command: `{' '.join(['python benchmarks/learned_runtime.py', *sys.argv[1:]])}`. {len(images)} {source} images, every rate point, "
        f"median of {repeats} timed runs after a warm-up (and one discarded round of all codecs first); "
        "model loading excluded.", "",
        "| codec | device | encode (ms) | decode (ms) | mean bpp |", "|---|---|---:|---:|---:|",
        *(f"| {r.codec} | {r.device} | {r.encode_ms:.1f} | {r.decode_ms:.1f} | {r.mean_bpp:.3f} |"
          for r in table.itertuples()),
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
