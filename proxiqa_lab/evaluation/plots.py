"""Rate-distortion plots in the style of the paper's Fig. 8: bpp on x, a metric on y, one line per codec.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no GUI backend), so
they work headless; Jupyter still displays the returned figure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from proxiqa_lab.evaluation.rd import average_curve, load_rd
from proxiqa_lab.fileio import atomic_open


def _label(metric: str) -> str:
    try:
        from proxiqa_lab.metrics import METRICS

        return METRICS[metric].label
    except (ImportError, KeyError):
        return metric


#: Units of the metrics on plot axes.
UNITS = {"psnr_avg": "dB", "psnr": "dB", "vmaf": "0–100", "vmaf_neg": "0–100"}


def axis_label(metric: str) -> str:
    """A metric's axis label with its unit: ``"PSNR (dB)"``, ``"VMAF (0–100)"``, ``"SSIM"``."""
    unit = UNITS.get(metric)
    return f"{_label(metric)} ({unit})" if unit else _label(metric)


def _curves(curves_or_df, metric: str, image: str | None) -> dict[str, tuple[list[float], list[float]]]:
    """{codec: (bpp, metric)} from a tidy table, RD dicts, or CompressAI JSON files/documents."""
    out = {}
    if isinstance(curves_or_df, pd.DataFrame):
        df = curves_or_df
        if image is not None:
            if image not in set(df["image"]):
                raise ValueError(f"image {image!r} not in the table; images: {', '.join(dict.fromkeys(df['image']))}")
            df = df[df["image"] == image]
        if metric not in df.columns:
            raise ValueError(f"metric {metric!r} not in the table; columns: {', '.join(df.columns)}")
        for codec in dict.fromkeys(df["codec"]):
            curve = average_curve(df[df["codec"] == codec])
            out[codec] = (list(curve["bpp"]), list(curve[metric]))
        return out
    if isinstance(curves_or_df, Mapping):
        items = list(curves_or_df.items())
    elif isinstance(curves_or_df, Sequence) and not isinstance(curves_or_df, str):
        docs = [load_rd(c) if isinstance(c, (str, os.PathLike)) else c for c in curves_or_df]
        items = [(d.get("name", f"curve{i}"), d) for i, d in enumerate(docs)]
    else:
        raise ValueError("curves must be an evaluation DataFrame, a {name: results} dict or a list of "
                         f"CompressAI RD files/documents, got {type(curves_or_df).__name__}")
    for name, doc in items:
        results = doc.get("results", doc)
        if metric not in results:
            raise ValueError(f"metric {metric!r} not in curve {name!r}; it has {', '.join(results)}")
        pairs = sorted(zip(results["bpp"], results[metric]))
        out[str(name)] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return out


def plot_rd(curves_or_df, metric: str, out_path_stem: str | os.PathLike | None = None,
            title: str | None = None, image: str | None = None, figsize=(5.0, 3.8),
            dataset: str | None = None) -> Figure:
    """Plot RD curves (bpp vs metric), one line with markers per codec, and save PNG + SVG.

    Args:
        curves_or_df: an :func:`~proxiqa_lab.evaluation.evaluate` table (several codecs
            concatenated; averaged over images unless ``image`` is given), a
            ``{name: {"bpp": [...], metric: [...]}}`` dict, or a list of CompressAI RD JSON
            paths or documents.
        metric: the y-axis metric (e.g. "vmaf").
        out_path_stem: where to save, without suffix: writes ``<stem>.png`` and ``<stem>.svg``.
            None: do not save.
        title: figure title (default: the metric against rate, for the image or the mean over ``dataset``).
        image: plot one image's curves (as the paper's Fig. 8 does) instead of the mean.
        figsize: inches.
        dataset: the images' dataset, named in the default title.

    Returns:
        The matplotlib Figure.
    """
    import seaborn as sns

    curves = _curves(curves_or_df, metric, image)
    if not curves:
        raise ValueError("no curves to plot")
    many = len(curves) > 6  # the legend goes beside the axes, where it hides no curve
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=(figsize[0] + 2.2 * many, figsize[1]), layout="constrained")
        ax = fig.add_subplot()
        # "colorblind" has 10 colours; past that, tab20's 20, so that no two curves share one
        palette = sns.color_palette("colorblind" if len(curves) <= 10 else "tab20", len(curves))
        markers = "osD^vP*Xph"
        for i, (name, (bpp, values)) in enumerate(curves.items()):
            # sizes shrink and faces empty along the list, so a curve drawn over another leaves it visible
            ax.plot(bpp, values, marker=markers[i % len(markers)], markersize=max(3.5, 8 - 1.5 * (i % 4)),
                    mfc=palette[i] if i % 2 == 0 else "none", mew=1.3, linewidth=1.5,
                    ls=("-", "--", "-.", ":")[i % 4], color=palette[i], label=name)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.ticklabel_format(axis="both", style="plain", useOffset=False)
        ax.set_xlabel("rate (bits per pixel)")
        ax.set_ylabel(axis_label(metric))
        where = image or (f"{dataset} (mean over the images)" if dataset else "mean over the images")
        ax.set_title(title or f"{_label(metric)} against rate, {where}")
        if many:
            ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax.legend(frameon=True, fontsize="small", loc="best")
    if out_path_stem is not None:
        stem = Path(out_path_stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".png", ".svg"):
            target = stem.with_name(stem.name + suffix)
            with atomic_open(target, "wb") as f:
                fig.savefig(f, format=suffix[1:], dpi=150)
    return fig
