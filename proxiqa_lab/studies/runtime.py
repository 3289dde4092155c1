"""Encode and decode times of classical and learned codecs (Sec. IV-F, Table V and Fig. 12)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def time_codec(codec, images: Mapping[str, np.ndarray], repeats: int = 1, device: str = "cpu",
               progress: bool = False) -> pd.DataFrame:
    """Median encode and decode wall time of every image at every rate point of a codec.

    Model loading (learned codecs) and the classical codecs' rate search are done before the
    clock starts, as in Table V ("model loading time for deep compression is excluded"). Each
    timed encode returns the real bitstream, so ``bpp`` is the achieved rate.

    Args:
        codec: a Codec (``name``, ``points``, ``encode``, ``decode``).
        images: ``{name: uint8 (H, W, 3)}``.
        repeats: timed repetitions per encode/decode; the median is kept.
        device: label of where the codec runs (``"cpu"``/``"cuda"``), copied into the table.
        progress: show a tqdm bar.

    Returns:
        One row per (image, point): codec, device, image, point, bpp, encode_ms, decode_ms.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    rows = []
    items = list(images.items())
    bar = None
    if progress:
        from proxiqa_lab.progress import tqdm

        bar = tqdm(total=len(items) * len(codec.points), desc=f"time {codec.name} ({device})", unit="pt")
    for name, img in items:
        if hasattr(codec, "prepare"):
            codec.prepare(img, codec.points)
        for point in codec.points:
            codec.decode(codec.encode(img, point), point)  # warm-up: loads models, builds tables
            encode_s, data = _median_time(lambda: codec.encode(img, point), repeats)
            decode_s, _ = _median_time(lambda: codec.decode(data, point), repeats)
            rows.append({"codec": codec.name, "device": device, "image": name, "point": str(point),
                         "bpp": 8.0 * len(data) / (img.shape[0] * img.shape[1]),
                         "encode_ms": 1000 * encode_s, "decode_ms": 1000 * decode_s})
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows)


def runtime_table(times: pd.DataFrame) -> pd.DataFrame:
    """Table V: mean encode and decode time (ms) per codec and device, over images and rate points."""
    table = times.groupby(["codec", "device"], sort=False)[["encode_ms", "decode_ms", "bpp"]].mean()
    return table.rename(columns={"bpp": "mean_bpp"}).reset_index()


def normalised_encode_times(times: pd.DataFrame, reference_bpp: float = 2.0) -> pd.DataFrame:
    """Fig. 12: per codec and rate point, mean encode time divided by that of the point nearest ``reference_bpp``.

    The paper normalises by the time at 2.0 bpp. A learned codec's rate is set by its model
    (one per λ), not by a target, so its reference is the model whose mean rate is nearest
    ``reference_bpp`` (on a log scale).
    """
    per_point = times.groupby(["codec", "device", "point"], sort=False)[["bpp", "encode_ms"]].mean().reset_index()
    frames = []
    for _, sub in per_point.groupby(["codec", "device"], sort=False):
        ref = sub.iloc[int(np.argmin(np.abs(np.log(sub["bpp"]) - np.log(reference_bpp))))]
        sub = sub.assign(encode_norm=sub["encode_ms"] / ref["encode_ms"], reference_bpp=ref["bpp"])
        frames.append(sub.sort_values("bpp"))
    out = pd.concat(frames, ignore_index=True)
    out["label"] = out["codec"] + " (" + out["device"] + ")"
    return out


def runtime_study(codecs: Sequence[tuple[object, str]], images: Mapping[str, np.ndarray], repeats: int = 1,
                  progress: bool = False) -> pd.DataFrame:
    """:func:`time_codec` of several ``(codec, device label)`` pairs, concatenated."""
    return pd.concat([time_codec(c, images, repeats, device, progress) for c, device in codecs], ignore_index=True)


def paper_width_codec(profile: str, N: int = 192, device: str | None = None):
    """A BLS codec at the paper's width (N = 192) with untrained weights, for timing only.

    Encode and decode times of a learned codec depend on its architecture, not on what it
    learned, so this measures Table V's "BLS" row at the paper's width even when the trained
    models of a small profile are narrower. Its rate and quality mean nothing.
    """
    from proxiqa_lab.codec import LearnedCodec
    from proxiqa_lab.models import BLS, save_checkpoint
    from proxiqa_lab.paths import runs_root

    path = runs_root() / profile / "runtime" / f"bls{N}-untrained.pt"
    if not path.is_file():
        torch_model = BLS(N=N)
        torch_model.update(force=True)
        save_checkpoint(path, torch_model, note="untrained weights, for runtime measurements only")
    return LearnedCodec([path], name=f"BLS N={N} (untrained, timing only)", device=device)
