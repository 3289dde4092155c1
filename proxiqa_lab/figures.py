"""Figures that are not rate-distortion curves: proxy-vs-true scores during training (Fig. 7),
image and crop comparisons (Figs. 6, 8, 10), BD-rate against training steps (Fig. 11) and
normalised encoding times (Fig. 12). RD curves live in :mod:`proxiqa_lab.evaluation`.

Every function returns a :class:`matplotlib.figure.Figure` (built without pyplot, so nothing is
shown twice in a notebook); :func:`save_figure` writes it as PNG and SVG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def save_figure(fig: Figure, out_dir: str | Path, name: str, dpi: int = 120) -> list[Path]:
    """Write ``fig`` to ``out_dir/name.png`` and ``out_dir/name.svg``; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


def proxy_vs_true(
    curves: Mapping[str, pd.DataFrame],
    label: str = "VMAF",
    step: str = "step",
    columns: tuple[str, str, str, str] = ("true_mean", "true_std", "proxy_mean", "proxy_std"),
    smooth: int = 1,
    title: str | None = None,
) -> Figure:
    """Fig. 7: true metric M and proxy M̂ of the training patches, mean (line) ± std (band).

    Args:
        curves: panel title -> table with a ``step`` column and mean/std columns of the true
            and proxy scores (e.g. the rows of a run's ``log.csv``).
        label: the metric's name on the y axis.
        step: the x column.
        columns: (true mean, true std, proxy mean, proxy std) column names.
        smooth: rolling-mean window over rows (1: none).
        title: the figure's title.
    """
    fig = Figure(figsize=(5 * len(curves), 3.9 if title else 3.6), layout="constrained")
    if title:
        fig.suptitle(title)
    axes = np.atleast_1d(fig.subplots(1, len(curves), sharey=True))
    for ax, (title, log) in zip(axes, curves.items()):
        log = log.dropna(subset=[columns[0], columns[2]]).sort_values(step)
        roll = lambda s: s.rolling(smooth, min_periods=1).mean()  # noqa: E731
        x = log[step].to_numpy()
        for (mean, std), name, color in zip(((columns[0], columns[1]), (columns[2], columns[3])),
                                            (f"true {label}", f"proxy {label}"), ("tab:blue", "tab:orange")):
            m = roll(log[mean]).to_numpy()
            s = roll(log[std].fillna(0)).to_numpy() if std in log else np.zeros_like(m)
            ax.plot(x, m, color=color, label=name)
            ax.fill_between(x, m - s, m + s, color=color, alpha=0.25, lw=0)
        ax.set(title=title, xlabel="training step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{label} of the batch (mean ± std)")
    axes[0].legend(loc="best")
    return fig


def image_row(
    images: Mapping[str, np.ndarray],
    captions: Mapping[str, str] | None = None,
    width: float = 3.2,
    title: str | None = None,
    columns: int = 7,
) -> Figure:
    """Images side by side with titles, optional captions and an optional figure title (Figs. 6, 8, 10);
    more than ``columns`` images wrap onto rows of nearly equal length (13 in rows of 7 and 6, not 7, 6, 1
    or 6, 6, 1)."""
    first = next(iter(images.values()))
    aspect = first.shape[0] / first.shape[1]
    nrows = -(-len(images) // max(1, columns))
    ncols = max(1, -(-len(images) // nrows))
    extra = (0.9 if captions else 0.5) + (0.4 if title else 0) / nrows
    fig = Figure(figsize=(width * ncols, nrows * (width * aspect + extra)), layout="constrained")
    if title:
        fig.suptitle(title, fontsize=11)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(images):]:
        ax.set_axis_off()
    for ax, (title, img) in zip(axes, images.items()):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        if captions and title in captions:
            ax.set_xlabel(captions[title], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def adversarial_panel(
    source: np.ndarray,
    decoded: np.ndarray,
    true_score: float,
    proxy_score: float,
    label: str = "VMAF",
    bpp: float | None = None,
    source_name: str = "source",
    title: str | None = None,
) -> Figure:
    """Fig. 6: the source, the codec's decoded image, and its true vs proxy score, under ``title``
    (which says which codec decoded it)."""
    rate = f", {bpp:.3f} bpp" if bpp is not None else ""
    return image_row(
        {f"(a) {source_name}": source, f"(b) decoded{rate}": decoded},
        captions={f"(b) decoded{rate}": f"true {label} {true_score:.2f}  vs  proxy {label} {proxy_score:.2f}"},
        width=4.5, title=title,
    )


def metric_vs_steps(
    table: pd.DataFrame,
    x: str = "step",
    y: str = "bd_rate_mean",
    err: str | None = "bd_rate_std",
    group: str = "curve",
    lr_drop_step: int | None = None,
    ylabel: str = "VMAF BD-rate (%)",
    title: str = "Fig. 11: BD-rate against training steps",
) -> Figure:
    """Fig. 11: a value (mean ± std error bars) against training steps, one line per group."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for i, (name, sub) in enumerate(table.sort_values(x).groupby(group, sort=False)):
        yerr = sub[err] if err and err in sub else None
        ax.errorbar(sub[x], sub[y], yerr=yerr, marker="os^D"[i % 4], ms=9 - 2 * (i % 3), mfc="none" if i else None,
                    mew=1.5, capsize=3, ls="-" if i == 0 else "--", label=str(name))
    if lr_drop_step is not None:
        ax.axvline(lr_drop_step, color="gray", ls=":", label="learning rate / 10")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="training steps", ylabel=f"{ylabel}, mean ± std over images", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def normalised_times(table: pd.DataFrame, x: str = "bpp", y: str = "encode_norm", group: str = "label",
                     title: str = "Fig. 12: encoding time against rate, relative to 2 bpp") -> Figure:
    """Fig. 12: encoding time per rate point divided by the time at the highest rate (2 bpp)."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    markers = "osD^vP*X"
    for i, (name, sub) in enumerate(table.sort_values(x).groupby(group, sort=False)):
        ax.plot(sub[x], sub[y], marker=markers[i % len(markers)], ms=7 - (i % 3), label=str(name))
    ax.set(xlabel="rate (bits per pixel, log scale)", ylabel="encode time / encode time at 2 bpp", xscale="log",
           title=title)
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def bar_table(table: pd.DataFrame, value: str, label: str, index: str = "codec", hue: str | None = None,
              log: bool = False, order: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """A bar chart of one column of a table (e.g. Table V's encode times), titled ``title`` (default: ``label``)."""
    fig = Figure(figsize=(6.5, 3.9), layout="constrained")
    ax = fig.subplots()
    pivot = table.pivot_table(index=index, columns=hue, values=value) if hue else table.set_index(index)[[value]]
    if order is not None:
        pivot = pivot.reindex([o for o in order if o in pivot.index])
    pivot.plot.bar(ax=ax, logy=log, rot=30, legend=hue is not None)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
    ax.set(ylabel=label + (" (log scale)" if log else ""), xlabel="", title=title or label)
    ax.grid(alpha=0.3, axis="y")
    return fig


#: The paper's symbols for table columns in legends.
SYMBOLS = {"lmbda": "λ", "alpha": "α"}

#: How training-curve panels name the ``log.csv`` columns.
LOG_LABELS = {"loss": "training loss (eq. 8 / 10, log scale)", "bpp": "rate of the batch (bpp)",
              "psnr": "PSNR of the batch (dB, RGB)", "metric_true": "true metric of the batch",
              "metric_proxy": "proxy score of the batch"}


def training_curves(logs: pd.DataFrame, columns: Sequence[str] = ("loss", "bpp", "psnr"), group: str = "label",
                    hue: str = "lmbda", title: str = "Training curves, one line per run") -> Figure:
    """Training curves of a grid of runs (stacked ``log.csv`` rows): one panel per column, one line per run;
    the legend sits beside the panels so that it hides no curve."""
    fig = Figure(figsize=(4.2 * len(columns) + 2.2, 3.8), layout="constrained")
    fig.suptitle(title)
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    styles = {name: s for name, s in zip(dict.fromkeys(logs[group]), ("-", "--", ":", "-."))}
    hues = sorted(logs[hue].unique())
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for ax, col in zip(axes, columns):
        for (name, value), sub in logs.groupby([group, hue], sort=False):
            color = cmap(hues.index(value) / max(1, len(hues) - 1))
            ax.plot(sub["step"], sub[col], ls=styles.get(name, "-"), color=color,
                    label=f"{name}, {SYMBOLS.get(hue, hue)} = {value:g}")
        ax.set(xlabel="training step", ylabel=LOG_LABELS.get(col, col), yscale="log" if col == "loss" else "linear")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def proxy_step(patches: pd.DataFrame, label: str = "VMAF") -> Figure:
    """One proxy step (eq. 11): proxy scores before and after it against the true scores, per patch."""
    fig = Figure(figsize=(4.5, 4), layout="constrained")
    ax = fig.subplots()
    true = patches.iloc[:, 0]
    for col, marker in zip(patches.columns[1:], ("o", "s")):
        ax.scatter(true, patches[col], marker=marker, label=col, alpha=0.8)
    lo = float(np.nanmin(patches.to_numpy()))
    hi = float(np.nanmax(patches.to_numpy()))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="M̂ = M")
    ax.set(xlabel=f"true {label} M", ylabel=f"proxy {label} M̂", title="proxy step of Fig. 3 on one batch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def gradient_alignment(logs: pd.DataFrame, group: str = "label", hue: str = "lmbda", metric: str = "VMAF") -> Figure:
    """Does the proxy point the codec where the metric rises? The cosine between the proxy's gradient
    ∂M̂/∂x̂ and the metric's exact gradient (solid), and between the plain MSE descent direction and
    the exact gradient (dashed), during training (``log.csv``'s ``grad_cos_*`` rows).

    Args:
        logs: stacked ``log.csv`` rows (:func:`proxiqa_lab.studies.training_logs`) of runs that logged
            the diagnostic (``diagnose_every``).
        group, hue: columns naming a run (one colour per ``hue`` value).
        metric: the metric's name in the labels, for logs without an ``objective`` column; with one, each
            run's metric is read from its objective (``proxy:ssim`` is compared with SSIM's gradient).
    """
    import matplotlib

    rows = logs.dropna(subset=["grad_cos_proxy"]) if "grad_cos_proxy" in logs else logs.iloc[:0]
    if "objective" in rows and not rows.empty:
        names = rows["objective"].str.split(":").str[-1].str.upper().str.replace("_", "-")
        rows = rows.assign(_metric=names)
        metric = names.iloc[0] if names.nunique() == 1 else "its metric"
    else:
        rows = rows.assign(_metric=metric)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    if rows.empty:
        ax.text(0.5, 0.5, "no run logged the gradient diagnostic (diagnose_every)", ha="center", va="center",
                transform=ax.transAxes)
    cmap = matplotlib.colormaps["viridis"]
    runs = list(rows.groupby([group, hue], sort=False)) if not rows.empty else []
    for i, ((name, value), sub) in enumerate(runs):
        color = cmap(0.85 * i / max(1, len(runs) - 1))
        h = SYMBOLS.get(hue, hue)
        ax.plot(sub["step"], sub["grad_cos_proxy"], "-o", ms=3, color=color,
                label=f"{sub['_metric'].iloc[0]} proxy, {name}, {h} = {value:g}")
        ax.plot(sub["step"], sub["grad_cos_mse"], "--", color=color, alpha=0.8,
                label=f"MSE direction, {name}, {h} = {value:g}")
    ax.axhline(0, color="black", lw=0.8)
    gradient = "∂M/∂x̂ of its metric" if metric == "its metric" else f"∂{metric}/∂x̂"
    ax.set(xlabel="training step", ylabel=f"cosine with the exact {gradient}",
           title=f"Does the proxy's gradient point where {metric} rises?")
    ax.grid(alpha=0.3)
    if not rows.empty:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig
