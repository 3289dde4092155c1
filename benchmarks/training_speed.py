"""Training speed and memory: the kit's steps against a plain CompressAI-style loop, side by side.

Measures, in one process, medians of several steps after warm-up, batch 8 x 128²:

(a) the kit's MSE codec step (``Trainer.codec_step``) against a plain loop on the same model,
    batch and optimiser (forward, λ·255²·MSE + bpp, backward, clip, Adam step, aux step);
(b) the full ``proxy:vmaf`` step (codec step through the proxy, batched libvmaf on the 8
    reconstructions, proxy step) against the full MSE step, sequential and with the true metric
    overlapped with the next codec step, at N=64 and at the paper's N=192, with a breakdown;
(c) peak RSS of a lab-profile ``proxy:vmaf`` run of a few hundred steps (in a child process).

Kit and baseline steps are interleaved so that load from other processes hits both alike.

    python benchmarks/training_speed.py [--reps 15] [--rss-steps 200] [--device cpu|cuda]

Writes reports/benchmarks/training_speed.json and .md (``training_speed_cuda.*`` with
``--device cuda``; on CUDA every timed piece ends with ``torch.cuda.synchronize()``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from proxiqa_lab.paths import reports_root
from proxiqa_lab.training import make_config
from proxiqa_lab.training.trainer import Trainer

BATCH, PATCH, LMBDA = 8, 128, 0.0130
DEVICE = "cpu"  # set by --device


def trainer_for(objective: str, N: int, overlap: bool, folder: Path, fuse: bool = True) -> Trainer:
    cfg = make_config("lab", objective=objective, N=N, batch_size=BATCH, patch_size=PATCH, lmbda=LMBDA,
                      data="samples", device=DEVICE, progress=False, steps=10**9, log_every=10**9,
                      overlap_metric=overlap)
    trainer = Trainer(cfg, folder / f"{objective.replace(':', '_')}-{N}-{overlap}-{fuse}")
    trainer.fuse = fuse
    trainer.build()
    trainer.out.mkdir(parents=True, exist_ok=True)
    trainer._open_log(0)
    trainer._executor = ThreadPoolExecutor(max_workers=1)
    return trainer


class PlainLoop:
    """The CompressAI example's training step (examples/train.py), on a copy of the kit's codec."""

    def __init__(self, codec: torch.nn.Module, lr: float, clip: float | None):
        import copy

        self.model = copy.deepcopy(codec).train()
        params = dict(self.model.named_parameters())
        self.opt = torch.optim.Adam([p for n, p in params.items() if not n.endswith(".quantiles")], lr=lr)
        self.aux_opt = torch.optim.Adam([p for n, p in params.items() if n.endswith(".quantiles")], lr=1e-3)
        self.clip = clip

    def step(self, x: torch.Tensor) -> float:
        self.opt.zero_grad()
        self.aux_opt.zero_grad()
        out = self.model(x)
        n, _, h, w = x.shape
        bpp = sum(torch.log(p).sum() for p in out["likelihoods"].values()) / (-torch.log(torch.tensor(2.0)) * n * h * w)
        loss = LMBDA * 255**2 * torch.nn.functional.mse_loss(out["x_hat"], x) + bpp
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        aux = self.model.aux_loss()
        aux.backward()
        self.aux_opt.step()
        return float(loss.detach())


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def bench_mse_vs_plain(N: int, reps: int, warmup: int, folder: Path) -> dict:
    kit = trainer_for("mse", N, False, folder)
    plain = PlainLoop(kit.codec, kit.config.lr, kit.config.grad_clip)
    x = next(kit.loader).to(kit.device)
    kit_t, plain_t = [], []
    for i in range(warmup + reps):
        # Alternate the order so that neither side always runs first.
        if i % 2:
            b = timed(lambda: plain.step(x))
            a = timed(lambda: kit.codec_step(x, i + 1))
        else:
            a = timed(lambda: kit.codec_step(x, i + 1))
            b = timed(lambda: plain.step(x))
        if i >= warmup:
            kit_t.append(a)
            plain_t.append(b)
    return {"N": N, "kit_mse_step_s": median(kit_t), "plain_compressai_step_s": median(plain_t),
            "kit_min_s": min(kit_t), "plain_min_s": min(plain_t),
            "ratio": median([a / b for a, b in zip(kit_t, plain_t)])}


def bench_proxy(N: int, reps: int, warmup: int, folder: Path) -> dict:
    mse = trainer_for("mse", N, False, folder)
    seq = trainer_for("proxy:vmaf", N, False, folder, fuse=False)
    fused = trainer_for("proxy:vmaf", N, False, folder)
    ovl = trainer_for("proxy:vmaf", N, True, folder)
    times: dict[str, list[float]] = {k: [] for k in ("mse", "proxy_seq", "proxy_fused", "proxy_overlap",
                                                     "codec_through_proxy", "true_metric", "proxy_update", "data")}
    step = 0
    for i in range(warmup + reps):
        step += 1
        runs = [("mse", mse), ("proxy_seq", seq), ("proxy_fused", fused), ("proxy_overlap", ovl)]
        measured = {}
        for name, trainer in (runs if i % 2 == 0 else runs[::-1]):
            measured[name] = timed(lambda: trainer.train_step(step))
        # Breakdown of the sequential proxy step, on the trainer's next batch.
        sync()
        t0 = time.perf_counter()
        x = next(seq.loader).to(seq.device)
        sync()
        t1 = time.perf_counter()
        _, x_hat, _, _ = seq.codec_step(x, step)
        sync()
        t2 = time.perf_counter()
        m = seq.objective.true_metric(x, x_hat)
        t3 = time.perf_counter()
        seq.proxy_step(x, x_hat.clamp(0, 1), m)
        sync()
        t4 = time.perf_counter()
        measured.update(codec_through_proxy=t2 - t1, true_metric=t3 - t2, proxy_update=t4 - t3, data=t1 - t0)
        if i >= warmup:
            for k in times:
                times[k].append(measured[k])
    ovl._finish_pending()
    for t in (mse, seq, fused, ovl):
        t._executor.shutdown()
        t._log_file.close()
    out = {f"{k}_s": median(v) for k, v in times.items()}
    ratio = {k: median([a / b for a, b in zip(times[k], times["mse"])]) for k in ("proxy_seq", "proxy_fused",
                                                                                  "proxy_overlap")}
    out.update(N=N, ratio_sequential=ratio["proxy_seq"], ratio_fused=ratio["proxy_fused"],
               ratio_overlap=ratio["proxy_overlap"])
    return out


def peak_rss(steps: int, folder: Path) -> dict:
    """Peak RSS of a lab-profile proxy:vmaf run, measured in a child process."""
    data = os.environ.get("PROXIQA_LAB_DATA")
    code = (
        "import resource, json, time\n"
        "from proxiqa_lab.training import train\n"
        "t = time.perf_counter()\n"
        f"run = train('lab', out={str(folder / 'rss')!r}, objective='proxy:vmaf', steps={steps}, progress=False,"
        f" checkpoint_every=100, device={DEVICE!r})\n"
        "print(json.dumps({'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'seconds': time.perf_counter() - t, 'data': run.metadata['data']}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"steps": steps, "peak_rss_mb": result["rss_mb"], "children_peak_rss_mb": children,
            "wall_s": result["seconds"], "data": result["data"], "data_root": data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rss-steps", type=int, default=200)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 192])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the steps run (cuda writes training_speed_cuda.*)")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    torch.manual_seed(0)
    results: dict = {
        "command": "python benchmarks/training_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "load_avg_start": os.getloadavg(),
                    "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"},
        "batch": BATCH, "patch": PATCH, "lmbda": LMBDA, "reps": args.reps, "warmup": args.warmup,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["mse_vs_plain"] = [bench_mse_vs_plain(N, args.reps, args.warmup, folder) for N in args.widths]
        print(json.dumps(results["mse_vs_plain"], indent=1), flush=True)
        results["proxy_vs_mse"] = [bench_proxy(N, args.reps, args.warmup, folder) for N in args.widths]
        print(json.dumps(results["proxy_vs_mse"], indent=1), flush=True)
        results["lab_peak_rss"] = peak_rss(args.rss_steps, folder) if args.rss_steps else None
        print(json.dumps(results["lab_peak_rss"], indent=1), flush=True)
    results["machine"]["load_avg_end"] = os.getloadavg()
    out = reports_root() / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    stem = "training_speed" + ("_cuda" if DEVICE == "cuda" else "")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    (out / f"{stem}.md").write_text(markdown(results))
    print(f"wrote {out / stem}.json and .md")
    return 0


def markdown(r: dict) -> str:
    lines = [
        "# Training speed and memory",
        "",
        f"Command: `{r['command']}`. Machine: {r['machine']['platform']}, {r['machine']['cpus']} CPUs, "
        f"torch {r['machine']['torch']} ({r['machine']['torch_threads']} threads), steps on "
        f"{r['machine'].get('device', 'cpu')}; load average at start "
        f"{', '.join(f'{v:.1f}' for v in r['machine']['load_avg_start'])}, at end "
        f"{', '.join(f'{v:.1f}' for v in r['machine']['load_avg_end'])}. Batch {r['batch']} x {r['patch']}², "
        f"median of {r['reps']} steps after {r['warmup']} warm-up steps. The steps compared are interleaved (order "
        "alternating) and ratios are medians of the per-repetition ratios, so load from other processes on the "
        "machine affects both sides of each ratio alike; absolute times vary with that load.",
        "",
        "## (a) MSE step: kit vs a plain CompressAI-style loop (target <= 1.1x)",
        "",
        "| N | kit MSE step (s) | plain loop (s) | kit min (s) | plain min (s) | ratio (median of paired) |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["mse_vs_plain"]:
        lines.append(f"| {row['N']} | {row['kit_mse_step_s']:.4f} | {row['plain_compressai_step_s']:.4f} | "
                     f"{row['kit_min_s']:.4f} | {row['plain_min_s']:.4f} | {row['ratio']:.3f} |")
    lines += [
        "",
        "## (b) proxy:vmaf step vs MSE step (target <= 1.5x at N=192)",
        "",
        "Full training steps (data, codec step, true metric, proxy step). *Sequential*: codec step, libvmaf, then",
        "a proxy step with its own forward pass. *Fused* (the default on CPU): libvmaf starts in a worker thread",
        "right after the codec's forward pass and runs during its backward pass, and the proxy step reuses the",
        "proxy's forward pass from the codec step (same weights, same x̂: the same update as sequential).",
        "*Overlap* (the default on CUDA): libvmaf for batch t runs while the codec steps on batch t+1 and the",
        "proxy update lags one step. The breakdown columns time the pieces of the sequential step.",
        "",
        "| N | MSE step (s) | proxy sequential (s) | ratio | proxy fused (s) | ratio | proxy overlapped (s) | ratio "
        "| codec through proxy (s) | libvmaf, 8 patches (s) | proxy update (s) | data (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["proxy_vs_mse"]:
        lines.append(
            f"| {row['N']} | {row['mse_s']:.4f} | {row['proxy_seq_s']:.4f} | {row['ratio_sequential']:.2f} | "
            f"{row['proxy_fused_s']:.4f} | {row['ratio_fused']:.2f} | {row['proxy_overlap_s']:.4f} | {row['ratio_overlap']:.2f} | {row['codec_through_proxy_s']:.4f} | "
            f"{row['true_metric_s']:.4f} | {row['proxy_update_s']:.4f} | {row['data_s']:.4f} |"
        )
    rss = r.get("lab_peak_rss")
    if rss:
        lines += [
            "",
            "## (c) Peak memory of a lab-profile run (target <= 3 GB)",
            "",
            f"`train('lab', objective='proxy:vmaf', steps={rss['steps']})` in a child process: peak RSS "
            f"{rss['peak_rss_mb']:.0f} MB (ru_maxrss of the child; largest child of the benchmark incl. ffmpeg: "
            f"{rss['children_peak_rss_mb']:.0f} MB), {rss['wall_s']:.0f} s. Data: {rss['data']}.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
