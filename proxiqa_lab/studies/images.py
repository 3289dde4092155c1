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
) -> tuple[dict[str, np.ndarray], str]:
    """The first ``count`` images of ``dataset`` as ``{name: uint8 (H, W, 3)}``, and their source.

    Args:
        dataset: a dataset name (``"kodak"``, ``"wikipedia24"``, ...).
        count: how many images, in file order (``None``: all).
        root: data root (``None``: ``$PROXIQA_LAB_DATA`` or ``./data``).
        fallback: when the dataset is missing, use ``proxiqa_lab.data.sample_images()``
            instead (with a :class:`SampleImagesWarning`) rather than raising.

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
        names = list(samples)[:count] if count else list(samples)
        return {n: samples[n] for n in names}, SAMPLE_IMAGES_LABEL
    paths = paths[:count] if count else paths
    return {p.stem: load_image(p) for p in paths}, dataset


def crop(img: np.ndarray, size: int, center: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``img`` around the relative position ``center`` (row, col)."""
    h, w = img.shape[:2]
    size = min(size, h, w)
    top = int(round(min(max(center[0] * h - size / 2, 0), h - size)))
    left = int(round(min(max(center[1] * w - size / 2, 0), w - size)))
    return img[top : top + size, left : left + size]
