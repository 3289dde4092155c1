"""The synthetic-distortion database a proxy is pretrained on (Sec. III-C).

Like the Waterloo Exploration database, it pairs reference patches with JPEG, JPEG 2000, Gaussian
blur and white Gaussian noise versions at discrete severity levels, labelled with the true metric
``M``; :mod:`proxiqa_lab.training.pretrain` trains the proxy on it.

How patches are distorted: each reference patch is cut from the centre of a larger crop
(``margin`` pixels on every side, a multiple of 16). The whole crop is distorted and the
centre is cut out, so Gaussian blur and the JPEG 2000 wavelet see real image content at
the patch border instead of padding, while the JPEG 8x8 blocks (16x16 MCUs with chroma
subsampling) stay aligned to the patch, as when a codec compresses the patch itself.

Severity levels (``levels=5``, mildest to severest; :func:`severity_levels` lists them for
any ``levels``) are spread geometrically over :data:`DISTORTION_RANGES`, chosen so that VMAF
of 128x128 patches spans roughly 95 down to 5. Mean VMAF per level below was measured on one
random 128x128 patch from each of the 300 BSDS500 train+val images (seed 0):

========  =====================================  ===================================  ===========================
kind      parameter                              levels 1..5                          mean VMAF, levels 1..5
========  =====================================  ===================================  ===========================
jpeg      Pillow JPEG ``quality``                60, 28, 13, 6, 3                     91.4, 84.8, 71.3, 48.9, 30.1
jpeg2000  OpenJPEG (Pillow) compression ratio    8, 16.9, 35.8, 75.7, 160             91.3, 82.0, 64.3, 36.0, 3.8
blur      Gaussian ``sigma`` (px)                0.4, 0.66, 1.10, 1.81, 3.0           93.2, 77.3, 57.3, 28.9, 4.0
noise     white Gaussian noise ``sigma`` (/255)  4, 8, 16, 32, 64                     94.8, 91.0, 81.7, 63.1, 36.4
========  =====================================  ===================================  ===========================

Each reference patch is also paired with itself (kind ``"reference"``, level 0), so the
database covers the top of the scale that a codec maximizing eq. (9) is pushed towards
(VMAF of an identity pair is 97.4 from 33 px up; below, libvmaf's VMAF is erratic and
``proxiqa_lab.metrics`` refuses it, so VMAF patches are 40 px or larger).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from proxiqa_lab.errors import ImageError
from proxiqa_lab.fileio import atomic_open

__all__ = ["DEFAULT_LEVELS", "DISTORTION_RANGES", "KINDS", "MAX_LEVELS", "REFERENCE_KIND", "SCORE_CHUNK",
           "DistortionDatabase", "build_distortion_database", "distort", "severity_levels"]

#: The distortion kinds of the Waterloo Exploration database, in database order.
KINDS = ("jpeg", "jpeg2000", "blur", "noise")

#: (mildest, severest) parameter of each kind; levels are spread geometrically between them.
DISTORTION_RANGES: dict[str, tuple[float, float]] = {
    "jpeg": (60.0, 3.0),  # Pillow JPEG quality
    "jpeg2000": (8.0, 160.0),  # compression ratio (raw RGB bytes / coded bytes)
    "blur": (0.4, 3.0),  # Gaussian sigma, pixels
    "noise": (4.0, 64.0),  # white Gaussian noise sigma, 0..255 scale
}

#: Waterloo Exploration uses five severity levels per kind.
DEFAULT_LEVELS = 5
MAX_LEVELS = 10

#: Kind label of the identity pairs (reference paired with itself).
REFERENCE_KIND = "reference"

_FORMAT_VERSION = 1

#: Pairs per ``proxiqa_lab.metrics.score`` call: bounds the memory of the per-pair copies of the
#: reference patches (``score`` itself splits its ffmpeg calls as it needs).
SCORE_CHUNK = 2048


# ----------------------------------------------------------------------------- distortions


def severity_levels(kind: str, levels: int = DEFAULT_LEVELS) -> tuple[float, ...]:
    """The ``levels`` parameters of one distortion kind, mildest first."""
    _check_kinds((kind,))
    _check_levels(levels)
    mild, severe = DISTORTION_RANGES[kind]
    values = [math.sqrt(mild * severe)] if levels == 1 else np.geomspace(mild, severe, levels).tolist()
    if kind == "jpeg":
        return tuple(float(max(1, round(v))) for v in values)
    return tuple(round(float(v), 3) for v in values)


def distort(img: np.ndarray, kind: str, param: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Apply one synthetic distortion to a uint8 (H, W, 3) image and return uint8 (H, W, 3).

    Args:
        img: the pristine image.
        kind: one of :data:`KINDS`.
        param: JPEG quality, JPEG 2000 compression ratio, blur sigma, or noise sigma (0..255).
        rng: random generator for ``"noise"`` (default: a fresh unseeded one).
    """
    _check_kinds((kind,))
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"distort expects a uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    if kind == "jpeg":
        return _pillow_roundtrip(img, "JPEG", quality=int(param))
    if kind == "jpeg2000":
        return _pillow_roundtrip(img, "JPEG2000", quality_mode="rates", quality_layers=[float(param)], irreversible=True)
    if kind == "blur":
        out = ndimage.gaussian_filter(img.astype(np.float32), sigma=(param, param, 0), mode="reflect")
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    rng = rng if rng is not None else np.random.default_rng()
    out = img.astype(np.float32) + rng.normal(0.0, param, size=img.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _pillow_roundtrip(img: np.ndarray, fmt: str, **options: Any) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **options)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"distortion kinds must be a non-empty subset of {KINDS}, got {kinds!r}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"distortion kinds must not repeat, got {kinds!r}")
    return kinds


def _check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be an integer in [1, {MAX_LEVELS}] (Waterloo uses 5), got {levels!r}")
    return int(levels)


# ----------------------------------------------------------------------------- database


@dataclass
class DistortionDatabase:
    """Reference/distorted patch pairs labelled with a true metric.

    Reference patches are stored once: pair ``i`` compares ``refs[ref_index[i]]`` with
    ``dists[i]``. Use :meth:`pair_refs` for the per-pair (N, H, W, 3) reference array.

    Attributes:
        refs: uint8 (R, H, W, 3) reference patches.
        dists: uint8 (N, H, W, 3) distorted patches.
        ref_index: int (N,) index into ``refs`` of each pair.
        scores: float64 (N,) true metric ``M(x, x_hat)``.
        kind: str (N,) distortion kind (:data:`KINDS` or ``"reference"``).
        level: int (N,) severity level, 1 = mildest, 0 for identity pairs.
        param: float (N,) distortion parameter (quality, ratio or sigma; 0 for identity pairs).
        source: int (N,) index of the source image each pair was cut from.
        source_names: names of the source images.
        info: the parameters the database was built with (metric, patch size, ...).
    """

    refs: np.ndarray
    dists: np.ndarray
    ref_index: np.ndarray
    scores: np.ndarray
    kind: np.ndarray
    level: np.ndarray
    param: np.ndarray
    source: np.ndarray
    source_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        return (
            f"DistortionDatabase(metric={self.metric!r}, pairs={len(self)}, refs={len(self.refs)}, "
            f"sources={len(self.source_names)}, patch_size={self.patch_size}, kinds={self.kinds})"
        )

    @property
    def metric(self) -> str:
        return str(self.info.get("metric"))

    @property
    def patch_size(self) -> int:
        return int(self.refs.shape[1])

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.kind.tolist()))

    def check(self) -> DistortionDatabase:
        """Raise ValueError, saying what is wrong, unless the arrays form a database; return ``self``.

        Patches must be as large as the metric needs, pairs must point at existing reference
        patches and source images, and every score must be a finite value of the metric
        (``METRICS[metric].value_range``).
        """
        from proxiqa_lab.metrics import METRICS

        if self.metric not in METRICS:
            raise ValueError(f"its metric {self.metric!r} is not one of {tuple(METRICS)}")
        for name in ("refs", "dists"):
            a = getattr(self, name)
            if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 or a.shape[1] != a.shape[2]:
                raise ValueError(f"{name} must be uint8 square RGB patches (N, P, P, 3), got {a.dtype} {a.shape}")
        if self.dists.shape[1:] != self.refs.shape[1:]:
            raise ValueError(f"distorted patches are {self.dists.shape[1:]} but references {self.refs.shape[1:]}")
        if self.patch_size < METRICS[self.metric].min_size:
            raise ValueError(f"its {self.patch_size} px patches are below the {METRICS[self.metric].min_size} px "
                             f"{self.metric} needs")  # fmt: skip
        n = len(self.dists)
        for name in ("ref_index", "scores", "kind", "level", "param", "source"):
            shape = np.shape(getattr(self, name))
            if shape != (n,):
                raise ValueError(f"{name} must hold one value per pair ({n}), got shape {shape}")
        for name, index, count, what in (("ref_index", self.ref_index, len(self.refs), "reference patches"),
                                         ("source", self.source, len(self.source_names), "source images")):
            index = np.asarray(index)
            if not np.issubdtype(index.dtype, np.integer):
                raise ValueError(f"{name} must be integers, got {index.dtype}")
            bad = np.flatnonzero((index < 0) | (index >= count))
            if len(bad):
                raise ValueError(f"pair {bad[0]} has {name} {index[bad[0]]}, outside the {count} {what} "
                                 f"({len(bad)} of {n} pairs do)")  # fmt: skip
        lo, hi = METRICS[self.metric].value_range
        scores = np.asarray(self.scores, dtype=np.float64)
        bad = np.flatnonzero(~(np.isfinite(scores) & (scores >= lo) & (scores <= hi)))
        if len(bad):
            raise ValueError(f"pair {bad[0]} scores {scores[bad[0]]:g}, not a {self.metric} value in "
                             f"[{lo:g}, {hi:g}] ({len(bad)} of {n} pairs do)")  # fmt: skip
        return self

    def pair_refs(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """Reference patch of each pair, uint8 (n, H, W, 3)."""
        idx = self.ref_index if index is None else self.ref_index[index]
        return self.refs[idx]

    def split(self, holdout: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Split pair indices into (train, held-out) by *source image*, never by pair.

        Raises:
            ValueError: if ``holdout`` is not in (0, 1) or fewer than two sources exist.
        """
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
        sources = np.unique(self.source)
        if len(sources) < 2:
            raise ValueError(
                f"a held-out split by source image needs at least 2 source images, the database has "
                f"{len(sources)}; build it from more images"
            )
        n_test = min(len(sources) - 1, max(1, int(round(holdout * len(sources)))))
        test_sources = np.random.default_rng(seed).permutation(sources)[:n_test]
        is_test = np.isin(self.source, test_sources)
        return np.flatnonzero(~is_test), np.flatnonzero(is_test)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the database to ``path`` (.npz), atomically (temp file, then rename)."""
        path = Path(path)
        arrays = {
            "refs": self.refs,
            "dists": self.dists,
            "ref_index": self.ref_index,
            "scores": self.scores,
            "kind": np.asarray(self.kind, dtype=str),
            "level": self.level,
            "param": self.param,
            "source": self.source,
            "source_names": np.asarray(self.source_names, dtype=str),
            "info": np.asarray(json.dumps({"format_version": _FORMAT_VERSION, **self.info})),
        }
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> DistortionDatabase:
        """Read a database written by :meth:`save`.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if it is not a distortion database, or an invalid one (:meth:`check`).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no distortion database at {path}")
        try:
            return cls._read(path)
        except ValueError as err:
            raise ValueError(f"{path} {err}; rebuild it") from err

    @classmethod
    def _read(cls, path: Path) -> DistortionDatabase:
        """The database in ``path``; ValueError says what is wrong with it (without the path)."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {key: npz[key] for key in npz.files}
            info = json.loads(str(data.pop("info")))
            arrays = {k: data[k] for k in ("refs", "dists", "ref_index", "scores", "kind", "level", "param", "source")}
            source_names = data["source_names"].tolist()
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
            raise ValueError(f"is not a distortion database written by DistortionDatabase.save ({err})") from err
        if not isinstance(info, dict) or info.pop("format_version", None) != _FORMAT_VERSION:
            raise ValueError("was written by an incompatible version of the kit")
        try:
            return cls(**arrays, source_names=source_names, info=info).check()
        except ValueError as err:
            raise ValueError(f"is invalid: {err}") from err


def _load_sources(sources) -> tuple[list[str], list[Any]]:
    """Names and lazily-loadable items (paths or arrays) of the source images."""
    if isinstance(sources, Mapping):
        names, items = [str(k) for k in sources], list(sources.values())
    elif isinstance(sources, np.ndarray) and sources.ndim == 4:
        items = list(sources)
        names = [f"array{i}" for i in range(len(items))]
    elif isinstance(sources, (str, os.PathLike, np.ndarray)):
        raise ValueError(
            "sources must be a list of image paths or uint8 (H, W, 3) arrays, or a dict name -> image; "
            f"got a single {type(sources).__name__}"
        )
    else:
        items = list(sources)
        names = [str(s) if isinstance(s, (str, os.PathLike)) else f"array{i}" for i, s in enumerate(items)]
    if not items:
        raise ValueError("sources is empty: give at least two source images (paths or uint8 arrays)")
    return names, items


def _fingerprint(items: list[Any]) -> str:
    """A hash identifying the source images (file path, size and mtime, or array bytes)."""
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            p = Path(item)
            st = p.stat() if p.exists() else None
            h.update(f"{p.resolve()}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}".encode())
        else:
            arr = np.ascontiguousarray(item)
            h.update(f"{arr.shape}|{arr.dtype}".encode())
            h.update(hashlib.sha256(arr.tobytes()).digest())
    return h.hexdigest()


def _as_image(item: Any, name: str) -> np.ndarray:
    if isinstance(item, (str, os.PathLike)):
        from proxiqa_lab.data import load_image

        return load_image(item)
    img = np.asarray(item)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"source {name!r} must be a uint8 (H, W, 3) RGB array, got {img.dtype} {img.shape}")
    return img


def build_distortion_database(
    sources,
    metric: str = "vmaf",
    *,
    patch_size: int = 128,
    patches_per_image: int = 1,
    levels: int = DEFAULT_LEVELS,
    kinds: Sequence[str] = KINDS,
    margin: int = 16,
    include_reference: bool = True,
    seed: int = 0,
    cache: str | os.PathLike | None = None,
    progress: bool = False,
) -> DistortionDatabase:
    """Build a Waterloo-style database of synthetic distortions labelled with a true metric.

    ``patches_per_image`` random ``patch_size``² reference patches are cut from every source
    image; each is distorted by every kind at every severity level (whole crop with
    ``margin`` distorted, then the centre cut out), and the pairs are scored by batched
    :func:`proxiqa_lab.metrics.score` calls of :data:`SCORE_CHUNK` pairs.

    Args:
        sources: image paths or uint8 (H, W, 3) arrays, or a dict name -> either
            (e.g. ``proxiqa_lab.data.training_files()`` or ``proxiqa_lab.data.sample_images()``).
        metric: the true metric ``M`` (a name in ``proxiqa_lab.metrics.METRICS``).
        patch_size: side of the square patches; a multiple of 8.
        patches_per_image: reference patches per source image.
        levels: severity levels per kind (Waterloo uses 5); see :func:`severity_levels`.
        kinds: distortion kinds, a subset of :data:`KINDS`.
        margin: context pixels around each patch that are distorted with it; a multiple of 16.
        include_reference: also pair every reference patch with itself (kind ``"reference"``).
        seed: seeds patch positions and noise.
        cache: an .npz path; a database there built with the same parameters and sources is
            loaded instead of rebuilt, otherwise the new database is written there.
        progress: show a progress bar while distorting.

    Returns:
        The :class:`DistortionDatabase`.
    """
    from proxiqa_lab.metrics import METRICS

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {tuple(METRICS)}, got {metric!r}")
    kinds = _check_kinds(kinds)
    levels = _check_levels(levels)
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)) or patch_size < 8 or patch_size % 8:
        raise ValueError(f"patch_size must be a positive multiple of 8 (e.g. 64 or 128), got {patch_size!r}")
    if patch_size < METRICS[metric].min_size:
        raise ValueError(
            f"{metric} needs images of at least {METRICS[metric].min_size} px a side, got patch_size {patch_size}; "
            "use a larger patch_size"
        )
    if not isinstance(patches_per_image, (int, np.integer)) or patches_per_image < 1:
        raise ValueError(f"patches_per_image must be an integer >= 1, got {patches_per_image!r}")
    if not isinstance(margin, (int, np.integer)) or margin < 0 or margin % 16:
        raise ValueError(f"margin must be a non-negative multiple of 16 (keeps JPEG blocks aligned), got {margin!r}")
    names, items = _load_sources(sources)
    info = {
        "metric": metric,
        "patch_size": int(patch_size),
        "patches_per_image": int(patches_per_image),
        "levels": levels,
        "kinds": list(kinds),
        "margin": int(margin),
        "include_reference": bool(include_reference),
        "seed": int(seed),
        "ranges": {k: list(DISTORTION_RANGES[k]) for k in kinds},
        "sources_sha256": _fingerprint(items),
        "num_sources": len(items),
    }
    if cache is not None:
        cached = _load_cache(Path(cache), info)
        if cached is not None:
            return cached

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    crop = patch_size + 2 * margin
    params = {k: severity_levels(k, levels) for k in kinds}
    refs, dists, ref_index, kind, level, param, source = [], [], [], [], [], [], []
    iterator = range(len(items))
    if progress:
        from proxiqa_lab.progress import tqdm

        iterator = tqdm(iterator, desc="distorting", unit="image")
    for s in iterator:
        img = _as_image(items[s], names[s])
        h, w = img.shape[:2]
        if h < crop or w < crop:
            raise ImageError(
                f"source {names[s]!r} is {w}x{h}, smaller than a {crop}x{crop} crop "
                f"(patch_size {patch_size} + 2 x margin {margin}); use a smaller patch_size or margin"
            )
        for _ in range(patches_per_image):
            top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            window = np.ascontiguousarray(img[top : top + crop, left : left + crop])
            ref = window[margin : margin + patch_size, margin : margin + patch_size]
            r = len(refs)
            refs.append(ref)
            if include_reference:
                dists.append(ref)
                ref_index.append(r), kind.append(REFERENCE_KIND), level.append(0), param.append(0.0), source.append(s)
            for k in kinds:
                for lv, p in enumerate(params[k], start=1):
                    out = distort(window, k, p, rng)
                    dists.append(out[margin : margin + patch_size, margin : margin + patch_size])
                    ref_index.append(r), kind.append(k), level.append(lv), param.append(p), source.append(s)
    refs_arr = np.stack(refs)
    dists_arr = np.stack(dists)
    ref_index_arr = np.asarray(ref_index, dtype=np.int64)
    distort_s = time.perf_counter() - start

    from proxiqa_lab.metrics import score

    start = time.perf_counter()
    scores = np.concatenate([
        np.asarray(score(refs_arr[ref_index_arr[i : i + SCORE_CHUNK]], dists_arr[i : i + SCORE_CHUNK],
                         metrics=(metric,))[metric], dtype=np.float64)
        for i in range(0, len(dists_arr), SCORE_CHUNK)
    ])  # fmt: skip
    info["build_seconds"] = {"distort": round(distort_s, 3), "score": round(time.perf_counter() - start, 3)}
    database = DistortionDatabase(
        refs=refs_arr,
        dists=dists_arr,
        ref_index=ref_index_arr,
        scores=scores,
        kind=np.asarray(kind, dtype=str),
        level=np.asarray(level, dtype=np.int64),
        param=np.asarray(param, dtype=np.float64),
        source=np.asarray(source, dtype=np.int64),
        source_names=names,
        info=info,
    )
    if cache is not None:
        database.save(cache)
    return database


_CACHE_KEYS = (
    "metric",
    "patch_size",
    "patches_per_image",
    "levels",
    "kinds",
    "margin",
    "include_reference",
    "seed",
    "ranges",
    "sources_sha256",
)


def _load_cache(path: Path, info: dict[str, Any]) -> DistortionDatabase | None:
    """The cached database if it matches ``info``; None if absent or stale.

    A file that is not a distortion database is never overwritten.
    """
    if not path.exists():
        return None
    if not path.is_file():
        raise ValueError(f"cache {path} is not a file; give the path of an .npz file")
    try:
        cached = DistortionDatabase._read(path)
    except ValueError as err:
        raise ValueError(f"cache {path} {err}; remove it or pick another path") from err
    stale = [k for k in _CACHE_KEYS if cached.info.get(k) != info[k]]
    if not stale:
        return cached
    warnings.warn(f"cached database {path} was built with different {', '.join(stale)}; rebuilding it", stacklevel=3)
    return None
