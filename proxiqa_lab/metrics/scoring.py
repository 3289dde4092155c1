"""``score``: true quality metrics of image pairs, batched through ffmpeg/libvmaf."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from proxiqa_lab.errors import MetricError
from proxiqa_lab.metrics import engine
from proxiqa_lab.metrics.registry import METRICS, MS_SSIM_MIN_SIZE, check_metric_names

#: Largest raw RGB payload (bytes per stream) sent to one ffmpeg call; bigger groups are split.
MAX_BATCH_BYTES = 256 * 2**20
#: Frames per ffmpeg call. Past 4,096 frames this ffmpeg pairs the two piped inputs out of step
#: (measured: every pair after frame 4096 is scored against another frame), so calls stay well below.
MAX_BATCH_FRAMES = 2048


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _tensor_to_uint8(x: Any, what: str) -> np.ndarray:
    """Float tensor (N, 3, H, W) or (3, H, W) in [0, 1] -> uint8 (N, H, W, 3), rounded like saving a PNG."""
    import torch

    from proxiqa_lab.data import to_uint8

    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise MetricError(f"{what}: expected a tensor (N, 3, H, W) or (3, H, W), got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise MetricError(
            f"{what}: expected a float tensor in [0, 1], got dtype {x.dtype}; "
            "pass uint8 images as numpy arrays (H, W, 3) instead"
        )
    x = x.detach()
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        raise MetricError(f"{what}: the tensor has {int((~finite).sum())} NaN/Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise MetricError(f"{what}: tensor values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]; clamp first")
    return to_uint8(x)


def _array_to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype != np.uint8:
        raise MetricError(
            f"{what}: numpy images must be uint8 (H, W, 3) or (N, H, W, 3), got dtype {x.dtype}; "
            "float images go in as torch tensors (N, 3, H, W) in [0, 1]"
        )
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        hint = " (grayscale? stack it to 3 channels: np.repeat(img[..., None], 3, -1))" if x.ndim == 2 else ""
        raise MetricError(f"{what}: expected RGB uint8 (H, W, 3) or (N, H, W, 3), got shape {x.shape}{hint}")
    return x


def as_images(x: Any, what: str = "images") -> list[np.ndarray]:
    """Turn any accepted input into a list of uint8 (H, W, 3) arrays.

    Accepted: uint8 arrays (H, W, 3) / (N, H, W, 3); float tensors (N, 3, H, W) / (3, H, W) in
    [0, 1] on any device (rounded to uint8, as saving a PNG would); a sequence of file paths
    and/or uint8 (H, W, 3) arrays (sizes may differ between items).
    """
    if _is_tensor(x):
        return list(_tensor_to_uint8(x, what))
    if isinstance(x, np.ndarray):
        return list(_array_to_uint8(x, what))
    if isinstance(x, (str, os.PathLike)):
        x = [x]
    if not isinstance(x, Sequence):
        raise MetricError(
            f"{what}: expected uint8 arrays, float tensors or a list of image paths, got {type(x).__name__}"
        )
    from proxiqa_lab.data import load_image

    images = []
    for i, item in enumerate(x):
        if isinstance(item, (str, os.PathLike)):
            images.append(load_image(item))
        elif isinstance(item, np.ndarray):
            arr = _array_to_uint8(item, f"{what}[{i}]")
            if len(arr) != 1:
                raise MetricError(f"{what}[{i}]: items of a list must be single images (H, W, 3), got {item.shape}")
            images.append(arr[0])
        elif _is_tensor(item):
            arr = _tensor_to_uint8(item, f"{what}[{i}]")
            if len(arr) != 1:
                raise MetricError(
                    f"{what}[{i}]: items of a list must be single images (3, H, W), got {tuple(item.shape)}"
                )
            images.append(arr[0])
        else:
            raise MetricError(f"{what}[{i}]: expected a path or an image array, got {type(item).__name__}")
    return images


def _check_sizes(shape: tuple[int, ...], metrics: tuple[str, ...], ms_ssim_pad: bool, index: int) -> None:
    h, w = shape[:2]
    for m in metrics:
        need = METRICS[m].min_size
        if m == "ms_ssim" and ms_ssim_pad:
            continue
        if min(h, w) < need:
            hint = (
                f"; for small patches pass ms_ssim_pad=True (reflect-pads to {MS_SSIM_MIN_SIZE} px, "
                "see proxiqa_lab.metrics) or use proxiqa_lab.metrics.differentiable.ms_ssim"
                if m == "ms_ssim"
                else ""
            )
            why = f" ({METRICS[m].min_size_reason})" if METRICS[m].min_size_reason else ""
            raise MetricError(
                f"{m} needs images at least {need}x{need} px with this libvmaf{why}, got {w}x{h} "
                f"(pair {index}); score larger images or drop {m!r}{hint}"
            )


def reflect_pad(images: np.ndarray, size: int = MS_SSIM_MIN_SIZE) -> np.ndarray:
    """Reflect-pad (N, H, W, 3) images, centred, so that both sides are at least ``size``."""
    _, h, w, _ = images.shape
    ph, pw = max(size - h, 0), max(size - w, 0)
    pads = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
    return np.pad(images, pads, mode="reflect") if ph or pw else images


def _chunks(n: int, frame_bytes: int) -> list[slice]:
    step = max(1, min(MAX_BATCH_FRAMES, MAX_BATCH_BYTES // max(frame_bytes, 1)))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def score(
    refs: Any,
    dists: Any,
    metrics: Sequence[str] | str = ("vmaf",),
    *,
    ms_ssim_pad: bool = False,
    n_threads: int | None = None,
) -> dict[str, np.ndarray]:
    """True quality of N (reference, distorted) pairs (Sec. IV-A.2): ffmpeg ``psnr`` + libvmaf.

    Same-size pairs are scored together in one ffmpeg call (as frames of a video); each pair
    gets exactly the value it gets when scored alone (VMAF motion is forced to 0). Only the
    features the asked metrics need are computed (``psnr_avg`` alone never starts libvmaf).

    Args:
        refs: reference images: uint8 (H, W, 3) / (N, H, W, 3); float tensor (N, 3, H, W) in
            [0, 1] on any device (rounded to uint8 as saving a PNG would); or a list of paths.
        dists: distorted images, same count and sizes as ``refs``, in any accepted form.
        metrics: names from ``METRICS`` ("psnr_avg", "ssim", "ms_ssim", "vif", "vmaf", "vmaf_neg").
        ms_ssim_pad: score "ms_ssim" of images smaller than 176 px on copies reflect-padded to
            176 px (a stand-in for small training patches, not the MS-SSIM of the patch; see
            the package docstring). Off by default: small images raise MetricError.
        n_threads: libvmaf threads (default: all CPU cores).

    Returns:
        ``{metric: float64 array (N,)}`` in the order of ``metrics``.

    Raises:
        MetricError: unknown metric, mismatched counts or sizes, non-RGB input, NaN or
            out-of-range floats, or images smaller than a metric's ``min_size``.
    """
    names = check_metric_names(metrics)
    ref_list, dist_list = as_images(refs, "refs"), as_images(dists, "dists")
    if len(ref_list) != len(dist_list):
        raise MetricError(
            f"got {len(ref_list)} reference and {len(dist_list)} distorted images; pass one of each per pair"
        )
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, (r, d) in enumerate(zip(ref_list, dist_list)):
        if r.shape != d.shape:
            raise MetricError(
                f"pair {i}: reference is {r.shape[1]}x{r.shape[0]} but distorted is {d.shape[1]}x{d.shape[0]}"
            )
        _check_sizes(r.shape, names, ms_ssim_pad, i)
        groups[r.shape].append(i)

    out = {m: np.empty(len(ref_list), dtype=np.float64) for m in names}
    for shape, idx in groups.items():
        ref_batch = np.stack([ref_list[i] for i in idx])
        dist_batch = np.stack([dist_list[i] for i in idx])
        padded = "ms_ssim" in names and min(shape[:2]) < MS_SSIM_MIN_SIZE
        plain = tuple(m for m in names if not (padded and m == "ms_ssim"))
        for part in _chunks(len(idx), ref_batch[0].nbytes):
            rows = np.asarray(idx[part])
            if plain:
                for m, v in engine.run_batch(ref_batch[part], dist_batch[part], plain, n_threads).items():
                    out[m][rows] = v
            if padded:
                ref_pad, dist_pad = reflect_pad(ref_batch[part]), reflect_pad(dist_batch[part])
                out["ms_ssim"][rows] = engine.run_batch(ref_pad, dist_pad, ("ms_ssim",), n_threads)["ms_ssim"]
    return out
