"""From which image size is libvmaf's VMAF a measurement? VMAF of undistorted Kodak crops, by side length.

Run from the repository root::

    python benchmarks/vmaf_min_size.py          # writes reports/benchmarks/vmaf_min_size.{json,md}

An image scored against itself should get the models' ceiling for a still picture (about 97.43
for VMAF v0.6.1 and v0.6.1neg, motion 0), whatever its content. For every side length, 3 random
crops of each Kodak image (``$PROXIQA_LAB_DATA``, else ``../shared/data``, else ``./data``) are
scored against themselves by the kit's engine (``proxiqa_lab.metrics.engine.run_batch``, which does
not check sizes), as squares and as strips of 200 px by that side, both ways round. The
differentiable VMAF (vmaf-torch) gets the square crops too. The smallest side from which every
crop scores within ``TOLERANCE`` of the 128 px value is what ``METRICS["vmaf"].min_size`` should be.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from proxiqa_lab.data import dataset_files, load_image, to_tensor
from proxiqa_lab.metrics import METRICS, engine
from proxiqa_lab.metrics import differentiable as D

from metrics_speed import kodak_root  # noqa: E402  (a sibling script: benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"
SIDES = (*range(17, 41), 48, 64, 96, 128)
LONG = 200
CROPS_PER_IMAGE = 3
#: How far (VMAF points) an undistorted crop may be from the 128 px value (the middle of its range).
TOLERANCE = 0.1


def crops(images: list[np.ndarray], h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for img in images:
        for _ in range(CROPS_PER_IMAGE):
            y, x = rng.integers(img.shape[0] - h + 1), rng.integers(img.shape[1] - w + 1)
            out.append(img[y : y + h, x : x + w])
    return np.ascontiguousarray(np.stack(out))


def span(values: np.ndarray) -> list[float]:
    return [round(float(values.min()), 3), round(float(values.max()), 3)]


def main() -> None:
    images = [load_image(f) for f in dataset_files("kodak", kodak_root())]
    rng = np.random.default_rng(0)
    rows = []
    for side in SIDES:
        row: dict = {"side": side}
        for shape, (h, w) in (("square", (side, side)), ("wide", (side, LONG)), ("tall", (LONG, side))):
            batch = crops(images, h, w, rng)
            res = engine.run_batch(batch, batch, ("vmaf", "vmaf_neg"), n_threads=1)
            row[shape] = {m: span(v) for m, v in res.items()}
            if shape == "square" and side in (17, 24, 32, 33, 64, 128):
                row[shape]["vmaf_torch"] = span(D.vmaf(to_tensor(batch), to_tensor(batch)).numpy())
        rows.append(row)
        print(side, row["square"], flush=True)
    ceiling = {m: float(np.mean(rows[-1]["square"][m])) for m in ("vmaf", "vmaf_neg")}

    def ok(row: dict) -> bool:
        return all(abs(v - ceiling[m]) <= TOLERANCE for shape in ("square", "wide", "tall")
                   for m in ceiling for v in row[shape][m])  # fmt: skip

    smallest = next(r["side"] for i, r in enumerate(rows) if all(ok(q) for q in rows[i:]))
    res = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "crops_per_side": len(images) * CROPS_PER_IMAGE,
        "tolerance": TOLERANCE,
        "ceiling_128px": ceiling,
        "smallest_meaningful_side": smallest,
        "kit_min_size": {m: METRICS[m].min_size for m in ("vmaf", "vmaf_neg")},
        "rows": rows,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vmaf_min_size.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [
        "# VMAF of undistorted images by size: from which side is it a measurement?",
        "",
        f"Measured {res['date']}. Command: `python benchmarks/vmaf_min_size.py`. For each side, "
        f"{res['crops_per_side']} random Kodak crops ({CROPS_PER_IMAGE} per image) scored against themselves "
        f"by libvmaf (min-max over the crops), as squares and as {LONG} px strips (side x {LONG}, "
        f"{LONG} x side). vmaf-torch: the differentiable VMAF on the square crops.",
        "",
        "| side | VMAF square | VMAF side x 200 | VMAF 200 x side | VMAF-NEG square | VMAF-NEG strips "
        "| vmaf-torch square |",
        "|---:|---|---|---|---|---|---|",
    ]

    def fmt(s: list[float]) -> str:
        return f"{s[0]:.3f}-{s[1]:.3f}"

    for r in rows:
        strips = [min(r["wide"]["vmaf_neg"][0], r["tall"]["vmaf_neg"][0]),
                  max(r["wide"]["vmaf_neg"][1], r["tall"]["vmaf_neg"][1])]  # fmt: skip
        torch_col = fmt(r["square"]["vmaf_torch"]) if "vmaf_torch" in r["square"] else ""
        lines.append(f"| {r['side']} | {fmt(r['square']['vmaf'])} | {fmt(r['wide']['vmaf'])} | "
                     f"{fmt(r['tall']['vmaf'])} | {fmt(r['square']['vmaf_neg'])} | {fmt(strips)} | {torch_col} |")
    lines += [
        "",
        f"Every crop is within {TOLERANCE} of the 128 px value (VMAF {ceiling['vmaf']:.3f}, VMAF-NEG "
        f"{ceiling['vmaf_neg']:.3f}) from **{smallest} px** a side up; the kit refuses smaller images for "
        f"VMAF and VMAF-NEG (`METRICS[...].min_size` = {res['kit_min_size']['vmaf']}). 16 px makes ffmpeg crash.",
    ]
    (OUT / "vmaf_min_size.md").write_text("\n".join(lines) + "\n")
    print(f"smallest meaningful side: {smallest} px")


if __name__ == "__main__":
    main()
