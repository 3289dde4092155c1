"""Rate-distortion evaluation of any codec, CompressAI-schema RD files, and BD-rate tables.

:func:`evaluate` runs a codec (classical or learned: anything following the Codec protocol)
over a set of images and returns a tidy table, one row per image and rate point. The rate is
the real size of the bitstream ``encode`` returned; the metrics are the kit's reference ones
(:func:`proxiqa_lab.metrics.score`, the paper's Sec. IV-A.2). :func:`save_rd` writes that
table as CSV and the averaged curve as CompressAI-schema JSON; :func:`bd_table` and
:func:`bd_summary` lay BD-rates out like the paper's Tables I and II.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from proxiqa_lab.errors import BitstreamError, ImageError
from proxiqa_lab.evaluation.bdrate import DEFAULT_METHOD, bd_rate, check_method
from proxiqa_lab.evaluation.cache import RDCache
from proxiqa_lab.fileio import atomic_write_text

#: Every metric an evaluation can report, in table order.
ALL_METRICS: tuple[str, ...] = ("psnr_avg", "ssim", "ms_ssim", "vif", "vmaf", "vmaf_neg")
#: Columns of :func:`evaluate`'s table, metrics in between.
ID_COLUMNS = ("image", "codec", "point", "bpp")
TIME_COLUMNS = ("encode_s", "decode_s")


def _named_images(images) -> list[tuple[str, object]]:
    """(name, path or array) pairs from a list of paths/arrays or a {name: array or path} mapping."""
    if isinstance(images, (str, os.PathLike, np.ndarray)):
        images = [images]
    if isinstance(images, Mapping):
        items = [(str(k), v) for k, v in images.items()]
    elif isinstance(images, Sequence):
        items = [(Path(v).stem if isinstance(v, (str, os.PathLike)) else f"image{i:03d}", v)
                 for i, v in enumerate(images)]
    else:
        raise ImageError(f"images must be a list of paths or arrays or a {{name: array}} dict, "
                         f"got {type(images).__name__}")
    if not items:
        raise ImageError("no images to evaluate; pass at least one path or array")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ImageError(f"image names must be unique, got {names}; pass a {{name: image}} dict")
    return items


def _load(item) -> np.ndarray:
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
            raise ImageError(f"images must be uint8 RGB (H, W, 3), got {item.dtype} {item.shape}")
        return np.ascontiguousarray(item)
    from proxiqa_lab.data import load_image

    return load_image(item)


def evaluate(codec, images, metrics: Sequence[str] = ALL_METRICS, points: Sequence | None = None,
             progress: bool = True, cache: RDCache | None = None) -> pd.DataFrame:
    """Encode, decode and score every image at every rate point of a codec.

    A codec that has a ``prepare(img, points)`` method (the classical codecs' per-image rate
    search) gets it called before the timed encodes, so ``encode_s`` is one encode.

    Args:
        codec: any object with ``name``, ``points``, ``encode(img, point)`` and
            ``decode(data, point)`` (the Codec protocol).
        images: paths (read with :func:`proxiqa_lab.data.load_image`), uint8 arrays, or a
            ``{name: array or path}`` dict.
        metrics: names from :data:`ALL_METRICS`; all points of one image are scored in one call.
        points: rate points to use (default ``codec.points``).
        progress: show a tqdm bar.
        cache: an :class:`~proxiqa_lab.evaluation.RDCache`; codecs that have a ``cache_key``
            (the classical ones) read the images' points from it when every point and metric
            is there, and write what they measure. Learned codecs ignore it.

    Returns:
        Tidy table, one row per (image, point): image, codec, point, bpp (achieved, from the
        bitstream's length), one column per metric, encode_s, decode_s.
    """
    from proxiqa_lab.metrics import score
    from proxiqa_lab.metrics.registry import check_metric_names

    metrics = check_metric_names(metrics)
    points = list(codec.points if points is None else points)
    if not points:
        raise ValueError(f"codec {codec.name!r} has no rate points to evaluate")
    items = _named_images(images)
    bar = None
    if progress:
        from proxiqa_lab.progress import tqdm

        bar = tqdm(total=len(items) * len(points), desc=f"evaluate {codec.name}", unit="pt")
    key = None if cache is None else cache.key_of(codec)
    if key is not None:
        from proxiqa_lab.classical import image_key
    rows = []
    try:
        for name, item in items:
            img = _load(item)
            h, w = img.shape[:2]
            if key is not None:
                img_key = image_key(img)
                cached = cache.get(key, img_key, points, metrics)
                if cached is not None:
                    rows.extend({**row, "image": name, "codec": codec.name, "point": point}
                                for point, row in zip(points, cached))
                    if bar is not None:
                        bar.update(len(points))
                    continue
            if hasattr(codec, "prepare"):
                codec.prepare(img, points)
            recs, img_rows = [], []
            for point in points:
                t0 = time.perf_counter()
                data = codec.encode(img, point)
                t1 = time.perf_counter()
                rec = codec.decode(data, point)
                t2 = time.perf_counter()
                if not isinstance(rec, np.ndarray) or rec.shape != img.shape or rec.dtype != np.uint8:
                    raise BitstreamError(f"codec {codec.name!r} decoded {name} at point {point!r} to "
                                         f"{getattr(rec, 'dtype', type(rec).__name__)} "
                                         f"{getattr(rec, 'shape', '')}, expected uint8 {img.shape}")
                recs.append(rec)
                img_rows.append({"image": name, "codec": codec.name, "point": point,
                                 "bpp": 8.0 * len(data) / (h * w), "encode_s": t1 - t0, "decode_s": t2 - t1})
                if bar is not None:
                    bar.update(1)
            scores = score(np.stack([img] * len(recs)), np.stack(recs), metrics=metrics)
            for i, row in enumerate(img_rows):
                row.update({m: float(scores[m][i]) for m in metrics})
            if key is not None:
                cache.put(key, img_key, [{k: v for k, v in r.items() if k not in ("image", "codec")}
                                         for r in img_rows])
            rows.extend(img_rows)
    finally:
        if bar is not None:
            bar.close()
    return pd.DataFrame(rows, columns=[*ID_COLUMNS, *metrics, *TIME_COLUMNS])


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The metric columns of an evaluation table, in :data:`ALL_METRICS` order."""
    return [m for m in ALL_METRICS if m in df.columns]


def average_curve(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over images of bpp, metrics and times, per rate point (sorted by mean bpp)."""
    cols = ["bpp", *metric_columns(df), *[c for c in TIME_COLUMNS if c in df.columns]]
    key = df["point"].astype(str)
    out = df.groupby(key, sort=False)[cols].mean()
    return out.sort_values("bpp").reset_index(drop=True)


def rd_results(df: pd.DataFrame) -> dict[str, list[float]]:
    """The averaged curve as CompressAI's ``results`` dict: {"bpp": [...], metric: [...], ...}."""
    curve = average_curve(df)
    results = {col: [float(v) for v in curve[col]] for col in ["bpp", *metric_columns(df)]}
    if "encode_s" in curve:
        results["encoding_time"] = [float(v) for v in curve["encode_s"]]
        results["decoding_time"] = [float(v) for v in curve["decode_s"]]
    return results


def _atomic_write(path: Path, text: str, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (or another name/folder) to replace it")
    return atomic_write_text(path, text, newline="")


def save_rd(df: pd.DataFrame, out_dir: str | os.PathLike, name: str, description: str = "",
            overwrite: bool = True) -> tuple[Path, Path]:
    """Write an evaluation as ``<name>.csv`` (per image) and ``<name>.json`` (CompressAI schema).

    The JSON holds ``{"name", "description", "results": {"bpp": [...], "<metric>": [...],
    "encoding_time": [...], "decoding_time": [...]}}``, each list the per-point mean over images.
    Both files are written to a temporary file first and renamed, so a reader never sees half a
    file.

    Args:
        df: table from :func:`evaluate` (one codec).
        out_dir: results folder (created if missing).
        name: file stem and the JSON's "name".
        description: free text for the JSON.
        overwrite: replace existing files of the same name (default); if False, refuse.

    Returns:
        (csv path, json path).
    """
    if df.empty:
        raise ValueError("nothing to save: the evaluation table is empty")
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "description": description, "results": rd_results(df)}
    csv_path = _atomic_write(out / f"{name}.csv", df.to_csv(index=False), overwrite)
    json_path = _atomic_write(out / f"{name}.json", json.dumps(doc, indent=2) + "\n", overwrite)
    return csv_path, json_path


def load_rd(path: str | os.PathLike) -> dict:
    """Read and check a CompressAI-schema RD file: {"name", "description", "results": {...}}.

    Every result is a list of numbers: ``true``/``false`` are refused, and so are integers too
    large for a float. NaN and Infinity are kept (a metric may have failed at one point); BD
    functions refuse them in the curves they fit.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"RD file not found: {path}") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file (a device, pipe or socket); give an RD file (JSON)")
    schema = '{"name", "description", "results": {"bpp": [...], ...}}'
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError(f"{path} nests JSON arrays or objects too deeply to read; expected CompressAI's "
                         f"{schema}") from None
    except ValueError as err:  # not UTF-8, not JSON, or an integer of more than 4300 digits
        raise ValueError(f"{path} is not valid JSON ({err}); expected CompressAI's {schema}") from err
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict) or "bpp" not in results:
        raise ValueError(f"{path} is not a CompressAI-schema RD file: it needs a \"results\" object "
                         'with a "bpp" list, like {"name": ..., "results": {"bpp": [...], "psnr-rgb": [...]}}')
    n = None
    for key, values in results.items():
        _check_numbers(path, key, values)
        if n is not None and len(values) != n:
            raise ValueError(f"{path}: results lists differ in length ({key!r} has {len(values)}, "
                             f"'bpp' has {n})")
        n = len(values) if n is None else n
    doc.setdefault("name", path.stem)
    return doc


def _check_numbers(path: Path, key: str, values) -> None:
    """Refuse a result that is not a list of numbers; booleans and ints beyond a float's range are not."""
    if not isinstance(values, list):
        raise ValueError(f"{path}: results[{key!r}] must be a list of numbers, got {type(values).__name__}")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            shown = json.dumps(v)[:40] if isinstance(v, (bool, str, type(None))) else type(v).__name__
            raise ValueError(f"{path}: results[{key!r}][{i}] is {shown}, not a number; "
                             f"results[{key!r}] must be a list of numbers")
        try:
            float(v)
        except OverflowError:
            raise ValueError(f"{path}: results[{key!r}][{i}] is an integer of {len(str(abs(v)))} digits, "
                             f"beyond a float's range; results[{key!r}] must be a list of numbers") from None


def bd_table(df: pd.DataFrame, baseline: str, metrics: Sequence[str] | None = None,
             method: str = DEFAULT_METHOD) -> pd.DataFrame:
    """Per-image BD-rate of every codec against a baseline codec (the paper's Table I layout).

    Args:
        df: evaluation tables of several codecs concatenated (same images).
        baseline: codec name of the anchor (the paper uses the MSE-optimized BLS model).
        metrics: metric columns to use (default all present).
        method: "pchip" (the default), "cubic" or "akima" (see :mod:`proxiqa_lab.evaluation.bdrate`).

    Returns:
        BD-rate in percent, rows indexed by (codec, image), one column per metric. Cells that
        cannot be computed (too few distinct points, curves that do not overlap) are NaN and
        reported with a warning.
    """
    check_method(method)
    codecs = list(dict.fromkeys(df["codec"]))
    if baseline not in codecs:
        raise ValueError(f"baseline codec {baseline!r} is not in the table; codecs there: {', '.join(codecs)}")
    metrics = list(metric_columns(df) if metrics is None else metrics)
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metric(s) {missing} not in the table; present: {', '.join(metric_columns(df))}")
    base = df[df["codec"] == baseline]
    rows, index = [], []
    for codec in codecs:
        if codec == baseline:
            continue
        test = df[df["codec"] == codec]
        for image in dict.fromkeys(test["image"]):
            a, t = base[base["image"] == image], test[test["image"] == image]
            row = {}
            for m in metrics:
                try:
                    row[m] = bd_rate(a["bpp"], a[m], t["bpp"], t[m], method) if len(a) else math.nan
                except (ValueError, ArithmeticError) as err:  # one bad image must not abort the table
                    warnings.warn(f"BD-rate of {codec} vs {baseline} on {image} ({m}) is NaN: {err}",
                                  stacklevel=2)
                    row[m] = math.nan
            rows.append(row)
            index.append((codec, image))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["codec", "image"]),
                        columns=metrics)


def bd_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1) over images per codec (the paper's Table II layout).

    Returns:
        Rows: codecs. Columns: (metric, "mean"|"std").
    """
    grouped = table.groupby(level="codec", sort=False)
    out = pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=1)}, axis=1)
    return out.swaplevel(axis=1)[[(m, s) for m in table.columns for s in ("mean", "std")]]


def summary_markdown(summary: pd.DataFrame, labels: Mapping[str, str] | None = None, digits: int = 2) -> str:
    """A Markdown table of :func:`bd_summary` with "mean ± std" cells."""
    metrics = list(dict.fromkeys(summary.columns.get_level_values(0)))
    labels = labels or {}
    head = "| codec | " + " | ".join(labels.get(m, m) for m in metrics) + " |"
    lines = [head, "|---|" + "---:|" * len(metrics)]
    for codec, row in summary.iterrows():
        cells = [f"{row[(m, 'mean')]:.{digits}f} ± {row[(m, 'std')]:.{digits}f}" for m in metrics]
        lines.append(f"| {codec} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    """Write a small results file atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _atomic_write(path, text, overwrite)
