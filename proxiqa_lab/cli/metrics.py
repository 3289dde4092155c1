"""``proxiqa-lab metrics``: true quality of image pairs (ffmpeg psnr + libvmaf).

Examples::

    proxiqa-lab metrics ref.png dist.png
    proxiqa-lab metrics --pairs pairs.csv --metrics vmaf,ms_ssim --json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "metrics",
        help="score (reference, distorted) image pairs with PSNR, SSIM, MS-SSIM, VIF, VMAF, VMAF-NEG",
        description=(
            "Score image pairs with ffmpeg's psnr filter and libvmaf, as in the paper (Sec. IV-A.2). "
            "All pairs of one size are scored in one ffmpeg call."
        ),
    )
    p.add_argument("ref", nargs="?", type=Path, help="reference image (with DIST; or use --pairs)")
    p.add_argument("dist", nargs="?", type=Path, help="distorted image")
    p.add_argument(
        "--pairs",
        type=Path,
        metavar="CSV",
        help="CSV with columns ref,dist (one pair per row); relative paths are relative to the CSV's folder",
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated names: psnr_avg,ssim,ms_ssim,vif,vmaf,vmaf_neg "
        "(default: all that apply to the image size)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per pair (ref, dist, metrics)")
    p.set_defaults(func=run)


def read_pairs(csv_path: Path) -> list[tuple[Path, Path]]:
    """Rows of a ``ref,dist`` CSV as paths (relative ones resolved against the CSV's folder)."""
    from proxiqa_lab.errors import MetricError

    if not csv_path.is_file():
        raise FileNotFoundError(f"pairs file {csv_path} does not exist")
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in reader.fieldnames or []]
        if "ref" not in fields or "dist" not in fields:
            raise MetricError(f"{csv_path} must have a header with columns ref,dist; got {fields}")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    base = csv_path.parent
    pairs = []
    for line, r in enumerate(rows, start=2):
        if not (r.get("ref") or r.get("dist")):
            continue  # blank line
        if not (r.get("ref") and r.get("dist")):
            raise MetricError(f"{csv_path}, line {line}: both ref and dist are needed, got {r}")
        pairs.append((base / r["ref"], base / r["dist"]))
    if not pairs:
        raise MetricError(f"{csv_path} lists no pairs")
    return pairs


def _format_table(rows: list[dict], names: list[str]) -> str:
    header = ["ref", "dist", *names]
    body = [
        [str(r["ref"]), str(r["dist"])] + ["-" if r.get(m) is None else f"{r[m]:.4f}" for m in names] for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(b, widths))) for b in body]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from proxiqa_lab.data import load_image
    from proxiqa_lab.errors import MetricError
    from proxiqa_lab.metrics import METRICS, score
    from proxiqa_lab.metrics.registry import check_metric_names

    if args.pairs is not None:
        if args.ref is not None:
            raise MetricError("give either REF DIST or --pairs CSV, not both")
        pairs = read_pairs(args.pairs)
    elif args.ref is not None and args.dist is not None:
        pairs = [(args.ref, args.dist)]
    else:
        raise MetricError("give REF and DIST image paths, or --pairs CSV with columns ref,dist")

    asked = check_metric_names([m.strip() for m in args.metrics.split(",") if m.strip()]) if args.metrics else None
    names = list(asked or METRICS)
    refs = [load_image(r) for r, _ in pairs]
    dists = [load_image(d) for _, d in pairs]

    # Pairs grouped by the metrics that apply to their size (explicit --metrics must apply to all).
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, img in enumerate(refs):
        side = min(img.shape[:2])
        usable = tuple(m for m in names if asked or METRICS[m].min_size <= side)
        groups.setdefault(usable, []).append(i)
    rows = [{"ref": str(r), "dist": str(d)} for r, d in pairs]
    for usable, idx in groups.items():
        skipped = [m for m in names if m not in usable]
        if skipped:
            print(f"note: {', '.join(skipped)} skipped for {len(idx)} pair(s) smaller than its minimum size",
                  file=sys.stderr)  # fmt: skip
        if not usable:
            continue
        values = score([refs[i] for i in idx], [dists[i] for i in idx], usable)
        for k, i in enumerate(idx):
            rows[i].update({m: float(values[m][k]) for m in usable})
    for row in rows:
        for m in names:
            row.setdefault(m, None)

    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_format_table(rows, names))
    return 0
