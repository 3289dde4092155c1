"""Evaluation images for the studies: a subset of a dataset, or labelled fallback photos."""

from __future__ import annotations

import warnings

import numpy as np

from proxiqa_lab.errors import DataNotFoundError


class SampleImagesWarning(UserWarning):
    """A dataset was missing, so the study fell back to the scikit-image sample photos."""


def eval_images(
    dataset: str = "kodak",
    count: int | None = None,
    root: str | None = None,
    fallback: bool = True,
    names: list[str] | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """The first ``count`` images of ``dataset`` as ``{name: uint8 (H, W, 3)}``, and their source.

    Args:
        dataset: a dataset name (``"kodak"``, ``"wikipedia24"``, ...).
        count: how many images, in file order (``None``: all).
        root: data root (``None``: ``$PROXIQA_LAB_DATA`` or ``./data``).
        fallback: when the dataset is missing, use ``proxiqa_lab.data.sample_images()``
            instead (with a :class:`SampleImagesWarning`) rather than raising.
        names: pick these images (file stems, e.g. ``["kodim01"]``) instead of the first
            ``count``; with the fallback, the first ``len(names)`` sample photos stand in.

    Returns:
        ``(images, source)`` where ``source`` is the dataset name, or the sample images'
        label when the fallback was used, so tables and figures can say what they show.
    """
    from proxiqa_lab.data import SAMPLE_IMAGES_LABEL, dataset_files, load_image, sample_images

    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError(f"count must be a positive integer or None, got {count!r}")
    try:
        paths = dataset_files(dataset, root=root)
    except DataNotFoundError:
        if not fallback:
            raise
        warnings.warn(f"dataset {dataset!r} is missing; using {SAMPLE_IMAGES_LABEL} instead "
                      f"(fetch it with `proxiqa-lab data fetch {dataset}`)", SampleImagesWarning, stacklevel=2)
        samples = sample_images()
        count = len(names) if names else count
        keys = list(samples)[:count] if count else list(samples)
        return {k: samples[k] for k in keys}, SAMPLE_IMAGES_LABEL
    if names:
        by_stem = {p.stem: p for p in paths}
        missing = [n for n in names if n not in by_stem]
        if missing:
            raise ValueError(f"{dataset} has no image(s) {missing}; it has {', '.join(by_stem)}")
        paths = [by_stem[n] for n in names]
    else:
        paths = paths[:count] if count else paths
    return {p.stem: load_image(p) for p in paths}, dataset


def crop(img: np.ndarray, size: int, center: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``img`` around the relative position ``center`` (row, col)."""
    h, w = img.shape[:2]
    size = min(size, h, w)
    top = int(round(min(max(center[0] * h - size / 2, 0), h - size)))
    left = int(round(min(max(center[1] * w - size / 2, 0), w - size)))
    return img[top : top + size, left : left + size]


def roundtrip(codec, img: np.ndarray, point, metrics=("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")) -> dict:
    """Encode and decode ``img`` once with a codec and score the result.

    Returns:
        ``{"codec", "bytes", "bpp", "decoded", "encode_s", "decode_s", <metric>: value ...}``.
    """
    import time

    from proxiqa_lab.metrics import score

    start = time.perf_counter()
    data = codec.encode(img, point)
    middle = time.perf_counter()
    decoded = codec.decode(data, point)
    end = time.perf_counter()
    scores = score(img, decoded, metrics=tuple(metrics))
    return {"codec": codec.name, "bytes": len(data), "bpp": 8 * len(data) / (img.shape[0] * img.shape[1]),
            "decoded": decoded, "encode_s": middle - start, "decode_s": end - middle,
            **{m: float(scores[m][0]) for m in metrics}}


def eval_image(dataset: str, name: str, root: str | None = None) -> np.ndarray:
    """One image of ``dataset`` by name (``"kodim01"``); the first sample photo if the dataset is missing."""
    return next(iter(eval_images(dataset, root=root, names=[name])[0].values()))
