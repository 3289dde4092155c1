"""RD evaluation of classical codecs with and without the RD cache (notebook 04's main cost).

    python benchmarks/rd_cache.py [--root DIR] [--images 2] [--codecs jpeg jpeg2000 hevc444 hevc420]

Evaluates the lab profile's classical codecs at its 8 target rates on the first Kodak images,
once into an empty :class:`~proxiqa_lab.evaluation.RDCache` (everything measured) and once
again from it, and checks that both give the same table. Writes
reports/benchmarks/rd_cache.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import pandas as pd

from proxiqa_lab import studies
from proxiqa_lab.evaluation import RDCache
from proxiqa_lab.paths import reports_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: $PROXIQA_LAB_DATA or ./data)")
    parser.add_argument("--images", type=int, default=2, help="first N Kodak images (default 2)")
    parser.add_argument("--codecs", nargs="+", default=None, help="classical codecs (default: the lab profile's)")
    args = parser.parse_args()
    lab = studies.settings_for("lab")
    images, source = studies.eval_images("kodak", args.images, args.root)
    codecs = studies.classical_codecs(args.codecs or lab.classical_codecs, lab.classical_points)
    rows, same = [], True
    with tempfile.TemporaryDirectory(prefix="rd-cache-") as tmp:
        cache = RDCache(tmp)
        for codec in codecs:
            t0 = time.perf_counter()
            cold = studies.evaluate_codecs([codec], images, lab.metrics, cache=cache)
            t1 = time.perf_counter()
            warm = studies.evaluate_codecs([codec], images, lab.metrics, cache=cache)
            t2 = time.perf_counter()
            same &= cold.equals(warm)
            rows.append({"codec": codec.name, "points": len(cold), "measured_s": round(t1 - t0, 2),
                         "cached_s": round(t2 - t1, 4), "speedup": round((t1 - t0) / (t2 - t1), 1)})
    table = pd.DataFrame(rows)
    total = {"measured_s": round(table["measured_s"].sum(), 2), "cached_s": round(table["cached_s"].sum(), 4)}
    total["speedup"] = round(total["measured_s"] / total["cached_s"], 1)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average_1min_at_start": round(os.getloadavg()[0], 2)},
              "images": list(images), "source": source, "metrics": list(lab.metrics),
              "points": list(lab.classical_points), "tables_identical": bool(same),
              "codecs": rows, "total": total}
    out = reports_root() / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "rd_cache.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# RD evaluation of classical codecs: measured vs read from the RD cache", "",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, load average "
        f"{result['machine']['load_average_1min_at_start']} at start (shared machine). "
        f"Command: `python benchmarks/rd_cache.py --images {args.images}`.", "",
        f"{len(images)} images ({source}), {len(lab.classical_points)} target rates, metrics "
        f"{', '.join(lab.metrics)}. Tables identical: {same}.", "",
        "| codec | points | measured (s) | from the cache (s) | speed-up |", "|---|---:|---:|---:|---:|",
        *(f"| {r['codec']} | {r['points']} | {r['measured_s']} | {r['cached_s']} | {r['speedup']}x |" for r in rows),
        "",
        f"In all: {total['measured_s']} s measured, {total['cached_s']} s from the cache "
        f"({total['speedup']}x).",
    ]
    (out / "rd_cache.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not same:
        raise SystemExit("the cached table differs from the measured one")


if __name__ == "__main__":
    main()
