"""How fast are the true metrics? Batched ffmpeg/libvmaf calls vs one ffmpeg process per pair.

Run from the repository root::

    python benchmarks/metrics_speed.py            # writes reports/benchmarks/metrics_speed.{json,md}
    python benchmarks/metrics_speed.py --repeats 3

Pairs are random crops of Kodak (``$PROXIQA_LAB_DATA``, else ``../shared/data``, else
``./data``) compressed with Pillow's JPEG at random qualities 5..90. "per-pair processes" is
how the released ProxIQA code scored patches: write both PNGs, run one ffmpeg + libvmaf per
pair (same libvmaf threads), read its log. "batched" is ``proxiqa_lab.metrics.score``. Both run in the same
repeat, one after the other; the report gives the median over repeats of ms per pair.

Two accuracy studies ride along because they need the same data: the drift of
``ms_ssim_pad`` (reflect padding) on crops where the true MS-SSIM exists, and the gap between
the differentiable SSIM/MS-SSIM (pytorch-msssim) and libvmaf's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from proxiqa_lab.data import dataset_files, load_image, to_tensor
from proxiqa_lab.metrics import engine, reflect_pad, score
from proxiqa_lab.metrics import differentiable as D

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"
ALL = ("psnr_avg", "ssim", "ms_ssim", "vif", "vmaf", "vmaf_neg")


def kodak_root() -> Path | None:
    env = os.environ.get("PROXIQA_LAB_DATA")
    if env:
        return Path(env)
    shared = ROOT.parent / "shared" / "data"
    return shared if (shared / "kodak").is_dir() else None


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.array(Image.open(buf).convert("RGB"))


def make_pairs(images: list[np.ndarray], n: int, size: tuple[int, int] | None, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (crop, JPEG(crop)) pairs; ``size=None`` keeps whole images (all of one size)."""
    refs, dists = [], []
    for _ in range(n):
        img = images[rng.integers(len(images))]
        if size is not None:
            h, w = size
            y, x = rng.integers(img.shape[0] - h + 1), rng.integers(img.shape[1] - w + 1)
            img = img[y : y + h, x : x + w]
        refs.append(np.ascontiguousarray(img))
        dists.append(jpeg(refs[-1], int(rng.integers(5, 91))))
    return np.stack(refs), np.stack(dists)


# ----------------------------------------------------------------------------- the released way
PER_PAIR_GRAPH = {
    "vmaf": "model='version=vmaf_v0.6.1'",
    "all": (
        "model='version=vmaf_v0.6.1\\:name=vmaf|version=vmaf_v0.6.1neg\\:name=vmaf_neg':"
        "feature='name=float_ssim|name=float_ms_ssim|name=float_vif\\:debug=true'"
    ),
}


def metrics_for(which: str, size: tuple[int, int] | None) -> tuple[str, ...]:
    """'all' means every metric that exists at that size (no MS-SSIM below 176 px)."""
    if which == "vmaf":
        return ("vmaf",)
    return ALL if size is None or min(size) >= 176 else tuple(m for m in ALL if m != "ms_ssim")


def per_pair_processes(refs: np.ndarray, dists: np.ndarray, which: str) -> list[float]:
    """One ffmpeg per pair reading PNG files (VMAF of a one-frame video; PSNR too for 'all')."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for ref, dist in zip(refs, dists):
            Image.fromarray(ref).save(Path(tmp) / "ref.png")
            Image.fromarray(dist).save(Path(tmp) / "dist.png")
            graph = "[0:v]format=yuv444p[d];[1:v]format=yuv444p[r];[d][r]libvmaf=log_fmt=json:log_path=v.json:"
            graph += f"n_threads={os.cpu_count()}:{PER_PAIR_GRAPH[which]}"  # same threads as the batched calls
            if min(ref.shape[:2]) < 176:
                graph = graph.replace("|name=float_ms_ssim", "")
            if which == "all":
                graph = graph.replace("[1:v]format=yuv444p[r];[d][r]", "[1:v]format=yuv444p,split[r][r2];[d][r]")
                graph += "[s];[s][r2]psnr=stats_file=psnr.txt"
            cmd = [engine.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", "dist.png", "-i", "ref.png",
                   "-filter_complex", graph, "-f", "null", "-"]  # fmt: skip
            subprocess.run(cmd, check=True, cwd=tmp)
            out.append(json.loads((Path(tmp) / "v.json").read_text())["frames"][0]["metrics"]["vmaf"])
    return out


# ----------------------------------------------------------------------------- transport variant
def batched_rawfile(refs: np.ndarray, dists: np.ndarray, n_threads: int) -> np.ndarray:
    """Same call as ``engine.run_batch`` for VMAF, but the reference is a temporary raw file."""
    n, h, w, _ = refs.shape
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", "25"]
    with tempfile.TemporaryDirectory(dir=engine._temp_root()) as tmp:
        (Path(tmp) / "ref.rgb").write_bytes(refs.tobytes())
        graph = engine.filter_graph(("vmaf",), n_threads)
        cmd = [engine.ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-filter_threads", "1",
               "-filter_complex_threads", "1", *raw, "-i", "pipe:0", *raw, "-i", "ref.rgb",
               "-filter_complex", graph, "-f", "null", "-"]  # fmt: skip
        subprocess.run(cmd, input=dists.tobytes(), cwd=tmp, check=True, capture_output=True)
        frames = json.loads((Path(tmp) / "vmaf.json").read_text())["frames"]
    return np.array([f["metrics"]["vmaf"] for f in frames])


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_ms_per_pair(times: list[float], n: int) -> float:
    return round(1000 * statistics.median(times) / n, 3)


# ----------------------------------------------------------------------------- studies
def speed(images, rng, repeats: int) -> list[dict]:
    rows = []
    cases = [("vmaf", (128, 128), bs) for bs in (1, 8, 16, 32)]
    cases += [("all", (128, 128), 16), ("vmaf", None, 4), ("all", None, 4)]
    for which, size, bs in cases:
        metrics = metrics_for(which, size)
        batched, single = [], []
        pool = images if size else [im for im in images if im.shape[:2] == (512, 768)]
        for _ in range(repeats):
            refs, dists = make_pairs(pool, bs, size, rng)
            batched.append(timed(lambda: score(refs, dists, metrics)))
            single.append(timed(lambda: per_pair_processes(refs, dists, which)))
        b, s = median_ms_per_pair(batched, bs), median_ms_per_pair(single, bs)
        label = "128x128" if size else "768x512 (Kodak, whole)"
        rows.append({"metrics": which, "size": label, "batch": bs, "batched_ms_per_pair": b,
                     "per_pair_process_ms_per_pair": s, "speedup": round(s / b, 2),
                     "batched_best_ms_per_pair": round(1000 * min(batched) / bs, 3),
                     "per_pair_process_best_ms_per_pair": round(1000 * min(single) / bs, 3)})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def profile(images, rng, repeats: int) -> dict:
    """Where the time of a batched 128x128 VMAF call goes (batch 16).

    The engine feeds the reference through a second pipe (``pipe:FD``); the variant with a
    temporary raw file is timed alongside. The order of the variants rotates every repeat.
    """
    refs, dists = make_pairs(images, 16, (128, 128), rng)
    ff = engine.ffmpeg_exe()
    nothing = [ff, "-loglevel", "error", "-f", "lavfi", "-i", "nullsrc=s=128x128", "-frames:v", "1", "-f", "null", "-"]
    startup = [timed(lambda: subprocess.run(nothing, check=True)) for _ in range(repeats)]
    res = {"ffmpeg_startup_ms": round(1000 * statistics.median(startup), 2)}
    for label, fn in [
        ("vmaf_batch16_n_threads_1_ms", lambda: engine.run_batch(refs, dists, ("vmaf",), n_threads=1)),
        ("vmaf_batch16_n_threads_2_ms", lambda: engine.run_batch(refs, dists, ("vmaf",), n_threads=2)),
        ("vmaf_batch16_ref_via_temp_raw_file_ms", lambda: batched_rawfile(refs, dists, 2)),
        ("psnr_only_batch16_ms", lambda: engine.run_batch(refs, dists, ("psnr_avg",))),
        ("ssim_only_batch16_ms", lambda: engine.run_batch(refs, dists, ("ssim",))),
    ]:
        res[label] = round(1000 * statistics.median([timed(fn) for _ in range(repeats)]), 2)
    same = np.array_equal(batched_rawfile(refs, dists, 2), engine.run_batch(refs, dists, ("vmaf",))["vmaf"])
    res["temp_raw_file_gives_same_values"] = bool(same)
    return res


def ms_ssim_pad_drift(images, rng) -> dict:
    """How far reflect padding by 176/128 moves MS-SSIM on crops whose true MS-SSIM exists."""
    out = {}
    for side in (176, 224, 256):
        padded_side = round(side * 176 / 128)
        refs, dists = make_pairs(images, 48, (side, side), rng)
        true = score(refs, dists, ("ms_ssim",))["ms_ssim"]
        pad = score(reflect_pad(refs, padded_side), reflect_pad(dists, padded_side), ("ms_ssim",))["ms_ssim"]
        diff = pad - true
        out[f"{side}->{padded_side}"] = {
            "mean_abs_diff": round(float(np.abs(diff).mean()), 5),
            "max_abs_diff": round(float(np.abs(diff).max()), 5),
            "mean_diff": round(float(diff.mean()), 5),
            "spread_of_true_values_std": round(float(true.std()), 5),
            "spearman_true_vs_padded": round(float(_spearman(true, pad)), 4),
        }
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def differentiable_gap(images, rng) -> dict:
    refs, dists = make_pairs(images, 48, (256, 256), rng)
    true = score(refs, dists, ("ssim", "ms_ssim"))
    x, x_hat = to_tensor(refs), to_tensor(dists)
    out = {}
    for name, fn in (("ssim", D.ssim), ("ms_ssim", D.ms_ssim)):
        diff = fn(x, x_hat).numpy().astype(np.float64) - true[name]
        out[name] = {"mean_diff": round(float(diff.mean()), 4), "max_abs_diff": round(float(np.abs(diff).max()), 4),
                     "spearman": round(_spearman(true[name], diff + true[name]), 4)}  # fmt: skip
    return out


def targets(rows: list[dict]) -> list[str]:
    """Check the goals: <= 4 ms per pair and >= 8x faster than per-pair processes."""
    out = []
    for r in rows:
        if r["metrics"] == "vmaf" and r["size"] == "128x128" and r["batch"] >= 8:
            fast, ratio = r["batched_ms_per_pair"] <= 4.0, r["speedup"] >= 8.0
            out.append(f"batch {r['batch']}: {r['batched_ms_per_pair']} ms/pair "
                       f"({'met' if fast else 'MISSED'} <= 4 ms), "
                       f"{r['speedup']}x ({'met' if ratio else 'MISSED'} >= 8x)")  # fmt: skip
    return out


def machine() -> dict:
    ver = " ".join(subprocess.run([engine.ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout.split()[:3])
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
            "ffmpeg": ver}  # fmt: skip


def write_markdown(res: dict, path: Path) -> None:
    lines = [
        "# Metrics speed: batched ffmpeg/libvmaf vs one process per pair",
        "",
        f"Measured {res['date']} on {res['machine']['cpu']} ({res['machine']['cores']} cores), "
        f"{res['machine']['ffmpeg']}. Command: `{res['command']}`. Median of {res['repeats']} repeats; "
        "pairs are random Kodak crops vs JPEG (quality 5..90). Other work may have shared the CPU; "
        "compare ratios within this run.",
        "",
        f"Load average (1 min) {res['load_before']} before and {res['load_after']} after the run.",
        "",
        "| metrics | size | batch | batched ms/pair | per-pair process ms/pair | speed-up "
        "| best batched | best per-pair |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["speed"]:
        lines.append(f"| {r['metrics']} | {r['size']} | {r['batch']} | {r['batched_ms_per_pair']} | "
                     f"{r['per_pair_process_ms_per_pair']} | {r['speedup']}x | {r['batched_best_ms_per_pair']} | "
                     f"{r['per_pair_process_best_ms_per_pair']} |")  # fmt: skip
    lines += ["", "'all' = psnr_avg, ssim, ms_ssim, vif, vmaf, vmaf_neg (at 128x128 without ms_ssim: it needs 176 px).",
              "", "## Targets (VMAF, 128x128, batches of 8 or more; medians of this run)", ""]
    lines += [f"- {t}" for t in res["targets"]]
    lines += ["",
              "## Profile (batch of 16 128x128 pairs, VMAF unless named; ms per call)", ""]  # fmt: skip
    lines += [f"- {k}: {v}" for k, v in res["profile"].items()]
    lines += ["", "## ms_ssim_pad: drift of reflect padding (by 176/128) on crops with a true MS-SSIM", "",
              "| crop -> padded | mean abs diff | max abs diff | mean diff | std of true values | Spearman |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for k, v in res["ms_ssim_pad_drift"].items():
        lines.append(f"| {k} | {v['mean_abs_diff']} | {v['max_abs_diff']} | {v['mean_diff']} | "
                     f"{v['spread_of_true_values_std']} | {v['spearman_true_vs_padded']} |")  # fmt: skip
    lines += ["", "## Differentiable (pytorch-msssim, RGB float) minus libvmaf (luma, uint8), 256x256 crops", "",
              "| metric | mean diff | max abs diff | Spearman |", "|---|---:|---:|---:|"]  # fmt: skip
    for k, v in res["differentiable_gap"].items():
        lines.append(f"| {k} | {v['mean_diff']} | {v['max_abs_diff']} | {v['spearman']} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per case (median reported)")
    parser.add_argument("--seed", type=int, default=0, help="seed of crops and JPEG qualities")
    args = parser.parse_args(argv)
    images = [load_image(p) for p in dataset_files("kodak", kodak_root())]
    rng = np.random.default_rng(args.seed)
    res = {
        "name": "metrics_speed",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/metrics_speed.py" + (f" --repeats {args.repeats}" if args.repeats != 7 else ""),
        "repeats": args.repeats,
        "machine": machine(),
        "load_before": round(os.getloadavg()[0], 2),
        "speed": speed(images, rng, args.repeats),
        "profile": profile(images, rng, args.repeats),
        "ms_ssim_pad_drift": ms_ssim_pad_drift(images, np.random.default_rng(args.seed + 1)),
        "differentiable_gap": differentiable_gap(images, np.random.default_rng(args.seed + 2)),
    }
    res["load_after"] = round(os.getloadavg()[0], 2)
    res["targets"] = targets(res["speed"])
    OUT.mkdir(parents=True, exist_ok=True)
    for suffix, write in ((".json", lambda p: p.write_text(json.dumps(res, indent=2) + "\n")),
                          (".md", lambda p: write_markdown(res, p))):  # fmt: skip
        tmp = OUT / f".metrics_speed{suffix}.tmp"
        write(tmp)
        tmp.replace(OUT / f"metrics_speed{suffix}")
    print(json.dumps({k: res[k] for k in ("profile", "ms_ssim_pad_drift", "differentiable_gap")}, indent=2))


if __name__ == "__main__":
    main()
