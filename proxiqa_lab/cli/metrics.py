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
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: ``--pairs`` scores its rows in consecutive batches of at most this many bytes of reference
#: frames (one Kodak image is 1.1 MiB), so memory does not grow with the number of rows.
PAIRS_BATCH_BYTES = 64 * 2**20
#: Decoded images kept for rows that name a file again, least recently used dropped first.
IMAGE_CACHE_BYTES = 256 * 2**20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "metrics",
        help="score (reference, distorted) image pairs with PSNR, SSIM, MS-SSIM, VIF, VMAF, VMAF-NEG",
        description=(
            "Score image pairs with ffmpeg's psnr filter and libvmaf, as in the paper (Sec. IV-A.2). "
            "Pairs of one size are scored together, batch by batch; an image named by many rows is read once."
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


class ImageCache:
    """Images decoded once per resolved path; the least recently used go past ``max_bytes``."""

    def __init__(self, max_bytes: int = IMAGE_CACHE_BYTES):
        self.max_bytes, self.nbytes = max_bytes, 0
        self._images: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __call__(self, path: Path) -> np.ndarray:
        from proxiqa_lab.data import load_image

        key = Path(path).resolve()
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        img = load_image(path)
        img.flags.writeable = False  # shared by every row that names the file
        self._images[key] = img
        self.nbytes += img.nbytes
        while self.nbytes > self.max_bytes and len(self._images) > 1:
            self.nbytes -= self._images.popitem(last=False)[1].nbytes
        return img


def batches(
    pairs: list[tuple[Path, Path]], load, max_bytes: int = PAIRS_BATCH_BYTES
) -> Iterator[tuple[list[int], list[np.ndarray], list[np.ndarray]]]:
    """Consecutive ``(rows, refs, dists)`` of at most ``max_bytes`` of reference frames (at least one row)."""
    from proxiqa_lab.errors import MetricError

    rows, refs, dists, size = [], [], [], 0
    for i, (r, d) in enumerate(pairs):
        ref, dist = load(r), load(d)
        if ref.shape != dist.shape:
            h, w = ref.shape[:2]
            raise MetricError(f"{r} is {w}x{h} but {d} is {dist.shape[1]}x{dist.shape[0]}; "
                              "a pair needs two images of one size")  # fmt: skip
        if rows and size + ref.nbytes > max_bytes:
            yield rows, refs, dists
            rows, refs, dists, size = [], [], [], 0
        rows.append(i), refs.append(ref), dists.append(dist)
        size += ref.nbytes
    if rows:
        yield rows, refs, dists


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
    from proxiqa_lab.errors import ImageError, MetricError
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
    for path in dict.fromkeys(p for pair in pairs for p in pair):  # fail before scoring anything
        if not path.is_file():
            raise ImageError(f"image file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))

    # Rows stream through in bounded batches; a file named by many rows is decoded once.
    rows = [{"ref": str(r), "dist": str(d)} for r, d in pairs]
    skipped: dict[tuple[str, ...], int] = {}
    for idx, refs, dists in batches(pairs, ImageCache(IMAGE_CACHE_BYTES), PAIRS_BATCH_BYTES):
        # Pairs grouped by the metrics that apply to their size (explicit --metrics must apply to all).
        groups: dict[tuple[str, ...], list[int]] = {}
        for k, img in enumerate(refs):
            side = min(img.shape[:2])
            groups.setdefault(tuple(m for m in names if asked or METRICS[m].min_size <= side), []).append(k)
        for usable, ks in groups.items():
            missing = tuple(m for m in names if m not in usable)
            if missing:
                skipped[missing] = skipped.get(missing, 0) + len(ks)
            if usable:
                values = score([refs[k] for k in ks], [dists[k] for k in ks], usable)
                for j, k in enumerate(ks):
                    rows[idx[k]].update({m: float(values[m][j]) for m in usable})
    for missing, count in skipped.items():
        print(f"note: {', '.join(missing)} skipped for {count} pair(s) smaller than its minimum size", file=sys.stderr)
    for row in rows:
        for m in names:
            row.setdefault(m, None)

    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_format_table(rows, names))
    return 0
