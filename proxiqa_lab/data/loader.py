"""Training patches, following the paper's Sec. III-D and Ballé et al. [35].

Each patch of a batch is drawn independently:

1. pick a source image uniformly at random (with replacement);
2. downsample it by a random factor ``f`` (log-uniform in ``downsample``, capped so that the
   short side stays >= ``crop_size``) to reduce compression artifacts and noise;
3. take a random ``crop_size`` x ``crop_size`` crop, then a random ``patch_size`` x
   ``patch_size`` patch inside it;
4. add small uniform noise, U(-0.5, 0.5) / 255, and clamp to [0, 1].

Steps 2-3 are computed on the patch's region only: Pillow's ``resize(box=...)`` resamples the
source rectangle that maps onto the patch (antialiased bicubic, using the pixels around the
box as a full-image resize would), so a 1500x1000 source costs no more than a small one.
The noise (dequantization, at the 8-bit step size) is added after resampling, which works
on 8-bit images; added before, a downsampling by ``f`` would shrink it by about ``f``.

Sources are decoded once, on first use, and kept in memory (the ~330 training sources take
about 220 MB as uint8). The loader is deterministic given ``seed``; ``state_dict()`` captures the
random generator so a resumed loader yields exactly the batches the original would have.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import queue
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from proxiqa_lab.data.images import _check_uint8_rgb, load_image
from proxiqa_lab.errors import ImageError

if TYPE_CHECKING:  # torch is imported on use, so importing the data layer stays fast
    import torch

__all__ = ["PatchLoader"]

Source = str | os.PathLike | np.ndarray


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class PatchLoader:
    """Infinite iterator of training batches: float32 tensors (B, 3, P, P) in [0, 1].

    Args:
        paths: image files or uint8 (H, W, 3) arrays (a mapping's values are used, e.g.
            ``sample_images()``); see :func:`proxiqa_lab.data.training_files`.
        batch_size: patches per batch (the paper uses 8).
        patch_size: patch side P (paper: 128); a multiple of 8, since the ProxIQA network
            downsamples by 8.
        crop_size: side of the random crop the patch is taken from (paper: 256); sources
            whose short side is smaller use their short side.
        seed: seed of the loader's random generator.
        noise: add U(-0.5, 0.5) / 255 noise to each patch.
        downsample: (low, high) range of the random downsampling factor, both >= 1;
            ``(1, 1)`` turns downsampling off.
        prefetch: batches prepared ahead in a background thread (0: none). The batches and
            ``state_dict()`` are the same with or without prefetching.

    Raises:
        ValueError: for an empty source list, a source smaller than ``patch_size``, or bad
            parameters.

    Example:
        >>> loader = PatchLoader(training_files(), seed=0)
        >>> x = next(loader)  # (8, 3, 128, 128)
    """

    def __init__(
        self,
        paths: Sequence[Source] | Mapping[str, np.ndarray],
        batch_size: int = 8,
        patch_size: int = 128,
        crop_size: int = 256,
        seed: int = 0,
        noise: bool = True,
        downsample: tuple[float, float] = (1.0, 3.0),
        prefetch: int = 0,
    ) -> None:
        if isinstance(paths, Mapping):
            paths = list(paths.values())
        if isinstance(paths, (str, os.PathLike, np.ndarray)):
            raise ValueError(
                "paths must be a list of image files or arrays, got a single "
                f"{type(paths).__name__}; wrap it in a list"
            )
        paths = list(paths)
        if not paths:
            raise ValueError(
                "PatchLoader needs at least one source image, got an empty list; use "
                "training_files() (after `proxiqa-lab data fetch bsds500 unsplash_x4`) or "
                "list(sample_images().values())"
            )
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.patch_size = _positive_int(patch_size, "patch_size")
        if self.patch_size % 8:
            raise ValueError(
                f"patch_size must be a multiple of 8 (the ProxIQA network downsamples by 8), got {patch_size}"
            )
        self.crop_size = _positive_int(crop_size, "crop_size")
        if self.crop_size < self.patch_size:
            raise ValueError(f"crop_size must be >= patch_size ({self.patch_size}), got {crop_size}")
        try:
            low, high = (float(v) for v in downsample)
        except (TypeError, ValueError):
            raise ValueError(f"downsample must be a pair (low, high), got {downsample!r}") from None
        if not (1.0 <= low <= high) or not math.isfinite(high):
            raise ValueError(f"downsample must satisfy 1 <= low <= high < inf, got {downsample!r}")
        self.downsample = (low, high)
        self.noise = bool(noise)
        self.seed = int(seed)
        if isinstance(prefetch, bool) or not isinstance(prefetch, (int, np.integer)) or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0, got {prefetch!r}")
        self.prefetch = int(prefetch)

        self._sources: list[Source] = []
        self._sizes: list[tuple[int, int]] = []  # (height, width)
        self._images: list = []  # decoded PIL images, filled on first use
        too_small = []
        for src in paths:
            h, w, image = self._probe(src)
            if min(h, w) < self.patch_size:
                too_small.append(f"{self._describe(src)} ({w}x{h})")
            self._sources.append(src if image is None else "<array>")
            self._sizes.append((h, w))
            self._images.append(image)
        if too_small:
            raise ValueError(
                f"{len(too_small)} source image(s) are smaller than patch_size={self.patch_size} on "
                f"their short side, e.g. {too_small[0]}; remove them or lower patch_size"
            )
        # Generator state after the last batch handed out: what state_dict() saves.
        self._rng_state = np.random.Generator(np.random.PCG64(self.seed)).bit_generator.state
        self._rng: np.random.Generator | None = None  # live generator without prefetch
        self._worker: _Prefetcher | None = None
        self.batches = 0

    # ------------------------------------------------------------------ sources
    @staticmethod
    def _describe(src: Source) -> str:
        return str(src) if not isinstance(src, np.ndarray) else f"array {src.shape}"

    @staticmethod
    def _probe(src: Source):
        """(height, width, decoded image or None) of a source; files are only opened."""
        from PIL import Image

        if isinstance(src, np.ndarray):
            arr = _check_uint8_rgb(src, "a PatchLoader source array")
            return arr.shape[0], arr.shape[1], Image.fromarray(np.ascontiguousarray(arr))
        if not isinstance(src, (str, os.PathLike)):
            raise ValueError(f"sources must be image paths or uint8 arrays, got {type(src).__name__}")
        try:
            with Image.open(src) as im:
                w, h = im.size
        except FileNotFoundError as err:
            raise ImageError(f"image file not found: {src}") from err
        except OSError as err:
            raise ImageError(f"{src} is not an image file Pillow can read ({err})") from err
        return h, w, None

    def _image(self, index: int):
        if self._images[index] is None:
            from PIL import Image

            self._images[index] = Image.fromarray(load_image(self._sources[index]))
        return self._images[index]

    def preload(self) -> "PatchLoader":
        """Decode every source now (otherwise each is decoded on first use)."""
        for i in range(len(self._images)):
            self._image(i)
        return self

    @property
    def num_sources(self) -> int:
        return len(self._sources)

    # ------------------------------------------------------------------ sampling
    def _patch(self, rng: np.random.Generator) -> np.ndarray:
        from PIL import Image

        i = int(rng.integers(len(self._sources)))
        h, w = self._sizes[i]
        p = self.patch_size
        low, high = self.downsample
        f_high = max(1.0, min(high, min(h, w) / self.crop_size))
        f_low = min(low, f_high)
        f = math.exp(rng.uniform(math.log(f_low), math.log(f_high))) if f_high > f_low else f_low
        hd, wd = math.floor(h / f), math.floor(w / f)  # downsampled size
        c = min(self.crop_size, hd, wd)
        cy, cx = int(rng.integers(hd - c + 1)), int(rng.integers(wd - c + 1))
        py, px = int(rng.integers(c - p + 1)), int(rng.integers(c - p + 1))
        y0, x0 = cy + py, cx + px
        image = self._image(i)
        if f == 1.0:
            return np.asarray(image.crop((x0, y0, x0 + p, y0 + p)))
        box = (x0 * f, y0 * f, (x0 + p) * f, (y0 + p) * f)
        return np.asarray(image.resize((p, p), Image.Resampling.BICUBIC, box=box))

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def _batch(self, rng: np.random.Generator) -> np.ndarray:
        """One batch as float32 (B, 3, P, P); numpy keeps it single-threaded next to training."""
        batch = np.stack([self._patch(rng) for _ in range(self.batch_size)])
        x = batch.transpose(0, 3, 1, 2).astype(np.float32, order="C")
        if self.noise:
            x += rng.random(x.shape, dtype=np.float32)
            x -= 0.5
        x *= np.float32(1 / 255)
        np.clip(x, 0.0, 1.0, out=x)
        return x

    def __next__(self) -> torch.Tensor:
        import torch

        try:
            if self.prefetch:
                if self._worker is None:
                    self._worker = _Prefetcher(self, self._rng_state, self.prefetch)
                x, self._rng_state = self._worker.get()
            else:
                if self._rng is None:
                    self._rng = _generator(self._rng_state)
                x = self._batch(self._rng)
                self._rng_state = self._rng.bit_generator.state
        except BaseException:
            self.close()  # a failed batch (e.g. a corrupt source) leaves the position unchanged
            self._rng = None
            raise
        self.batches += 1
        return torch.from_numpy(x)

    def close(self) -> None:
        """Stop the prefetch thread, if any (iterating again restarts it where it was)."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ resume
    def _fingerprint(self) -> str:
        """Identifies the sources and settings, so a state is not loaded into another loader."""
        parts = [Path(s).name for s in self._sources]  # arrays are stored as "<array>"
        parts += [repr(self._sizes), repr((self.batch_size, self.patch_size, self.crop_size,
                                           self.noise, self.downsample))]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def state_dict(self) -> dict:
        """Generator state and batch count: ``load_state_dict`` resumes exactly here."""
        return {
            "rng": copy.deepcopy(self._rng_state),
            "batches": self.batches,
            "seed": self.seed,
            "fingerprint": self._fingerprint(),
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Resume from :meth:`state_dict`; the next batches equal those the saved loader would give."""
        missing = {"rng", "batches", "fingerprint"} - set(state)
        if missing:
            raise ValueError(f"not a PatchLoader state: missing keys {sorted(missing)}")
        if state["fingerprint"] != self._fingerprint():
            raise ValueError(
                "this PatchLoader state was saved with other sources or settings (batch_size, "
                "patch_size, crop_size, noise, downsample); build the loader as before to resume"
            )
        self.close()
        self._rng_state = _generator(state["rng"]).bit_generator.state  # validates it
        self._rng = None
        self.batches = int(state["batches"])
        self.seed = int(state.get("seed", self.seed))

    def __repr__(self) -> str:
        return (
            f"PatchLoader({self.num_sources} sources, batch_size={self.batch_size}, "
            f"patch_size={self.patch_size}, crop_size={self.crop_size}, seed={self.seed}, "
            f"noise={self.noise}, downsample={self.downsample}, prefetch={self.prefetch})"
        )


def _generator(state: dict) -> np.random.Generator:
    """A PCG64 generator set to a saved ``bit_generator.state``."""
    rng = np.random.Generator(np.random.PCG64())
    try:
        rng.bit_generator.state = copy.deepcopy(dict(state))
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"not a PatchLoader generator state ({err})") from err
    return rng


class _Prefetcher:
    """Background thread making a loader's next batches, each with the generator state after it.

    It holds the loader only weakly, so a loader that is no longer used is freed and the
    thread ends.
    """

    def __init__(self, loader: PatchLoader, rng_state: dict, depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(weakref.ref(loader), _generator(rng_state)),
            name="PatchLoader-prefetch", daemon=True,
        )
        self._thread.start()

    def _run(self, loader_ref: weakref.ref, rng: np.random.Generator) -> None:
        while not self._stop.is_set():
            loader = loader_ref()
            if loader is None:
                return
            try:
                item = (loader._batch(rng), rng.bit_generator.state)
            except BaseException as err:  # handed to the consumer, raised there
                item = err
            del loader
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    if loader_ref() is None:
                        return
            if isinstance(item, BaseException):
                return

    def get(self) -> tuple[np.ndarray, dict]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
