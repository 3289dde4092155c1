"""``proxiqa-lab pretrain``: pretrain a proxy on a synthetic-distortion database (Sec. III-C)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DATASET_CHOICES = ("bsds500", "training", "samples")
PROFILE_CHOICES = ("smoke", "lab", "paper")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain a ProxIQA proxy on synthetic distortions (JPEG, JPEG 2000, blur, noise)",
        description="Build a Waterloo-style database of synthetically distorted patches labelled with the "
        "true metric, pretrain a ProxIQA network on it with the metric loss (eq. 11) and save it. Prints "
        "PLCC, SROCC and RMSE on pairs from held-out source images. A proxy pretrained this way and then "
        "frozen is what Sec. III-C of the paper shows a codec can fool.",
    )
    p.add_argument("--metric", default="vmaf", help="true metric to imitate (default: vmaf)")
    p.add_argument("--profile", choices=PROFILE_CHOICES, default="lab",
                   help="size preset for the options below (default: lab)")
    p.add_argument("--dataset", choices=DATASET_CHOICES, default=None,
                   help="source images: bsds500 (train+val), training (bsds500 train+val and unsplash_x4) "
                   "or samples (scikit-image photos, no download); default from the profile")
    p.add_argument("--root", default=None, help="data root (default: $PROXIQA_LAB_DATA or ./data)")
    p.add_argument("--patch-size", type=int, default=None, help="patch side, a multiple of 8")
    p.add_argument("--patches-per-image", type=int, default=None, help="reference patches per source image")
    p.add_argument("--levels", type=int, default=None, help="severity levels per distortion kind (default 5)")
    p.add_argument("--kinds", default=None, help="comma-separated distortion kinds (default: jpeg,jpeg2000,blur,noise)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the training pairs")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of source images held out (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice); 1 is fastest on a busy shared CPU")
    p.add_argument("--cache", default=None, help="an .npz path to reuse (or write) the distortion database")
    p.add_argument("--out", required=True, help="checkpoint to write, e.g. runs/proxy_vmaf.pt")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=handler)


def _sources(dataset: str, root: str | None):
    from proxiqa_lab.data import dataset_files, sample_images, training_files

    if dataset == "samples":
        return sample_images()
    if dataset == "training":
        return training_files(root)
    return dataset_files("bsds500", root, "train") + dataset_files("bsds500", root, "val")


def handler(args: argparse.Namespace) -> int:
    from proxiqa_lab.training.pretrain import (
        DEFAULT_LEVELS,
        KINDS,
        PRETRAIN_PROFILES,
        build_distortion_database,
        pretrain_proxy,
        save_pretrained_proxy,
    )

    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the path of the proxy checkpoint to write (e.g. {out / 'proxy.pt'})")
    if out.exists() and not args.force:
        raise ValueError(f"{out} exists; pass --force to overwrite it or choose another --out")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    preset = PRETRAIN_PROFILES[args.profile]
    dataset = args.dataset or preset["dataset"]
    kinds = tuple(k.strip() for k in args.kinds.split(",")) if args.kinds else KINDS
    start = time.perf_counter()
    database = build_distortion_database(
        _sources(dataset, args.root),
        args.metric,
        patch_size=args.patch_size or preset["patch_size"],
        patches_per_image=args.patches_per_image or preset["patches_per_image"],
        levels=args.levels or DEFAULT_LEVELS,
        kinds=kinds,
        seed=args.seed,
        cache=args.cache,
        progress=not args.json,
    )
    build_seconds = time.perf_counter() - start
    net, report = pretrain_proxy(
        database,
        epochs=args.epochs or preset["epochs"],
        batch_size=args.batch_size or preset["batch_size"],
        lr=args.lr,
        holdout=args.holdout,
        seed=args.seed,
        device=args.device,
        progress=not args.json,
    )
    database_info = {**database.info, "dataset": dataset, "pairs": len(database), "sources": len(database.source_names)}
    save_pretrained_proxy(out, net, report, database_info)
    if args.json:
        result = {"out": str(out), "database": database_info, "database_seconds": round(build_seconds, 3),
                  **report.to_dict()}
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"database: {len(database)} pairs from {len(database.source_names)} {dataset} images "
          f"({database.patch_size}x{database.patch_size}), {build_seconds:.1f} s")
    print(f"pretraining: {report.epochs} epochs on {report.n_train} pairs, {report.train_seconds:.1f} s")
    print(report.summary())
    for kind, r in report.per_kind.items():
        print(f"  {kind:>9}: PLCC {r['plcc']:.4f}  SROCC {r['srocc']:.4f}  RMSE {r['rmse']:.3f}  ({r['n']} pairs)")
    print(f"saved {out}")
    return 0
