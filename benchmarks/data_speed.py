"""Data-layer speed: training patch loader (ms per batch) and dataset re-verification.

    python benchmarks/data_speed.py [--root DIR] [--batches 200]

Writes reports/benchmarks/data_speed.json and .md. Needs bsds500 and unsplash_x4 under the
data root (``proxiqa-lab data fetch bsds500 unsplash_x4 --mirror DIR``); without them the
loader is timed on the scikit-image sample photos and the report says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from proxiqa_lab.data import (
    DATASETS,
    SAMPLE_IMAGES_LABEL,
    PatchLoader,
    data_root,
    sample_images,
    status,
    training_files,
)
from proxiqa_lab.errors import DataNotFoundError
from proxiqa_lab.paths import reports_root


def time_loader(sources, batches: int) -> dict:
    loader = PatchLoader(sources, seed=0)
    start = time.perf_counter()
    loader.preload()
    preload_s = time.perf_counter() - start
    next(loader)  # warm-up
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(batches):
            next(loader)
        runs.append((time.perf_counter() - start) / batches * 1000)
    return {"num_sources": loader.num_sources, "preload_s": round(preload_s, 3),
            "ms_per_batch_runs": [round(r, 2) for r in runs], "ms_per_batch_best": round(min(runs), 2),
            "batch_size": loader.batch_size, "patch_size": loader.patch_size}


def time_overlap(sources, steps: int, step_s: float) -> dict:
    """Seconds per step of a loop that waits ``step_s`` (a GPU step leaves the CPU free)."""
    out = {"step_ms": step_s * 1000}
    for prefetch in (0, 2):
        loader = PatchLoader(sources, seed=0, prefetch=prefetch).preload()
        next(loader)
        start = time.perf_counter()
        for _ in range(steps):
            next(loader)
            time.sleep(step_s)
        out[f"prefetch{prefetch}_ms_per_step"] = round((time.perf_counter() - start) / steps * 1000, 2)
        loader.close()
    return out


def time_verification(root: Path) -> dict | None:
    """status() of every present dataset: with the size/mtime manifest, then hashing everything."""
    names = [n for n in DATASETS if status(n, root).complete]
    if not names:
        return None
    start = time.perf_counter()
    for name in names:
        status(name, root)
    cached_s = time.perf_counter() - start
    manifests = {n: (root / n / ".verified.json") for n in names}
    saved = {n: p.read_bytes() for n, p in manifests.items()}
    try:
        for p in manifests.values():
            p.unlink()
        start = time.perf_counter()
        for name in names:
            status(name, root)
        full_s = time.perf_counter() - start
    finally:
        for n, p in manifests.items():
            p.write_bytes(saved[n])
    mb = sum(DATASETS[n].num_bytes for n in names) / 1e6
    return {"datasets": names, "megabytes": round(mb, 1), "cached_s": round(cached_s, 4),
            "full_hash_s": round(full_s, 3), "speedup": round(full_s / cached_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: $PROXIQA_LAB_DATA or ./data)")
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    root = data_root(args.root)
    try:
        sources, label = training_files(root), "training_files(): bsds500 train+val + unsplash_x4"
    except DataNotFoundError:
        sources, label = sample_images(), SAMPLE_IMAGES_LABEL
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1min_at_start": round(os.getloadavg()[0], 2),
                    "torch_threads": torch.get_num_threads()},
        "loader": {"sources": label, **time_loader(sources, args.batches)},
        "overlap": time_overlap(sources, args.batches // 2, 0.02),
        "verification": time_verification(root),
    }
    out = reports_root() / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    loader, ver, ov = result["loader"], result["verification"], result["overlap"]
    lines = [
        "# Data-layer speed", "",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, load average "
        f"{result['machine']['load_average_1min_at_start']} at start (shared machine). "
        "Command: `python benchmarks/data_speed.py`.", "",
        f"- PatchLoader ({loader['sources']}, {loader['num_sources']} sources, batches of "
        f"{loader['batch_size']}x3x{loader['patch_size']}x{loader['patch_size']}): "
        f"**{loader['ms_per_batch_best']} ms per batch** (best of 3 runs of {args.batches}; "
        f"runs {loader['ms_per_batch_runs']}); decoding all sources once took {loader['preload_s']} s.",
    ]
    lines.append(
        f"- A loop of next(loader) plus a {ov['step_ms']:.0f} ms wait (a GPU-bound step): "
        f"{ov['prefetch0_ms_per_step']} ms per step without prefetch, "
        f"{ov['prefetch2_ms_per_step']} ms with `prefetch=2`."
    )
    if ver:
        lines.append(
            f"- Re-verifying {ver['megabytes']} MB ({', '.join(ver['datasets'])}): "
            f"{ver['cached_s']} s with the size/mtime manifest vs {ver['full_hash_s']} s hashing "
            f"every file ({ver['speedup']}x)."
        )
    (out / "data_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
