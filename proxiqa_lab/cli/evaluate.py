"""``proxiqa-lab evaluate``: a small end-to-end RD evaluation of codecs on a dataset.

Writes, under ``--out``: ``<codec>.csv`` / ``<codec>.json`` (per image / CompressAI schema),
``bd_per_image.csv`` (the paper's Table I layout), ``bd_summary.csv`` and ``bd_summary.md``
(Table II: mean ± std over images) against ``--baseline``, and ``rd_<metric>.png/.svg`` (Fig. 8
style, mean over images).
"""

from __future__ import annotations

import argparse
import time

DATASET_CHOICES = ("kodak", "wikipedia24", "bsds500", "unsplash_x4", "samples")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="RD evaluation of codecs on a dataset, with BD-rate tables and RD plots",
        description="Encode every image at 8 rates in 0.05-2 bpp with each codec, score it with the "
        "reference metrics, and write RD files, BD-rate tables against a baseline codec, and RD plots.",
    )
    p.add_argument("--codec", action="append", default=[], metavar="NAME",
                   help="classical codec (repeatable): jpeg, jpeg2000, hevc444, hevc420, av1, vvc, webp, jxl")
    p.add_argument("--learned", action="append", default=[], metavar="NAME=CKPT[,CKPT...]",
                   help="a learned codec from checkpoints, one per rate point (repeatable)")
    p.add_argument("--zoo", action="append", default=[], metavar="OBJECTIVE",
                   help="a learned codec from the shipped lab models of this objective, one point per λ (repeatable): "
                        "mse, proxy:vmaf, direct:vmaf, proxy:ssim, proxy:ms_ssim; bmshj/mse and bmshj/proxy:vmaf for "
                        "the scale hyperprior")
    p.add_argument("--dataset", default="kodak", metavar="NAME|DIR",
                   help=f"images to use: a dataset ({', '.join(DATASET_CHOICES)}; 'samples' are scikit-image photos "
                        f"needing no download), or a folder of your own PNG or JPEG files (default: kodak)")
    p.add_argument("--root", default=None, help="data root (default: $PROXIQA_LAB_DATA or ./data)")
    p.add_argument("--images", type=int, default=None, metavar="N", help="use only the first N images")
    p.add_argument("--metrics", nargs="+", default=None, metavar="METRIC",
                   help="psnr_avg ssim ms_ssim vif vmaf vmaf_neg (default: all)")
    p.add_argument("--points", nargs="+", type=float, default=None, metavar="BPP",
                   help="target rates in bpp for classical codecs (default: 8 log-spaced in 0.05-2)")
    p.add_argument("--baseline", default=None, help="codec name BD-rates are measured against (default: the first)")
    p.add_argument("--method", default="pchip", choices=("cubic", "pchip", "akima"),  # bdrate.DEFAULT_METHOD
                   help="BD curve fit: pchip (default), cubic (VCEG-M33, the paper's) or akima")
    p.add_argument("--out", required=True, help="results folder (created; files of the same names are replaced)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="reuse and keep classical codecs' RD points in DIR (e.g. runs/rd_cache); "
                        "keyed by codec settings, encoder build and image pixels")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _images(args: argparse.Namespace):
    if args.images is not None and args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    if args.dataset == "samples":
        from proxiqa_lab.data import sample_images

        images = sample_images()
        names = list(images)[: args.images]
        return {n: images[n] for n in names}
    if args.dataset not in DATASET_CHOICES:
        return folder_images(args.dataset)[: args.images]
    from proxiqa_lab.data import dataset_files

    return dataset_files(args.dataset, root=args.root)[: args.images]


#: The files ``--dataset DIR`` reads from a folder of one's own images.
FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg")


def folder_images(folder: str) -> list:
    """The PNG and JPEG files of ``folder`` (not its sub-folders), sorted by name; each is read, so a
    damaged file is named before any codec runs."""
    from pathlib import Path

    from proxiqa_lab.data import load_image

    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"--dataset {folder!r} is neither a dataset ({', '.join(DATASET_CHOICES)}) nor a folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES)
    if not files:
        raise ValueError(f"--dataset {folder!r} holds no PNG or JPEG files ({', '.join(FOLDER_SUFFIXES)})")
    stems = [p.stem for p in files]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise ValueError(f"--dataset {folder!r} has files of the same name but another suffix ({clash}); "
                         f"tables name images by file name, so rename or move one of each")
    for p in files:
        load_image(p)  # an ImageError names the file
    return files


def _codecs(args: argparse.Namespace) -> list:
    from proxiqa_lab.classical import get_codec

    codecs = [get_codec(name, **({"points": args.points} if args.points else {})) for name in args.codec]
    for spec in args.learned:
        name, sep, ckpts = spec.partition("=")
        if not sep or not name or not ckpts:
            raise ValueError(f"--learned takes NAME=CKPT[,CKPT...], got {spec!r}")
        from proxiqa_lab.codec import LearnedCodec

        codecs.append(LearnedCodec(ckpts.split(","), name=name))
    for spec in args.zoo:
        from proxiqa_lab.codec import LearnedCodec
        from proxiqa_lab.studies.grid import objective_label
        from proxiqa_lab.zoo.plan import grid_models

        architecture, _, objective = spec.rpartition("/")
        models = grid_models(objective, architecture or "bls")
        codecs.append(LearnedCodec([m.path for m in models], name=objective_label(objective, architecture or "bls")))
    if not codecs:
        raise ValueError("nothing to evaluate: give at least one --codec NAME, --learned NAME=CKPTS or --zoo OBJECTIVE")
    names = [c.name for c in codecs]
    if len(set(names)) != len(names):
        raise ValueError(f"codec names must be unique, got {names}")
    return codecs


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from proxiqa_lab.cli import check_folder
    from proxiqa_lab.evaluation import (
        ALL_METRICS,
        RDCache,
        bd_summary,
        bd_table,
        evaluate,
        plot_rd,
        save_rd,
        summary_markdown,
        write_text,
    )

    check_folder(args.out)  # before any codec runs
    check_folder(args.cache)
    metrics = tuple(args.metrics or ALL_METRICS)
    codecs = _codecs(args)
    baseline = args.baseline or codecs[0].name
    if baseline not in [c.name for c in codecs]:
        raise ValueError(f"--baseline {baseline!r} is not among the codecs evaluated: "
                         f"{', '.join(c.name for c in codecs)}")
    images = _images(args)
    out = Path(args.out)
    cache = RDCache(args.cache) if args.cache else None
    tables = []
    for codec in codecs:
        t0 = time.perf_counter()
        df = evaluate(codec, images, metrics=metrics, progress=not args.no_progress, cache=cache)
        csv_path, json_path = save_rd(df, out, codec.name, f"{codec.name} on {args.dataset} "
                                      f"({df['image'].nunique()} images), measured by proxiqa-lab evaluate")
        print(f"{codec.name}: {len(df)} points in {time.perf_counter() - t0:.1f} s -> {json_path}")
        tables.append(df)
    df = pd.concat(tables, ignore_index=True)
    from proxiqa_lab.metrics import METRICS

    for metric in metrics:
        plot_rd(df, metric, out / f"rd_{metric}", title=f"{METRICS[metric].label} ({args.dataset}, mean over images)")
    print(f"RD plots -> {out}/rd_<metric>.png/.svg")
    if len(codecs) > 1:
        per_image = bd_table(df, baseline, metrics, method=args.method)
        summary = bd_summary(per_image)
        write_text(out / "bd_per_image.csv", per_image.to_csv(float_format="%.4f"))
        write_text(out / "bd_summary.csv", summary.to_csv(float_format="%.4f"))
        md = (f"BD-rate (%) against {baseline}, {args.method} fit, mean ± std over "
              f"{df['image'].nunique()} images of {args.dataset}.\n\n" + summary_markdown(summary))
        write_text(out / "bd_summary.md", md)
        print(f"\nBD-rate per image (%) against {baseline}:")
        print(per_image.round(2).to_string())
        print()
        print(md)
    return 0
