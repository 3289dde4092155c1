"""The training loop: one trainer for every objective, alternating codec and proxy steps (Fig. 3).

Each step, for a ``proxy:<metric>`` objective:

1. **codec step** (eq. 10): the codec encodes/decodes the batch; the ProxIQA network, frozen,
   scores ``(x, x̂)`` (its parameters get no gradient from this loss: ``requires_grad`` is off, or,
   in the fused schedule below, the backward pass is restricted to the codec's parameters); Adam
   updates the codec, then the entropy bottleneck's auxiliary loss takes its own Adam step
   (CompressAI; aux lr 1e-3);
2. **true metric**: ``M(x, x̂)`` of the batch's reconstructions (clamped to [0, 1], detached) in
   one batched :func:`proxiqa_lab.metrics.score` call;
3. **proxy step** (eq. 11): Adam updates the ProxIQA network on ``(x, x̂, M)``.

How step (ii) is scheduled:

* **fused** (default on CPU, one process): the true metric starts in a worker thread right after
  the codec's forward pass, so libvmaf (an ffmpeg subprocess, which does not hold the GIL) runs
  while the codec back-propagates; the proxy step then reuses the proxy's forward pass from the
  codec step. The proxy has the same weights in both uses and x̂ is the same, so this is exactly
  the sequential update of Fig. 3, with one proxy forward pass fewer.
* **overlap** (``overlap_metric=True``, default on CUDA): the true metric of batch t runs while the
  codec takes its step on batch t+1; the proxy step for batch t then runs after that codec step, so
  the codec sees a proxy that lags one step behind. A checkpoint stores the pending batch
  (x, x̂, M), so a resumed run equals an uninterrupted one.
* under DDP without overlap: codec step, metric, then a separate proxy step (gradients averaged).

The run folder (:mod:`proxiqa_lab.training.runs`) holds ``config.json``, ``run.json`` (metadata),
``log.csv``, ``tensorboard/``, ``checkpoints/last.pt`` (written atomically every
``checkpoint_every`` steps), ``checkpoints/step_<K>.pt`` for the steps in ``keep_checkpoints_at``,
and at the end ``model.pt`` (codec after ``update()``) and ``proxy.pt``. What a run starts from
is checked by :func:`proxiqa_lab.training.sources.preflight` before the folder is touched.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from proxiqa_lab.device import default_device
from proxiqa_lab.errors import CheckpointError, TrainingError
from proxiqa_lab.fileio import atomic_write_text
from proxiqa_lab.training import distributed as ddp
from proxiqa_lab.training.checkpointing import atomic_save, load_state, plain, rng_state, run_lock, set_rng_state
from proxiqa_lab.training.config import TrainConfig, make_config
from proxiqa_lab.training.objectives import MetricFn, Objective, codec_loss, default_metric_scale, parse_objective
from proxiqa_lab.training.runlog import RunLog
from proxiqa_lab.training.runs import LOG_COLUMNS, Run, default_out, load_run, prepare_out
from proxiqa_lab.training.sources import load_init_checkpoint, load_proxy, preflight, resolve_data

__all__ = ["LOG_COLUMNS", "Run", "Trainer", "load_run", "train"]



def learning_rate(config: TrainConfig, step: int) -> float:
    """Codec learning rate at ``step`` (1-based): ``lr``, times ``lr_drop_factor`` after ``lr_drop_step``."""
    if config.lr_drop_step is not None and step > config.lr_drop_step:
        return config.lr * config.lr_drop_factor
    return config.lr


def data_seed(seed: int, rank: int) -> int:
    """Each DDP rank draws different patches; rank 0 uses ``seed`` itself."""
    return seed + 7919 * rank


class Trainer:
    """Trains one codec with one objective; see the module docstring.

    Args:
        config: a validated :class:`TrainConfig`.
        out: the run folder.
        metric: a callable ``M(x, x_hat) -> (N,)`` scores for ``proxy:custom`` objectives.
    """

    def __init__(self, config: TrainConfig, out: Path, metric: MetricFn | None = None):
        self.config = config
        self.out = Path(out)
        self.objective: Objective = parse_objective(config.objective, m_bar=config.m_bar, metric_fn=metric)
        device = default_device(config.device)
        self.dist = ddp.setup(device)
        self.device = ddp.local_device(device, self.dist)
        self.overlap = (self.device.type == "cuda") if config.overlap_metric is None else bool(config.overlap_metric)
        self.metric_scale = config.metric_scale
        if self.objective.scores_metric and self.metric_scale is None:
            self.metric_scale = default_metric_scale(self.objective.m_bar)
        self.ckpt_dir = self.out / "checkpoints"
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple | None = None
        self.log = RunLog(self.out, main=self.dist.is_main)
        self._last_images: tuple[torch.Tensor, torch.Tensor] | None = None
        #: Fuse the proxy's two uses in one forward pass and run the metric during the codec's backward
        #: (single process, no overlap); off only to measure the unfused sequence.
        self.fuse = True
        #: The proxy trains on more than the codec's own pairs, or more than once per step, so its
        #: step runs its own forward pass (the fused reuse of the codec step's M̂ does not apply).
        self.proxy_recipe = bool(config.proxy_probes or config.proxy_pristine > 0 or config.proxy_steps > 1)
        self.exact_metric = None
        if config.diagnose_every:
            from proxiqa_lab.metrics.differentiable import exact

            self.exact_metric = exact(self.objective.metric)
        self.notes: list[str] = []

    # ------------------------------------------------------------------ setup
    def build(self) -> None:
        """Models, optimisers and the patch loader, seeded by ``config.seed``."""
        from proxiqa_lab.data import PatchLoader
        from proxiqa_lab.models import ProxIQANet, build_model

        cfg = self.config
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)
        if cfg.init_checkpoint:
            self.codec = self._load_init(cfg.init_checkpoint)
        else:
            kwargs = {"N": cfg.N} if cfg.architecture == "bls" else {"N": cfg.N, "M": cfg.M or cfg.N * 3 // 2}
            self.codec = build_model(cfg.architecture, **kwargs)
        factor = getattr(self.codec, "downsampling_factor", 64 if cfg.architecture == "bmshj" else 16)
        if cfg.patch_size % factor:
            raise ValueError(f"patch_size must be a multiple of {factor} for {cfg.architecture}, got {cfg.patch_size}")
        self.codec.to(self.device).train()
        self.proxy = None
        if self.objective.uses_proxy:
            if self.objective.kind == "pretrained-proxy":
                self.proxy = self._pretrained_proxy()
            elif cfg.proxy_init:
                self.proxy = self._load_proxy(Path(cfg.proxy_init))
                self.notes.append(f"alternating proxy started from {cfg.proxy_init}")
            else:
                self.proxy = ProxIQANet(patch_size=cfg.patch_size)
            self.proxy.to(self.device).train()
        self.codec_ddp = ddp.wrap(self.codec, self.device, self.dist)
        self.proxy_ddp = ddp.wrap(self.proxy, self.device, self.dist) if self.objective.trains_proxy else self.proxy
        named = dict(self.codec.named_parameters())
        main = [p for n, p in named.items() if not n.endswith(".quantiles") and p.requires_grad]
        aux = [p for n, p in named.items() if n.endswith(".quantiles")]
        self.optimizer = torch.optim.Adam(main, lr=cfg.lr)
        self.aux_optimizer = torch.optim.Adam(aux, lr=cfg.aux_lr)
        self.proxy_optimizer = (
            torch.optim.Adam(self.proxy.parameters(), lr=cfg.proxy_lr) if self.objective.trains_proxy else None
        )
        sources, self.data_description = resolve_data(cfg.data, cfg.data_root)
        self.loader = PatchLoader(sources, batch_size=cfg.batch_size, patch_size=cfg.patch_size,
                                  crop_size=cfg.crop_size, seed=data_seed(cfg.seed, self.dist.rank))
        # Each rank adds its own quantisation noise (rank 0 keeps the single-process stream).
        torch.manual_seed(cfg.seed + 7919 * self.dist.rank)
        self.step = 0
        self.elapsed = 0.0

    def _load_init(self, path: str):
        model, note = load_init_checkpoint(self.config)
        self.notes.append(note)
        return model

    def _pretrained_proxy(self):
        """Sec. III-C: a proxy pretrained on synthetic distortions, then frozen for the whole run."""
        from proxiqa_lab.training import pretrain

        cfg = self.config
        path = Path(cfg.proxy_init) if cfg.proxy_init else self.out / "pretrained_proxy.pt"
        if path.is_file():
            self.notes.append(f"proxy pretrained on synthetic distortions, loaded from {path}, frozen")
            return self._load_proxy(path)
        if cfg.proxy_init:
            raise FileNotFoundError(f"proxy_init {str(path)!r} does not exist; run `proxiqa-lab pretrain` first")
        if self.objective.metric_fn is not None:
            raise ValueError("pretrained-proxy with a custom metric needs proxy_init (a pretrained proxy file)")
        sources, _ = resolve_data(cfg.data, cfg.data_root)
        net, report, info = pretrain.pretrain_for_run(sources, self.objective.metric, cfg.profile,
                                                      patch_size=cfg.patch_size, seed=cfg.seed, device="cpu",
                                                      progress=cfg.progress and self.dist.is_main)
        if self.dist.is_main:
            pretrain.save_pretrained_proxy(path, net, report, info)
        self.notes.append(f"proxy pretrained on synthetic distortions at the start of the run ({path}), frozen")
        return net

    def _load_proxy(self, path: Path):
        return load_proxy(path, self.objective.metric, self.config.patch_size)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """Everything needed to resume exactly (all ranks' RNG and loader states)."""
        codec_state = {k: v.detach().cpu() for k, v in self.codec.state_dict().items()}
        digest = hashlib.sha256()
        for k, v in codec_state.items():
            digest.update(k.encode())
            digest.update(v.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if v.numel() else b"")
        mine = {"rng": rng_state(), "loader": plain(self.loader.state_dict()), "codec_sha256": digest.hexdigest(),
                "pending": self._pending_state()}
        per_rank = ddp.gather(mine, self.dist)
        if len({r["codec_sha256"] for r in per_rank}) > 1:
            raise TrainingError(f"the codec weights differ between DDP ranks at step {self.step}; this is a bug")
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            "codec": codec_state,
            "proxy": None if self.proxy is None else {k: v.detach().cpu() for k, v in self.proxy.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "aux_optimizer": self.aux_optimizer.state_dict(),
            "proxy_optimizer": None if self.proxy_optimizer is None else self.proxy_optimizer.state_dict(),
            "scheduler": {"lr": learning_rate(self.config, max(self.step, 1)), "lr_base": self.config.lr,
                          "lr_drop_step": self.config.lr_drop_step, "lr_drop_factor": self.config.lr_drop_factor},
            "ranks": per_rank,
        }

    def load(self, state: dict[str, Any]) -> None:
        if len(state["ranks"]) != self.dist.world_size:
            raise CheckpointError(f"the checkpoint was written by {len(state['ranks'])} process(es); resume it with "
                                  f"the same number (got {self.dist.world_size})")
        self.codec.load_state_dict(state["codec"])
        if self.proxy is not None and state["proxy"] is not None:
            self.proxy.load_state_dict(state["proxy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.aux_optimizer.load_state_dict(state["aux_optimizer"])
        if self.proxy_optimizer is not None:
            self.proxy_optimizer.load_state_dict(state["proxy_optimizer"])
        mine = state["ranks"][self.dist.rank]
        pending = mine.get("pending")
        if pending is not None:
            self._pending = (pending["step"], pending["x"].to(self.device), pending["x_hat"].to(self.device),
                             pending["m"], dict(pending["row"]))
        self.loader.load_state_dict(mine["loader"])
        set_rng_state(mine["rng"])
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))

    def save(self, kept: bool) -> None:
        """Write ``checkpoints/last.pt`` (and ``step_<K>.pt`` if ``kept``); collective under DDP."""
        state = self.state()
        self.log.checkpoint(self.step, self._last_images)
        if self.dist.is_main:
            atomic_save(state, self.ckpt_dir / "last.pt")
            if kept:
                self._save_model(self.ckpt_dir / f"step_{self.step}.pt", training=state)
        ddp.barrier(self.dist)

    def _save_model(self, path: Path, training: dict | None = None) -> Path:
        """The codec after ``update()`` (a copy), loadable by ``load_checkpoint`` / ``LearnedCodec``."""
        from proxiqa_lab.models import save_checkpoint

        codec = copy.deepcopy(self.codec).cpu().eval()
        codec.update(force=True)
        extra = dict(lmbda=self.config.lmbda, objective=self.objective.name, step=self.step,
                     alpha=self.config.alpha, profile=self.config.profile, notes=list(self.notes))
        if training is not None:
            extra["training"] = training
        return save_checkpoint(path, codec, **extra)

    # ------------------------------------------------------------------ steps
    def codec_step(
        self, x: torch.Tensor, step: int, fused: bool = False
    ) -> tuple[dict[str, float], torch.Tensor, torch.Tensor | None, Future | None]:
        """One codec update (eq. 8/10/13/14) and one auxiliary-loss update.

        With ``fused`` (``proxy:*``, one process, no overlap), the true metric of this batch starts in
        the worker thread right after the forward pass, so libvmaf runs while the codec back-propagates,
        and the proxy's forward pass is kept (``requires_grad`` on, but the codec loss only reaches the
        codec's parameters) for :meth:`fused_proxy_step`. The proxy has the same weights in both
        uses, so this computes exactly steps (i)-(iii) of Fig. 3 with one proxy forward pass fewer.

        With a proxy recipe (probes, the pristine pair, several proxy steps), ``fused`` still starts
        the true metric, of the proxy's whole batch (:meth:`proxy_pairs`), before the backward pass,
        but the proxy's graph is not kept: its step runs its own forward pass.

        Returns:
            ``(values, x̂, M̂, future, pairs)``: logged values, the detached reconstruction, the proxy's
            scores (with their graph when ``fused`` without a recipe), the pending true-metric
            computation (``fused`` only) and the proxy's pairs it scores (``fused`` only).
        """
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        keep_graph = fused and not self.proxy_recipe
        if self.proxy is not None:
            self.proxy.requires_grad_(keep_graph)
        self.optimizer.zero_grad(set_to_none=True)
        self.aux_optimizer.zero_grad(set_to_none=True)
        out = self.codec_ddp(x)
        x_hat = out["x_hat"].detach()
        future = pairs = None
        if fused:
            pairs = self.proxy_pairs(x, x_hat.clamp(0, 1))
            future = self._executor.submit(self._metric, pairs[0].detach().cpu(), pairs[1].cpu())
        terms = codec_loss(self.objective, x, out, lmbda=cfg.lmbda, alpha=cfg.alpha,
                           metric_scale=self.metric_scale, proxy=self.proxy, proxy_abs=cfg.proxy_abs)
        aux_loss = self.codec.aux_loss()
        with torch.no_grad():
            mse_clamped = (x - x_hat.clamp(0, 1)).pow(2).mean()
        names = ["loss", "bpp", "mse"] + (["proxy"] if "proxy" in terms else [])
        values = torch.stack([terms[k].detach().float() for k in names] + [aux_loss.detach().float(),
                                                                          mse_clamped.float()]).tolist()
        row = dict(zip(names, values[: len(names)]))
        row["aux_loss"], mse_c = values[len(names)], values[len(names) + 1]
        try:
            self._check_finite(step, row)
        except TrainingError:
            if future is not None:
                future.cancel()
            raise
        main_params = self.optimizer.param_groups[0]["params"]
        if keep_graph:
            terms["loss"].backward(inputs=main_params, retain_graph=True)
        else:
            terms["loss"].backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(main_params, cfg.grad_clip)
        self.optimizer.step()
        aux_loss.backward()
        self.aux_optimizer.step()
        if self.proxy is not None and not keep_graph:
            self.proxy.requires_grad_(self.objective.trains_proxy)
        row["psnr"] = 10 * math.log10(1 / max(mse_c, 1e-10))
        row["lr"] = learning_rate(cfg, step)
        m_hat = terms.get("m_hat")
        return row, x_hat, m_hat if keep_graph or m_hat is None else m_hat.detach(), future, pairs

    def proxy_pairs(self, x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pairs of the proxy step (eq. 11): ``(x, x̂)``, plus the recipe's probes and pristine pair."""
        if not self.proxy_recipe:
            return x, x_hat
        from proxiqa_lab.training.proxy_batch import proxy_batch

        return proxy_batch(x, x_hat, self.config.proxy_probes, self.config.proxy_pristine, self.proxy)

    def fused_proxy_step(self, m_hat: torch.Tensor, m: torch.Tensor) -> float:
        """Eq. (11) on the proxy scores kept by a fused codec step (same weights, same x̂)."""
        from proxiqa_lab.losses import metric_loss

        self.proxy_optimizer.zero_grad(set_to_none=True)
        loss = metric_loss(m_hat, m.to(device=m_hat.device, dtype=m_hat.dtype))
        loss.backward(inputs=list(self.proxy.parameters()))
        self.proxy_optimizer.step()
        return float(loss.detach())

    def proxy_step(self, x: torch.Tensor, x_hat: torch.Tensor, m: torch.Tensor, n: int | None = None) -> float:
        """One ProxIQA update on the latest reconstructions and their true scores, eq. (11).

        With probes in the batch (the first ``n`` pairs are the codec's, the next ``n`` their probes)
        and ``proxy_slope_weight``, the loss adds the slope term of :func:`~proxiqa_lab.losses.slope_loss`.
        """
        from proxiqa_lab.losses import metric_loss, slope_loss

        self.proxy_optimizer.zero_grad(set_to_none=True)
        m_hat = self.proxy_ddp(x, x_hat)
        m = m.to(device=m_hat.device, dtype=m_hat.dtype)
        loss = metric_loss(m_hat, m)
        if self.config.proxy_slope_weight and self.config.proxy_probes and n:
            loss = loss + self.config.proxy_slope_weight * slope_loss(m_hat[:n], m_hat[n:2 * n], m[:n], m[n:2 * n])
        loss.backward()
        self.proxy_optimizer.step()
        return float(loss.detach())

    def _check_finite(self, step: int, values: dict[str, float]) -> None:
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if ddp.broadcast_flag(bool(bad), self.dist, self.device):
            what = ", ".join(f"{k}={values[k]}" for k in bad) if bad else "on another rank"
            last = self.ckpt_dir / "last.pt"
            kept = (f"the last good checkpoint ({last}, step {load_state(last)['step']}) is untouched"
                    if last.is_file() else f"no checkpoint was written yet (the first is due at step "
                    f"{self.config.checkpoint_every}), so a rerun starts from step 0")
            raise TrainingError(
                f"non-finite value at step {step} ({what}) with objective {self.objective.name!r}; training "
                f"stopped, {kept}. Try a lower lr, grad_clip, or another lmbda/alpha"
            )

    def _metric(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        return self.objective.true_metric(x, x_hat)

    def _finish(self, step: int, x, x_hat, m, row: dict, m_hat: torch.Tensor | None = None) -> None:
        """Use the true scores ``m`` of the proxy's pairs of batch ``step``: proxy step(s) (eq. 11) and
        the log row, whose ``metric_true`` is over the codec's own reconstructions (the first ``_n`` pairs).

        ``m_hat`` (with its graph) comes from a fused codec step; else the proxy step runs its own forward.
        """
        m_vals = m.tolist()[: row.get("_n", len(m))]
        row["metric_true"] = float(np.mean(m_vals))
        row["metric_true_std"] = float(np.std(m_vals))
        self._check_finite(step, {"metric_true": row["metric_true"]})
        if self.objective.trains_proxy:
            if m_hat is not None:
                row["metric_loss"] = self.fused_proxy_step(m_hat, m)
            else:
                for _ in range(self.config.proxy_steps):
                    row["metric_loss"] = self.proxy_step(x, x_hat, m, row.get("_n"))
            self._check_finite(step, {"metric_loss": row["metric_loss"]})
        self.log.write(row)

    def _finish_pending(self) -> None:
        if self._pending is not None:
            step, x, x_hat, m, row = self._pending
            self._pending = None
            self._finish(step, x, x_hat, m.result() if isinstance(m, Future) else m, row)

    def _pending_state(self) -> dict | None:
        """The batch whose proxy step is still due (overlap mode), stored so resume equals no interruption."""
        if self._pending is None:
            return None
        step, x, x_hat, m, row = self._pending
        if isinstance(m, Future):
            m = m.result()
            self._pending = (step, x, x_hat, m, row)
        return {"step": step, "x": x.detach().cpu(), "x_hat": x_hat.detach().cpu(), "m": m, "row": dict(row)}

    def train_step(self, step: int) -> dict:
        """Steps (i)-(iii) of the alternation for batch ``step``."""
        start = time.perf_counter()
        x = next(self.loader).to(self.device, non_blocking=True)
        fused = self.fuse and self.objective.trains_proxy and not self.overlap and not self.dist.enabled
        values, x_hat, m_hat, future, pairs = self.codec_step(x, step, fused=fused)
        row: dict[str, Any] = {"step": step, **values, "_n": x.shape[0]}
        row["proxy_loss"] = row.pop("proxy", float("nan"))
        if m_hat is not None:
            scores = m_hat.detach()
            row["metric_proxy"] = float(scores.mean())
            row["metric_proxy_std"] = float(scores.std(correction=0)) if scores.numel() > 1 else 0.0
        logged = step % self.config.log_every == 0 or step == self.config.steps
        if logged:
            self._last_images = (x[:2].detach().cpu(), x_hat[:2].detach().cpu())
        if logged and self.exact_metric is not None and step % self.config.diagnose_every == 0:
            from proxiqa_lab.training.proxy_batch import gradient_diagnostics

            row.update(gradient_diagnostics(x, x_hat.clamp(0, 1), self.proxy, self.exact_metric))
        needs_metric = self.objective.trains_proxy or (self.objective.scores_metric and logged)
        if not needs_metric:
            row["seconds"] = time.perf_counter() - start
            if logged:
                self.log.write(row)
            return row
        x_hat = x_hat.clamp(0, 1)
        row = row if logged else {**row, "_skip": True}
        if fused:
            m = future.result()
            row["seconds"] = time.perf_counter() - start
            self._finish(step, *pairs, m, row, m_hat=None if self.proxy_recipe else m_hat)
            return row
        if self.objective.trains_proxy:
            x, x_hat = self.proxy_pairs(x, x_hat)
        if self.overlap:
            future = self._executor.submit(self._metric, x.detach().cpu(), x_hat.cpu())
            self._finish_pending()
            row["seconds"] = time.perf_counter() - start
            self._pending = (step, x, x_hat, future, row)
        else:
            m = self._metric(x, x_hat)
            row["seconds"] = time.perf_counter() - start
            self._finish(step, x, x_hat, m, row)
        return row

    def warm_up_proxy(self, steps: int) -> float:
        """``steps`` proxy-only updates (eq. 11) on the starting codec's reconstructions; the last metric loss."""
        loss = math.nan
        for _ in range(steps):
            x = next(self.loader).to(self.device, non_blocking=True)
            with torch.no_grad():
                x_hat = self.codec_ddp(x)["x_hat"].clamp(0, 1)
            n = x.shape[0]
            x, x_hat = self.proxy_pairs(x, x_hat)
            m = self._metric(x, x_hat)
            for _ in range(self.config.proxy_steps):
                loss = self.proxy_step(x, x_hat, m, n)
        return loss

    # ------------------------------------------------------------------ run
    def run(self) -> Run:
        """Resume from ``checkpoints/last.pt`` when present, train to ``config.steps``, write the models."""
        cfg = self.config
        self.build()
        last = self.ckpt_dir / "last.pt"
        if last.is_file():
            state = load_state(last)
            self.load(state)
            if self.dist.is_main:
                print(f"resuming from step {self.step} ({self.out})", file=sys.stderr)
        if self.dist.is_main:
            self._write_metadata("running")
        # A batch whose proxy step was pending at the checkpoint logs its row after resuming.
        first_row = self.step + 1 if self._pending is None else self._pending[0]
        previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
        if cfg.deterministic and self.device.type == "cpu":  # on CUDA it would slow cuDNN down
            torch.use_deterministic_algorithms(True, warn_only=True)
        self._executor = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="true-metric")
                          if self.objective.uses_proxy else None)
        try:
            bar = dict(total=cfg.steps, initial=self.step, desc=f"{self.objective.name} λ={cfg.lmbda:g}")
            self.notes += self.log.open(first_row - 1, bar=bar if cfg.progress else None)
            if self.step == 0 and cfg.proxy_warmup and self.objective.trains_proxy:
                t0 = time.perf_counter()
                loss = self.warm_up_proxy(cfg.proxy_warmup)
                self.elapsed += time.perf_counter() - t0
                self.notes.append(f"proxy warmed up for {cfg.proxy_warmup} steps on the starting codec's "
                                  f"reconstructions (last metric loss {loss:.4g})")
            keep = set(cfg.keep_checkpoints_at)
            while self.step < cfg.steps:
                step = self.step + 1
                t0 = time.perf_counter()
                self.train_step(step)
                self.step = step
                self.elapsed += time.perf_counter() - t0
                self.log.advance()
                if step % cfg.checkpoint_every == 0 or step in keep or step == cfg.steps:
                    self.save(kept=step in keep)
            self._finish_pending()
            if self.dist.is_main:
                self._save_model(self.out / "model.pt")
                if self.proxy is not None:
                    from proxiqa_lab.models import save_checkpoint

                    save_checkpoint(self.out / "proxy.pt", copy.deepcopy(self.proxy).cpu(), metric=self.objective.metric,
                                    m_bar=self.objective.m_bar, step=self.step, objective=self.objective.name,
                                    frozen=not self.objective.trains_proxy)
                self._write_metadata("complete")
            ddp.barrier(self.dist)
        finally:
            if self._pending is not None and isinstance(self._pending[3], Future):
                self._pending[3].cancel()
            self._pending = None
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self.log.close()
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        return Run(self.out, cfg)

    def _write_metadata(self, status: str) -> None:
        meta = {
            "status": status,
            "step": self.step,
            "train_seconds": round(self.elapsed, 1),  # wall time of the training steps, summed over resumes
            "objective": {"name": self.objective.name, "kind": self.objective.kind, "metric": self.objective.metric,
                          "m_bar": self.objective.m_bar, "metric_scale": self.metric_scale},
            "lmbda_convention": "CompressAI: loss = lmbda * 255^2 * MSE + bpp (x in [0, 1])",
            "alpha_source": "0.5: the released code (treammm/Compression) weighs proxy and 255^2-MSE terms equally",
            "overlap_metric": self.overlap,
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "data": self.data_description,
            "notes": self.notes,
            "torch": torch.__version__,
        }
        atomic_write_text(self.out / "run.json", json.dumps(meta, indent=2))


def train(
    config: TrainConfig | str | None = None,
    *,
    out: str | os.PathLike | None = None,
    metric: MetricFn | None = None,
    resume: bool = True,
    **overrides: Any,
) -> Run:
    """Train a codec (and its proxy) into a run folder; resume it if the folder holds a checkpoint.

    Args:
        config: a :class:`TrainConfig`, a profile name (``"smoke"``, ``"lab"``, ``"paper"``) or ``None`` (lab).
        out: the run folder (default ``runs/<profile>-<arch><N>-<objective>-lmbda<λ>``).
        metric: a callable ``M(x, x_hat) -> (N,)`` scores, for ``objective="proxy:custom"`` (needs ``m_bar``).
        resume: continue a run found in ``out`` (its config must match); ``False`` requires an empty ``out``.
        **overrides: any ``TrainConfig`` field, e.g. ``objective="proxy:vmaf", lmbda=0.0067, steps=500``.

    Returns:
        The :class:`Run` (``.log``, ``.model_path``, ``.proxy_path``).

    Raises:
        ValueError: for bad settings or a conflicting run folder (before any work is done).
        TrainingError: when a loss becomes NaN/Inf (the last good checkpoint is kept).
    """
    if callable(overrides.get("objective")):
        metric = overrides["objective"]
        overrides["objective"] = "proxy:custom"
    cfg = make_config(config, **overrides)
    preflight(cfg, metric)
    out = Path(out) if out is not None else default_out(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 checks, prepares and locks the folder
        return Trainer(cfg, out, metric=metric).run()
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        prepare_out(out, cfg, resume)
        return Trainer(cfg, out, metric=metric).run()
