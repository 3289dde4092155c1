"""Image-level proxy scores and the proxy-vs-true study of Sec. III-C (Figs. 6 and 7).

The ProxIQA network scores fixed-size patches (its fully connected layer is built for one
patch size), while the paper's Fig. 6 quotes one proxy score for a whole decoded image. Here
the image-level proxy score is the **mean of the proxy's scores over the non-overlapping
``P x P`` tiles** that cover the image (``P`` = the proxy's patch size; a remainder narrower
than ``P`` at the right and bottom edges is left out). The true score is the metric of the
full image, computed by libvmaf.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch


def tile_batch(img: np.ndarray, tile: int) -> torch.Tensor:
    """The non-overlapping ``tile`` x ``tile`` tiles of ``img`` (row-major) as (T, 3, tile, tile) in [0, 1]."""
    from proxiqa_lab.data import to_tensor

    h, w = img.shape[:2]
    rows, cols = h // tile, w // tile
    if rows == 0 or cols == 0:
        raise ValueError(f"the image is {w}x{h}, smaller than one {tile}x{tile} proxy tile")
    x = to_tensor(np.ascontiguousarray(img[: rows * tile, : cols * tile]))[0]
    return x.unfold(1, tile, tile).unfold(2, tile, tile).permute(1, 2, 0, 3, 4).reshape(-1, 3, tile, tile)


@torch.no_grad()
def image_proxy_score(proxy: torch.nn.Module, ref: np.ndarray, dist: np.ndarray, batch_size: int = 64) -> dict:
    """Proxy score M̂ of a whole image: the mean over its tiles (see the module docstring).

    Args:
        proxy: a :class:`~proxiqa_lab.models.ProxIQANet`.
        ref: uint8 (H, W, 3) source image.
        dist: uint8 (H, W, 3) decoded image.
        batch_size: tiles per forward pass.

    Returns:
        ``{"score": mean, "std": std over tiles, "tiles": per-tile scores, "tile": P}``.
    """
    if ref.shape != dist.shape:
        raise ValueError(f"ref and dist must have the same shape, got {ref.shape} and {dist.shape}")
    tile = int(proxy.patch_size)
    device = next(proxy.parameters()).device
    x, x_hat = tile_batch(ref, tile), tile_batch(dist, tile)
    was_training = proxy.training
    proxy.eval()
    scores = torch.cat([proxy(x[i : i + batch_size].to(device), x_hat[i : i + batch_size].to(device)).cpu()
                        for i in range(0, len(x), batch_size)]).double().numpy()
    proxy.train(was_training)
    return {"score": float(scores.mean()), "std": float(scores.std()), "tiles": scores, "tile": tile}


def proxy_true_gap(log: pd.DataFrame, true: str = "true_mean", proxy: str = "proxy_mean", last: int | float = 5) -> dict:
    """Mean true and proxy scores over the last logged rows, their gap (proxy − true), and the mean and
    the largest absolute gap of one row.

    Args:
        log: a run's ``log.csv`` rows.
        true, proxy: the columns of the batch means.
        last: how many rows (an int), or which fraction of the rows (a float in (0, 1], e.g. 0.1).
    """
    rows = log.dropna(subset=[true, proxy])
    if rows.empty:
        raise ValueError(f"the log has no rows with both {true!r} and {proxy!r}")
    count = max(1, round(last * len(rows))) if isinstance(last, float) else int(last)
    rows = rows.tail(count)
    t, p = float(rows[true].mean()), float(rows[proxy].mean())
    gaps = (rows[proxy] - rows[true]).abs()
    return {"true": t, "proxy": p, "gap": p - t, "mean_abs_gap": float(gaps.mean()), "max_abs_gap": float(gaps.max()),
            "rows": int(len(rows))}


def fooling_specs(settings, metric: str, lmbda: float, proxy_path: str) -> list:
    """The runs of the pretrained-proxy experiment (Sec. III-C), the MSE run(s) they start from first:

    * ``pretrained-proxy:<metric>`` at ``settings.fooling_alpha``: the frozen proxy, which the codec learns to fool;
    * ``proxy:<metric>`` at the same α: the same schedule with alternating updates;
    * ``proxy:<metric>`` at α = 0.5, the RD grid's run: alternating updates with the pixel loss kept.
    """
    from proxiqa_lab.studies.grid import RunSpec

    specs = settings.specs([f"proxy:{metric}"], [lmbda])  # the MSE run(s), then proxy at α = 0.5
    finetune = specs[-1].finetune
    alpha = float(settings.fooling_alpha)
    specs.insert(len(specs) - 1, RunSpec(f"pretrained-proxy:{metric}", lmbda, alpha, finetune,
                                         (("proxy_init", str(proxy_path)),)))
    specs.insert(len(specs) - 1, RunSpec(f"proxy:{metric}", lmbda, alpha, finetune))
    return [settings.diagnosed(s) for s in specs]


def pretrained_proxy_path(profile: str = "smoke", metric: str = "vmaf", patch_size: int | None = None,
                          images: int | None = None, seed: int = 0, **_) -> Path:
    """Where :func:`pretrained_proxy` keeps the proxy of these options (which may not exist yet)."""
    from proxiqa_lab.paths import runs_profile, runs_root
    from proxiqa_lab.training import make_config

    patch_size = patch_size or make_config(profile).patch_size
    return runs_root() / runs_profile(profile) / f"pretrained-proxy-{metric}-p{patch_size}-n{images or 'all'}-s{seed}.pt"


def pretrained_proxy(
    profile: str = "smoke",
    metric: str = "vmaf",
    patch_size: int | None = None,
    images: int | None = None,
    patches_per_image: int = 2,
    levels: int = 5,
    epochs: int = 4,
    seed: int = 0,
    data_root: str | None = None,
    device: str = "auto",
    source: str = "auto",
) -> tuple[str, dict]:
    """Pretrain (or reuse, or take the shipped) proxy on synthetic distortions (Sec. III-C), stored under
    ``runs/<profile>/``.

    The database is cut from the training sources (``proxiqa_lab.data.training_files``; the
    scikit-image photos when absent), labelled with the true ``metric``; the proxy is trained
    with eq. (11) and scored on held-out source images.

    Args:
        profile: training profile; its ``patch_size`` is the proxy's input size unless given.
        metric: the true metric ``M``.
        patch_size: proxy patch size (default: the profile's training patch size).
        images: source images used (``None``: all).
        patches_per_image, levels: database size (see ``build_distortion_database``).
        epochs: pretraining passes.
        seed: seeds patches, noise and weights.
        data_root: data root.
        device: where to pretrain.
        source: ``"auto"``: the proxy of ``runs/<profile>/``, else the one shipped with the kit
            (:mod:`proxiqa_lab.zoo`), else pretrain it; ``"shipped"``: the shipped one only;
            ``"retrain"``: never the shipped one.

    Returns:
        ``(path, info)``: the proxy checkpoint (for ``proxy_init``) and its info (report with
        held-out PLCC/SROCC/RMSE, database parameters).
    """
    from proxiqa_lab.data import sample_images, training_files
    from proxiqa_lab.errors import DataNotFoundError
    from proxiqa_lab.studies.grid import check_source
    from proxiqa_lab.training import make_config, pretrain
    from proxiqa_lab.zoo.registry import shipped_run

    check_source(source)
    out = pretrained_proxy_path(profile, metric, patch_size, images, seed)
    patch_size = patch_size or make_config(profile).patch_size
    if out.is_file() and source != "shipped":
        return str(out), pretrain.load_pretrained_proxy(out, device="cpu")[1]
    folder = shipped_run(out.stem, out.parent.name) if source != "retrain" else None
    if folder is not None:
        return str(folder / "proxy.pt"), pretrain.load_pretrained_proxy(folder / "proxy.pt", device="cpu")[1]
    if source == "shipped":
        from proxiqa_lab.errors import ZooError

        raise ZooError(f"the zoo does not ship the pretrained proxy {out.stem!r}; TRAIN = \"auto\" pretrains it")
    try:
        sources = training_files(data_root)
    except DataNotFoundError:
        sources = list(sample_images().values())
    sources = sources[:images] if images else sources
    database = pretrain.build_distortion_database(sources, metric, patch_size=patch_size, levels=levels,
                                                  patches_per_image=patches_per_image, seed=seed)
    net, report = pretrain.pretrain_proxy(database, epochs=epochs, seed=seed, device=device, progress=False)
    pretrain.save_pretrained_proxy(out, net, report, database.info)
    return str(out), pretrain.load_pretrained_proxy(out, device="cpu")[1]


def decoded_scores(run: str, img: np.ndarray, metric: str = "vmaf", device: str | None = None) -> dict:
    """Code ``img`` with a run's final codec; score the result with the true metric and the run's proxy.

    For a ``pretrained-proxy`` run the proxy is the frozen pretrained one the codec was
    optimised against (Fig. 6); for a ``proxy`` run it is the proxy at the end of the
    alternating training.

    Returns:
        ``{"decoded", "bpp", "true", "proxy", "proxy_std", "tile"}``: true metric of the full
        decoded image, and the image-level proxy score (mean ± std over tiles).
    """
    from proxiqa_lab.codec import LearnedCodec
    from proxiqa_lab.metrics import score
    from proxiqa_lab.models import load_checkpoint

    run = Path(run)
    codec = LearnedCodec([run / "model.pt"], device=device)
    data = codec.encode(img, codec.points[0])
    decoded = codec.decode(data, codec.points[0])
    proxy, _ = load_checkpoint(run / "proxy.pt", device="cpu")
    estimate = image_proxy_score(proxy, img, decoded)
    return {"decoded": decoded, "bpp": 8 * len(data) / (img.shape[0] * img.shape[1]),
            "true": float(score(img, decoded, metrics=(metric,))[metric][0]),
            "proxy": estimate["score"], "proxy_std": estimate["std"], "tile": estimate["tile"]}
