"""Proxy pretraining on a synthetic-distortion database (Sec. III-C).

The paper's Sec. III-C asks what goes wrong when the proxy ``M̂`` is pretrained once on an
existing database of synthetic distortions (the Waterloo Exploration database: JPEG,
JPEG 2000, Gaussian blur and white Gaussian noise at discrete severity levels), labelled
with the true metric ``M``, then frozen and used as the codec's loss. This module builds
such a database from any source images, pretrains :class:`~proxiqa_lab.models.ProxIQANet`
on it with the metric loss of eq. (11), and measures how well the proxy predicts ``M`` on
held-out *source images* (PLCC, SROCC, RMSE). Freezing the result and plugging it into
eq. (9)/(10) reproduces the adversarial reconstructions of Fig. 6 and Fig. 7(a).

The database itself is built by :mod:`proxiqa_lab.training.distortions`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from proxiqa_lab.device import default_device
from proxiqa_lab.errors import CheckpointError, TrainingError
from proxiqa_lab.training.distortions import (  # noqa: F401  (re-exported: the pretraining API in one place)
    DEFAULT_LEVELS,
    DISTORTION_RANGES,
    KINDS,
    MAX_LEVELS,
    REFERENCE_KIND,
    SCORE_CHUNK,
    DistortionDatabase,
    build_distortion_database,
    distort,
    severity_levels,
)

#: Defaults of ``proxiqa-lab pretrain`` and the notebooks, per profile (Adam, lr 1e-3, holdout 0.2).
#: Measured on a shared 2-core CPU, one torch thread (``--threads 1``), seed 0:
#: - smoke: 336 pairs from the 4 scikit-image photos, 2 s to build, 8 s to train; a pipeline
#:   check only (one held-out image; the proxy does not learn much in 48 steps).
#: - lab: 6,300 pairs (one 128x128 patch per BSDS500 train+val image), about 3.5 min to build
#:   (207 s distorting + 10 s VMAF), 12.6 min to train; held-out (60 images) PLCC 0.903,
#:   SROCC 0.927, RMSE 13.0 VMAF points (PLCC 0.856 after the first epoch).
#: - paper: 27,720 pairs (bsds500 + unsplash_x4, 4 patches each); not timed here.
PRETRAIN_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"dataset": "samples", "patch_size": 64, "patches_per_image": 4, "epochs": 3, "batch_size": 16},
    "lab": {"dataset": "bsds500", "patch_size": 128, "patches_per_image": 1, "epochs": 4, "batch_size": 32},
    "paper": {"dataset": "training", "patch_size": 128, "patches_per_image": 4, "epochs": 10, "batch_size": 32},
}

#: The proxy a ``pretrained-proxy:<metric>`` training run pretrains for itself (no ``proxy_init``),
#: by the run's profile: a database of ``patches_per_image`` patches of the first ``images``
#: training images (None: all) at ``levels`` severities, pretrained for ``epochs``. Other profiles
#: (paper) train as lab. Measured for ``proxiqa-lab train --profile smoke --objective
#: pretrained-proxy:vmaf`` on a shared 2-core CPU (``OMP_NUM_THREADS=1``, 64 px patches): 156 pairs,
#: 1.0 s to build and 1.4 s to pretrain; with the lab sizes (all 330 training images, 6,930 pairs)
#: it took 12.5 s and 31.9 s.
RUN_PRETRAINING: dict[str, dict[str, Any]] = {
    "smoke": {"patches_per_image": 2, "levels": 3, "epochs": 3, "images": 6},
    "lab": {"patches_per_image": 1, "levels": DEFAULT_LEVELS, "epochs": 4, "images": None},
}


# ----------------------------------------------------------------------------- pretraining


@dataclass
class PretrainReport:
    """How well a pretrained proxy predicts the true metric on held-out source images.

    ``plcc``/``srocc``/``rmse`` are measured on the held-out pairs (all kinds, identity pairs
    included); ``per_kind`` gives the same per distortion kind (PLCC/SROCC are ``nan`` where a
    kind's true scores are constant, e.g. the identity pairs). ``untrained_rmse`` is the
    held-out RMSE of the freshly initialised network, for comparison.
    """

    metric: str
    patch_size: int
    epochs: int
    batch_size: int
    lr: float
    seed: int
    holdout: float
    difference_init: bool
    n_train: int
    n_test: int
    train_sources: int
    test_sources: int
    plcc: float
    srocc: float
    rmse: float
    untrained_rmse: float
    per_kind: dict[str, dict[str, float]]
    history: list[dict[str, float]]
    train_seconds: float
    device: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``nan`` becomes ``None``)."""
        return _json_ready(asdict(self))

    def summary(self) -> str:
        """One line: held-out PLCC / SROCC / RMSE."""
        return (
            f"{self.metric} proxy, held-out {self.n_test} pairs from {self.test_sources} source images: "
            f"PLCC {self.plcc:.4f}  SROCC {self.srocc:.4f}  RMSE {self.rmse:.3f} "
            f"(untrained RMSE {self.untrained_rmse:.3f})"
        )


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _batch_tensors(database: DistortionDatabase, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, x_hat) float tensors (n, 3, P, P) in [0, 1] for the pairs ``idx``."""
    x = torch.from_numpy(database.refs[database.ref_index[idx]]).to(device)
    x_hat = torch.from_numpy(database.dists[idx]).to(device)
    return (t.permute(0, 3, 1, 2).float().div_(255.0) for t in (x, x_hat))


@torch.no_grad()
def predict(
    net: torch.nn.Module,
    database: DistortionDatabase,
    indices: np.ndarray | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Proxy scores ``M̂(x, x_hat)`` of the pairs ``indices`` (default: all), float64 (n,)."""
    dev = default_device(device)
    indices = np.arange(len(database)) if indices is None else np.asarray(indices)
    was_training = net.training
    net.eval()
    out = []
    for start in range(0, len(indices), batch_size):
        x, x_hat = _batch_tensors(database, indices[start : start + batch_size], dev)
        out.append(net(x, x_hat).double().cpu().numpy())
    net.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


def correlation(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """PLCC, SROCC and RMSE of predicted vs true scores (``nan`` correlations when either is constant)."""
    predicted, true = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    rmse = float(np.sqrt(np.mean((predicted - true) ** 2))) if len(true) else float("nan")
    if len(true) < 2 or np.ptp(true) == 0 or np.ptp(predicted) == 0:
        plcc = srocc = float("nan")
    else:
        plcc, srocc = float(stats.pearsonr(predicted, true)[0]), float(stats.spearmanr(predicted, true)[0])
    return {"plcc": plcc, "srocc": srocc, "rmse": rmse, "n": int(len(true))}


def evaluate_proxy(
    net: torch.nn.Module,
    database: DistortionDatabase,
    indices: np.ndarray | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """PLCC/SROCC/RMSE of ``net`` against the true scores, overall and per kind."""
    indices = np.arange(len(database)) if indices is None else np.asarray(indices)
    predicted = predict(net, database, indices, batch_size=batch_size, device=device)
    true, kinds = database.scores[indices], database.kind[indices]
    result = correlation(predicted, true)
    result["per_kind"] = {k: correlation(predicted[kinds == k], true[kinds == k]) for k in dict.fromkeys(kinds.tolist())}
    if REFERENCE_KIND in result["per_kind"]:  # identity pairs: only the error is meaningful
        result["per_kind"][REFERENCE_KIND].update(plcc=float("nan"), srocc=float("nan"))
    return result


def _difference_init(net: torch.nn.Module) -> None:
    """Make the first 6-channel convolution respond to ``x - x_hat`` at initialisation."""
    first = next((m for m in net.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if first is None or first.in_channels != 6:
        raise TrainingError(
            f"difference_init needs a first convolution over 6 channels (x, x_hat); {type(net).__name__} has none"
        )
    with torch.no_grad():
        first.weight[:, 3:] = -first.weight[:, :3]


class _Rescaled(torch.nn.Module):
    """``scale * net(x, x_hat) + shift``: scores on the metric's scale while training standardized."""

    def __init__(self, net: torch.nn.Module, scale: float, shift: float):
        super().__init__()
        self.net, self.scale, self.shift = net, scale, shift

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        return self.net(x, x_hat) * self.scale + self.shift


def pretrain_proxy(
    database: DistortionDatabase,
    *,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 1e-3,
    holdout: float = 0.2,
    seed: int = 0,
    device: str | torch.device | None = None,
    difference_init: bool = True,
    progress: bool = True,
) -> tuple[torch.nn.Module, PretrainReport]:
    """Pretrain a ProxIQA network on a distortion database with the metric loss, eq. (11).

    The pairs are split by source image (:meth:`DistortionDatabase.split`); the network is
    trained with Adam on the training pairs and scored on the held-out ones. Training runs
    on standardized scores; their mean and standard deviation are folded into the final
    linear layer afterwards, so the returned network outputs the metric's own scale. The
    same seed gives the same network on the CPU.

    Args:
        database: from :func:`build_distortion_database`.
        epochs: passes over the training pairs.
        batch_size: pairs per step.
        lr: Adam learning rate.
        holdout: fraction of *source images* held out for evaluation, in (0, 1).
        seed: seeds the split, the initialisation and the batch order.
        device: ``"auto"``/``None`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        difference_init: start the first convolution's ``x_hat`` weights as the negated
            ``x`` weights, so the network first sees ``x - x_hat`` (it then learns freely);
            this shortens the initial plateau where it predicts the mean score.
        progress: show a progress bar.

    Returns:
        ``(net, report)``: the trained :class:`~proxiqa_lab.models.ProxIQANet` in eval mode
        and its :class:`PretrainReport`.

    Raises:
        ValueError: an invalid database (:meth:`DistortionDatabase.check`), or training scores
            that are all equal or too wide to standardize.
        TrainingError: the loss, or the held-out fit (PLCC, RMSE), is not finite.
    """
    from proxiqa_lab.losses import metric_loss
    from proxiqa_lab.models import ProxIQANet

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(database, DistortionDatabase):
        raise ValueError(f"database must be a DistortionDatabase (see build_distortion_database), got {type(database).__name__}")
    try:
        database.check()
    except ValueError as err:
        raise ValueError(f"the database cannot train a proxy: {err}; rebuild it") from err
    dev = default_device(device)
    train_idx, test_idx = database.split(holdout, seed)
    train_scores = database.scores[train_idx]
    if np.ptp(train_scores) == 0:
        raise ValueError(
            f"all {len(train_idx)} training pairs score {train_scores[0]:g}: a proxy cannot learn from one value; "
            "rebuild the database, with more distortion kinds or levels"
        )
    # Training runs on standardized scores (m - mu) / sigma; mu and sigma are folded into the last
    # (linear) layer afterwards: the same network, but Adam no longer has to climb to the metric's scale.
    with np.errstate(over="ignore", invalid="ignore"):
        shift, scale = float(train_scores.mean()), float(train_scores.std()) or 1.0
    if not (math.isfinite(shift) and math.isfinite(scale * scale)):
        raise ValueError(f"the training scores span {train_scores.min():g} to {train_scores.max():g}, too wide to "
                         "standardize; rebuild the database")  # fmt: skip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ProxIQANet(patch_size=database.patch_size)
    fc = getattr(net, "fc", None)
    if not isinstance(fc, torch.nn.Linear):
        raise TrainingError(f"{type(net).__name__} has no final linear layer 'fc' to train on standardized scores")
    if difference_init:
        _difference_init(net)
    net = net.to(dev)
    untrained = evaluate_proxy(net, database, test_idx, device=dev)
    rescaled = _Rescaled(net, scale, shift)

    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    steps_per_epoch = math.ceil(len(train_idx) / batch_size)
    bar = None
    if progress:
        from proxiqa_lab.progress import tqdm

        bar = tqdm(total=epochs * steps_per_epoch, desc=f"pretraining {database.metric} proxy", unit="step")
    start = time.perf_counter()
    net.train()
    for epoch in range(1, epochs + 1):
        perm = train_idx[torch.randperm(len(train_idx), generator=order).numpy()]
        total, count = 0.0, 0
        for s in range(0, len(perm), batch_size):
            idx = perm[s : s + batch_size]
            x, x_hat = _batch_tensors(database, idx, dev)
            target = torch.from_numpy((database.scores[idx] - shift) / scale).to(dev)
            loss = metric_loss(net(x, x_hat), target) * scale**2
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"metric loss became {loss.item()} at epoch {epoch}; lower lr (now {lr}) or check the database scores"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.2f}")
        held_out = evaluate_proxy(rescaled, database, test_idx, device=dev)
        history.append(
            {"epoch": epoch, "train_rmse": math.sqrt(total / count), "test_rmse": held_out["rmse"],
             "test_plcc": held_out["plcc"], "test_srocc": held_out["srocc"]}
        )
    if bar is not None:
        bar.close()
    if not (math.isfinite(held_out["plcc"]) and math.isfinite(held_out["rmse"])):
        why = ("its predictions are not finite" if not math.isfinite(held_out["rmse"]) else
               "the held-out pairs all score one value" if np.ptp(database.scores[test_idx]) == 0 else
               "it predicts one value for every held-out pair")  # fmt: skip
        raise TrainingError(f"the pretrained proxy has no held-out fit (PLCC {held_out['plcc']}, RMSE "
                            f"{held_out['rmse']}): {why}; lower lr, train longer or rebuild the database")
    train_seconds = time.perf_counter() - start
    with torch.no_grad():
        fc.weight.mul_(scale)
        fc.bias.mul_(scale).add_(shift)
    net.eval()
    report = PretrainReport(
        metric=database.metric,
        patch_size=database.patch_size,
        epochs=int(epochs),
        batch_size=int(batch_size),
        lr=float(lr),
        seed=int(seed),
        holdout=float(holdout),
        difference_init=bool(difference_init),
        n_train=int(len(train_idx)),
        n_test=int(len(test_idx)),
        train_sources=int(len(np.unique(database.source[train_idx]))),
        test_sources=int(len(np.unique(database.source[test_idx]))),
        plcc=held_out["plcc"],
        srocc=held_out["srocc"],
        rmse=held_out["rmse"],
        untrained_rmse=untrained["rmse"],
        per_kind=held_out["per_kind"],
        history=history,
        train_seconds=round(train_seconds, 3),
        device=str(dev),
    )
    return net, report


def pretrain_for_run(
    sources,
    metric: str,
    profile: str,
    *,
    patch_size: int,
    seed: int = 0,
    device: str | torch.device | None = "cpu",
    progress: bool = True,
) -> tuple[torch.nn.Module, PretrainReport, dict[str, Any]]:
    """Pretrain the frozen proxy of a ``pretrained-proxy:<metric>`` run, sized by :data:`RUN_PRETRAINING`.

    Args:
        sources: the run's training images (paths or arrays, or a dict name -> either).
        metric: the true metric the proxy imitates.
        profile: the run's training profile (``smoke``, ``lab``, ``paper``).
        patch_size: the run's patch size (the proxy's input).
        seed, device, progress: as for :func:`pretrain_proxy`.

    Returns:
        ``(net, report, database_info)``.
    """
    size = RUN_PRETRAINING.get(profile, RUN_PRETRAINING["lab"])
    if size["images"] is not None:
        sources = (dict(list(sources.items())[: size["images"]]) if isinstance(sources, Mapping)
                   else list(sources)[: size["images"]])  # fmt: skip
    database = build_distortion_database(sources, metric, patch_size=patch_size, seed=seed, progress=progress,
                                         patches_per_image=size["patches_per_image"], levels=size["levels"])
    net, report = pretrain_proxy(database, epochs=size["epochs"], seed=seed, device=device, progress=progress)
    return net, report, database.info


# ----------------------------------------------------------------------------- checkpoints


def save_pretrained_proxy(
    path: str | os.PathLike,
    net: torch.nn.Module,
    report: PretrainReport | Mapping[str, Any],
    database_info: Mapping[str, Any] | None = None,
) -> Path:
    """Save a pretrained proxy with its metric, patch size, report and database parameters.

    Written atomically by :func:`proxiqa_lab.models.save_checkpoint`; loadable with
    ``torch.load(weights_only=True)``.
    """
    from proxiqa_lab.models import save_checkpoint

    report_dict = report.to_dict() if isinstance(report, PretrainReport) else _json_ready(dict(report))
    metric = report_dict.get("metric")
    if metric is None:
        raise ValueError("report must name the metric the proxy was trained on (report['metric'])")
    return save_checkpoint(
        path,
        net,
        kind="pretrained_proxy",
        metric=str(metric),
        patch_size=int(report_dict.get("patch_size", getattr(net, "patch_size", 0))),
        report=report_dict,
        database=_json_ready(dict(database_info or {})),
    )


def load_pretrained_proxy(
    path: str | os.PathLike, device: str | torch.device | None = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a proxy written by :func:`save_pretrained_proxy`.

    Returns:
        ``(net, info)``: the network in eval mode and a dict with ``metric``, ``patch_size``,
        ``report`` and ``database``.

    Raises:
        CheckpointError: if the file is not a pretrained-proxy checkpoint.
    """
    from proxiqa_lab.models import load_checkpoint

    net, extra = load_checkpoint(path, device=device)
    if extra.get("kind") != "pretrained_proxy" or "metric" not in extra:
        raise CheckpointError(
            f"{str(path)!r} is a {type(net).__name__} checkpoint but not a pretrained proxy "
            "(written by save_pretrained_proxy / proxiqa-lab pretrain)"
        )
    return net, {k: v for k, v in extra.items() if k != "kind"}
