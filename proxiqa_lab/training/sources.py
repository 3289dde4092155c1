"""What a training run starts from: its training images, the codec it fine-tunes, the proxy it loads.

:func:`preflight` checks all of it, and the device, before a run folder is touched, so a command
that cannot run leaves nothing behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from proxiqa_lab.device import default_device
from proxiqa_lab.errors import CheckpointError
from proxiqa_lab.training.config import TrainConfig
from proxiqa_lab.training.objectives import MetricFn, parse_objective

__all__ = ["load_init_checkpoint", "load_proxy", "preflight", "resolve_data"]


def resolve_data(data: str, root: str | None) -> tuple[Any, str]:
    """Training sources for ``config.data`` and a description of them for the run metadata."""
    from proxiqa_lab import data as D
    from proxiqa_lab.errors import DataNotFoundError

    if data == "samples":
        return D.sample_images(), D.SAMPLE_IMAGES_LABEL
    if data in ("auto", "training"):
        try:
            files = D.training_files(root)
            return files, f"training_files(): bsds500 train+val and unsplash_x4 ({len(files)} images)"
        except DataNotFoundError:
            if data == "training":
                raise
            return D.sample_images(), f"{D.SAMPLE_IMAGES_LABEL} (no training dataset found under the data root)"
    files: list[Path] = []
    for item in data.split(","):
        name, _, split = item.strip().partition(":")
        files += D.dataset_files(name, root, split or None)
    return files, f"datasets {data} ({len(files)} images)"


def load_init_checkpoint(config: TrainConfig) -> tuple[torch.nn.Module, str]:
    """The codec of ``config.init_checkpoint`` (a ``model.pt`` or a run folder), checked against the
    run's architecture, and a note for the run's metadata."""
    from proxiqa_lab.models import load_checkpoint

    path = Path(config.init_checkpoint)
    if path.is_dir():
        path = path / "model.pt"
    model, extra = load_checkpoint(path, device="cpu")
    want = {"N": config.N} if config.architecture == "bls" else {"N": config.N, "M": config.M or config.N * 3 // 2}
    got_arch = getattr(model, "architecture", type(model).__name__.lower())
    got = {k: v for k, v in dict(model.config).items() if k in want}
    if got_arch != config.architecture or got != want:
        raise ValueError(f"init_checkpoint {str(path)!r} holds {got_arch} {got}, but this run is "
                         f"{config.architecture} {want}; set architecture/N/M to match it")
    note = (f"codec initialised from {path} (objective {extra.get('objective')!r}, lambda {extra.get('lmbda')!r}, "
            f"step {extra.get('step')!r}): fine-tuned, whereas the paper trained every model from scratch")
    return model, note


def load_proxy(path: str | os.PathLike, metric: str | None, patch_size: int) -> torch.nn.Module:
    """A proxy checkpoint (``pretrain`` or a run's ``proxy.pt``) of ``metric`` and ``patch_size``."""
    from proxiqa_lab.models import ProxIQANet, load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"proxy_init {str(path)!r} does not exist; run `proxiqa-lab pretrain` first")
    net, info = load_checkpoint(path, device="cpu")
    if not isinstance(net, ProxIQANet):
        raise CheckpointError(f"proxy_init {str(path)!r} holds a {type(net).__name__}, not a ProxIQA network")
    if info.get("metric") not in (None, metric):
        raise ValueError(f"proxy_init {str(path)!r} was trained on {info.get('metric')!r}, not {metric!r}")
    if net.patch_size != patch_size:
        raise ValueError(f"proxy_init {str(path)!r} scores {net.patch_size}² patches, but this run trains on "
                         f"{patch_size}² patches")
    return net


def preflight(config: TrainConfig, metric: MetricFn | None = None) -> None:
    """Check what a run needs beyond its values (device, data, starting weights) before its folder is touched."""
    objective = parse_objective(config.objective, m_bar=config.m_bar, metric_fn=metric)
    default_device(config.device)
    resolve_data(config.data, config.data_root)
    if config.init_checkpoint:
        load_init_checkpoint(config)
    if config.proxy_init and objective.uses_proxy:
        load_proxy(config.proxy_init, objective.metric, config.patch_size)
