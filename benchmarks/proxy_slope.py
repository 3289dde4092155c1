"""Can a proxy learn VMAF's slope? The proxy's gradient against the exact one, away from the codec loop.

    python benchmarks/proxy_slope.py [--steps 600] [--recipes base probes+slope ...] [--out reports/lab_science]

The codec is fixed: the lab MSE model of λ = 0.025 (runs/lab/), in training mode (noisy
quantisation), coding training patches. A fresh proxy is trained on its reconstructions with
eq. (11), as in the alternating loop but without codec steps, under each recipe below. Every 100
steps, on 32 held-out patches: the cosine between the proxy's gradient ∂M̂/∂x̂ and vmaf-torch's
exact ∂VMAF/∂x̂ (``training.proxy_batch.gradient_diagnostics``), the same for the MSE direction,
the norm ratio, and the proxy's mean absolute error on the held-out scores.

It also measures how much of the exact gradient a few simple directions carry (the cosine of
each with ∂VMAF/∂x̂, and of their best per-patch mix), which bounds what probes along them can
teach.

Writes ``proxy_slope.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from proxiqa_lab.data import PatchLoader, training_files
from proxiqa_lab.losses import metric_loss, slope_loss
from proxiqa_lab.metrics import differentiable as D
from proxiqa_lab.metrics import score
from proxiqa_lab.models import ProxIQANet, load_checkpoint
from proxiqa_lab.paths import runs_root
from proxiqa_lab.training.proxy_batch import _blur, gradient_diagnostics, probes

SLOPE_PROBES = ["source", "contrast", "sharpen", "noise", "grad"]
#: name -> (architecture, probe kinds, slope-loss weight, proxy lr)
RECIPES = {
    "base": ("fig4", [], 0.0, 1e-3),
    "probes(grad, sharpen, blur, noise)": ("fig4", ["grad", "sharpen", "blur", "noise"], 0.0, 1e-3),
    "probes(grad, sharpen, blur, noise) + slope": ("fig4", ["grad", "sharpen", "blur", "noise"], 10.0, 1e-3),
    "probes(source, contrast, sharpen, noise, grad) + slope": ("fig4", SLOPE_PROBES, 10.0, 1e-3),
    "pooled": ("pooled", [], 0.0, 1e-3),
    "pooled + probes(source, contrast, sharpen, noise, grad) + slope": ("pooled", SLOPE_PROBES, 10.0, 1e-3),
}


class PooledProxy(nn.Module):
    """A fully convolutional proxy: (x, x̂, x̂ − x) -> local features -> global mean -> score.

    Unlike Fig. 4's network, whose last layer weighs every position separately, its score is an
    average of local responses, as VMAF's features are averages of local statistics.
    """

    def __init__(self, width: int = 32, start: float = 60.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(9, width, 5, padding=2), nn.ReLU(),
            nn.Conv2d(width, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(2 * width, 1)
        with torch.no_grad():
            self.head.bias.fill_(start)

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(torch.cat([x, x_hat, x_hat - x], 1)).mean(dim=(2, 3))).squeeze(1)


def libvmaf(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(score(x, x_hat, metrics=("vmaf",))["vmaf"], dtype=torch.float32)


def held_out(codec, count: int = 32):
    loader = PatchLoader(training_files(), batch_size=8, patch_size=128, crop_size=256, seed=99)
    x = torch.cat([next(loader) for _ in range(count // 8)])
    with torch.no_grad():
        x_hat = torch.cat([codec(x[i : i + 8])["x_hat"] for i in range(0, count, 8)]).clamp(0, 1)
    return x, x_hat


def directions(x: torch.Tensor, x_hat: torch.Tensor) -> dict:
    """Cosine of simple directions with the exact VMAF gradient, and of their best per-patch mix."""
    probe = x_hat.clone().requires_grad_(True)
    D.vmaf(x, probe).sum().backward()
    g = probe.grad.flatten(1)
    e = x - x_hat
    dirs = {"source x − x̂ (MSE)": e, "sharpen x̂ − blur(x̂)": x_hat - _blur(x_hat),
            "contrast x̂ − mean(x̂)": x_hat - x_hat.mean(dim=(2, 3), keepdim=True),
            "source detail x − blur(x)": x - _blur(x), "high-pass of x − x̂": e - _blur(e)}
    out = {k: float(F.cosine_similarity(v.flatten(1), g, dim=1).mean()) for k, v in dirs.items()}
    basis = torch.stack([v.flatten(1) for v in dirs.values()], 2)
    best = []
    for i in range(basis.shape[0]):
        coef = torch.linalg.lstsq(basis[i], g[i : i + 1].T).solution
        best.append(float(F.cosine_similarity((basis[i] @ coef).T, g[i : i + 1])))
    out["best mix of the above"] = sum(best) / len(best)
    return out


def train_recipe(name: str, codec, held, steps: int) -> list[dict]:
    arch, kinds, slope, lr = RECIPES[name]
    torch.manual_seed(0)
    proxy = PooledProxy() if arch == "pooled" else ProxIQANet(128)  # randomly initialised, as in the trainer
    opt = torch.optim.Adam(proxy.parameters(), lr=lr)
    loader = PatchLoader(training_files(), batch_size=8, patch_size=128, crop_size=256, seed=1)
    hx, hxh = held
    history, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        x = next(loader)
        with torch.no_grad():
            x_hat = codec(x)["x_hat"].clamp(0, 1)
        xs, hats = (torch.cat([x, x]), torch.cat([x_hat, probes(x, x_hat, kinds, proxy)])) if kinds else (x, x_hat)
        m = libvmaf(xs, hats)
        opt.zero_grad()
        m_hat = proxy(xs, hats)
        loss = metric_loss(m_hat, m)
        if slope:
            n = x.shape[0]
            loss = loss + slope * slope_loss(m_hat[:n], m_hat[n:], m[:n], m[n:])
        loss.backward()
        opt.step()
        if step % 100 == 0:
            diag = gradient_diagnostics(hx, hxh, proxy, D.vmaf)
            with torch.no_grad():
                error = float((proxy(hx, hxh) - libvmaf(hx, hxh)).abs().mean())
            history.append({"step": step, **diag, "heldout_abs_error": error,
                            "seconds": round(time.perf_counter() - start, 1)})
            print(name, history[-1], file=sys.stderr, flush=True)
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES), metavar="RECIPE")
    parser.add_argument("--out", default="reports/lab_science")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = runs_root() / "lab" / "bls64-mse-lmbda0.025-from0.0932" / "model.pt"
    codec, _ = load_checkpoint(model, device="cpu")
    codec.train()
    held = held_out(codec)
    result = {"command": "python " + shlex.join(sys.argv), "codec": str(model), "steps": args.steps,
              "directions": directions(*held), "recipes": {}}
    for name in args.recipes:
        result["recipes"][name] = train_recipe(name, codec, held, args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "proxy_slope.json").write_text(json.dumps(result, indent=2))
    lines = ["# Can a proxy learn VMAF's slope? (fixed lab MSE codec, λ = 0.025; 32 held-out 128² patches)", "",
             f"Command: `{result['command']}`.", "",
             "## How much of ∂VMAF/∂x̂ simple directions carry (cosine, mean over patches)", "",
             "| direction | cosine with ∂VMAF/∂x̂ |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in result["directions"].items()]
    lines += ["", "## A proxy trained on the codec's reconstructions, by recipe", "",
              "Cosine of the proxy's gradient with the exact one (MSE direction: "
              f"{result['recipes'][args.recipes[0]][-1]['grad_cos_mse']:.3f}), mean over the last 3 measurements, "
              "the norm ratio ‖∂M̂/∂x̂‖/‖∂VMAF/∂x̂‖ and the held-out score error at the end.", "",
              "| recipe | cos, steps " + "/".join(str(h["step"]) for h in result["recipes"][args.recipes[0]])
              + " | cos, last 3 | norm ratio | score error |", "|---|---|---:|---:|---:|"]
    for name, history in result["recipes"].items():
        tail = history[-3:]
        cosines = " ".join(f"{h['grad_cos_proxy']:.3f}" for h in history)
        lines.append(f"| {name} | {cosines} | "
                     f"{sum(h['grad_cos_proxy'] for h in tail) / len(tail):.3f} | {history[-1]['grad_scale_proxy']:.3f} | "
                     f"{history[-1]['heldout_abs_error']:.2f} |")
    (out / "proxy_slope.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
