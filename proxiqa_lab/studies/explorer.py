"""The α × λ grid behind :class:`proxiqa_lab.widgets.AlphaLambdaExplorer` (eq. 10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def explorer_specs(alphas, lambdas, objective: str = "proxy:vmaf", finetune: bool = False,
                   anchor: float | None = None) -> list:
    """The runs of the α × λ grid: one ``objective`` run per (α, λ), after the MSE runs that
    fine-tunes start from (see :func:`proxiqa_lab.studies.grid.mse_bases`)."""
    from proxiqa_lab.studies.grid import RunSpec, mse_bases

    specs = [RunSpec(objective, float(v), float(a), finetune=finetune) for a in alphas for v in lambdas]
    return mse_bases(lambdas, anchor) + specs if finetune else specs


def explorer_grid(
    alphas,
    lambdas,
    image: np.ndarray,
    out_dir: str | Path,
    profile: str = "smoke",
    objective: str = "proxy:vmaf",
    train: dict | None = None,
    metrics=("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg"),
    crop_size: int = 192,
    seed: int = 0,
    device: str = "auto",
    data_root: str | None = None,
    progress: bool = True,
    finetune_steps: int | None = None,
    anchor: float | None = None,
    source: str = "auto",
) -> pd.DataFrame:
    """Train (or reuse) one model per (α, λ), code ``image`` with each, and tabulate the results.

    With ``finetune_steps``, each model is fine-tuned for that many steps from the MSE model of
    its λ (trained first, from the ``anchor`` λ's MSE model when one is given, as in
    :meth:`~proxiqa_lab.studies.StudySettings.specs`); otherwise each trains from scratch.

    Every decoded image is scored by the true metrics (one libvmaf call for the whole grid)
    and, for proxy objectives, by the run's own final proxy (mean over tiles, see
    :func:`proxiqa_lab.studies.adversarial.image_proxy_score`). A centre crop of each decoded
    image is written to ``out_dir/crops/`` for the explorer. ``source`` is
    :func:`~proxiqa_lab.studies.train_grid`'s: where the runs come from.

    Returns:
        One row per model: objective, alpha, lmbda, bpp, the metrics, proxy, status (``shipped``, ``reused``
        or ``trained``), crop (PNG path), run.
    """
    from proxiqa_lab.codec import LearnedCodec
    from proxiqa_lab.data import save_image
    from proxiqa_lab.metrics import score
    from proxiqa_lab.models import load_checkpoint
    from proxiqa_lab.studies.adversarial import image_proxy_score
    from proxiqa_lab.studies.grid import train_grid
    from proxiqa_lab.studies.images import crop

    specs = explorer_specs(alphas, lambdas, objective, finetune_steps is not None, anchor)
    grid = train_grid(specs, profile=profile, train=train, finetune_steps=finetune_steps, seed=seed, device=device,
                      data_root=data_root, progress=progress, source=source)
    grid = grid[grid["objective"] == objective]
    crops_dir = Path(out_dir) / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    decoded, rows = [], []
    for _, r in grid.iterrows():
        codec = LearnedCodec([r["model"]], name=r["label"], device=device if device != "auto" else None)
        data = codec.encode(image, codec.points[0])
        rec = codec.decode(data, codec.points[0])
        decoded.append(rec)
        proxy_file = Path(r["run"]) / "proxy.pt"  # direct:* runs have none
        proxy = load_checkpoint(proxy_file, device="cpu")[0] if proxy_file.is_file() else None
        path = crops_dir / f"alpha{r['alpha']:g}_lmbda{r['lmbda']:g}.png"
        save_image(crop(rec, crop_size), path, overwrite=True)
        rows.append({"objective": objective, "alpha": r["alpha"], "lmbda": r["lmbda"], "bpp": 8 * len(data) / (image.shape[0] * image.shape[1]),
                     "proxy": image_proxy_score(proxy, image, rec)["score"] if proxy is not None else np.nan,
                     "status": r["status"], "crop": str(path), "run": r["run"]})
    scores = score(np.stack([image] * len(decoded)), np.stack(decoded), metrics=tuple(metrics))
    table = pd.DataFrame(rows)
    for m in metrics:
        table[m] = scores[m]
    return table
