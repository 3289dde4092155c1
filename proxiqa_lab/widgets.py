"""Interactive explorers for precomputed studies.

:class:`AlphaLambdaExplorer` shows how the weights of eq. (10),
``L = λ[α(M̄ − M̂) + (1 − α)d] + R``, move a codec on the rate-distortion plane. It never
trains or encodes anything: its sliders index into a table of models trained beforehand
(``proxiqa_lab.studies.explorer_grid``), so it works the same in a browser, in a test, and
headlessly (:meth:`AlphaLambdaExplorer.draw` returns a static figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

#: Columns the explorer reads; ``proxy`` and ``crop`` are optional.
REQUIRED_COLUMNS = ("alpha", "lmbda", "bpp")
#: The widget shows its figure at this many CSS pixels per inch, rendered at twice that so that
#: text stays sharp on high-density screens (the browser then shrinks it, never stretches it).
DISPLAY_DPI = 100
#: Marker, size and line style per α series: filled large, hollow medium, small, ... so a series
#: on top of another one leaves it visible.
SERIES_STYLES = (("o", 11, "-"), ("s", 8, "--"), ("^", 6, ":"), ("D", 4, "-."), ("v", 3, "-"))


def objective_title(objective: str | None) -> str:
    """What the perceptual term of eq. (10) is for ``objective``, in words for a figure title:
    ``"direct:vmaf, VMAF's exact gradient (no proxy)"``, ``"proxy:vmaf, the VMAF proxy (the paper's method)"``.
    ``None`` gives the bare equation (a grid of unknown objective)."""
    if not objective:
        return "eq. (10)"
    kind, _, metric = objective.partition(":")
    if metric:
        from proxiqa_lab.evaluation.plots import _label

        name = _label(metric)
        if kind == "direct":
            return f"{objective}, {name}'s exact gradient (no proxy)"
        if kind == "proxy":
            return f"{objective}, the {name} proxy (the paper's method)"
        if kind == "pretrained-proxy":
            return f"{objective}, a frozen pretrained {name} proxy"
    return objective


class AlphaLambdaExplorer:
    """Two sliders (α, λ) over a grid of trained models; shows the RD point, scores and a crop.

    Args:
        results: one row per model with columns ``alpha``, ``lmbda``, ``bpp``, the metric
            columns (``vmaf``, ``psnr_avg``, ...), optionally ``proxy`` (the proxy's score M̂
            of the same decoded image) and ``crop`` (path of a PNG of a decoded crop).
        metric: metric on the y axis of the RD plane.
        second: a second RD plane beside it (default VMAF-NEG when the results have it, so that a
            VMAF gain that is only enhancement shows as VMAF rising where VMAF-NEG does not);
            ``None`` for one plane.
        scores: metric columns listed in the text panel (those present are shown).
        crops: optional ``{(alpha, lmbda): uint8 (H, W, 3)}``, used instead of ``crop`` paths.
        objective: the training objective of the grid (``"proxy:vmaf"``, ``"direct:vmaf"``, ...),
            named in the figure's title and legend (default: the results' ``objective`` column when
            it holds one value), so that a grid through VMAF's exact gradient is not read as the proxy.

    Example:
        >>> explorer = AlphaLambdaExplorer(df)        # doctest: +SKIP
        >>> explorer.widget()                         # in Jupyter: sliders + live figure
        >>> explorer.select(alpha=0.5, lmbda=0.013)   # the same from code
    """

    def __init__(
        self,
        results: pd.DataFrame,
        metric: str = "vmaf",
        scores: tuple[str, ...] = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg"),
        crops: Mapping[tuple[float, float], np.ndarray] | None = None,
        second: str | None = "vmaf_neg",
        objective: str | None = None,
    ) -> None:
        missing = [c for c in (*REQUIRED_COLUMNS, metric) if c not in results.columns]
        if missing:
            raise ValueError(
                f"results lack column(s) {missing}; they have {list(results.columns)}. "
                "Build them with proxiqa_lab.studies.explorer_grid."
            )
        if results.empty:
            raise ValueError("results is empty: the explorer needs at least one trained model")
        duplicated = results.duplicated(["alpha", "lmbda"])
        if duplicated.any():
            pairs = results[duplicated][["alpha", "lmbda"]].values.tolist()
            raise ValueError(f"results have several rows for (alpha, lmbda) = {pairs}; keep one model per pair")
        self.results = results.reset_index(drop=True)
        if objective is None and "objective" in results.columns and results["objective"].nunique() == 1:
            objective = str(results["objective"].iloc[0])
        self.objective = objective
        self.metric = metric
        self.planes = tuple(m for m in (metric, second) if m is not None and m in results.columns)
        self.scores = tuple(s for s in scores if s in results.columns)
        self.alphas = sorted(float(a) for a in results["alpha"].unique())
        self.lmbdas = sorted(float(v) for v in results["lmbda"].unique())
        self._crops = dict(crops or {})
        self._alpha, self._lmbda = self.alphas[len(self.alphas) // 2], self.lmbdas[len(self.lmbdas) // 2]
        self._box = None
        self.figure = Figure(figsize=(6.5 + 3.5 * len(self.planes), 4.2), layout="constrained")
        self._build_figure()
        self._refresh()

    # ----------------------------------------------------------------------------- state
    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def lmbda(self) -> float:
        return self._lmbda

    @property
    def current(self) -> pd.Series | None:
        """The row of the selected (α, λ), or None where that pair was not trained."""
        r = self.results
        rows = r[np.isclose(r["alpha"], self._alpha) & np.isclose(r["lmbda"], self._lmbda)]
        return None if rows.empty else rows.iloc[0]

    def select(self, alpha: float | None = None, lmbda: float | None = None) -> pd.Series | None:
        """Move the selection to the nearest grid values of ``alpha``/``lmbda``; return the row."""
        if alpha is not None:
            self._alpha = _nearest(self.alphas, alpha, "alpha")
        if lmbda is not None:
            self._lmbda = _nearest(self.lmbdas, lmbda, "lmbda")
        if self._box is not None:  # keep the sliders in step with code-driven changes
            self.alpha_slider.value, self.lmbda_slider.value = self._alpha, self._lmbda
        self._refresh()
        return self.current

    def state(self) -> dict:
        """What the explorer shows now: the selection, the ringed RD point, the text panel and a digest of
        the crop (for tests and for checking what a slider did)."""
        import hashlib

        x, y = self.marker.get_data()
        crop = self._crop_of(self.current)
        return {"alpha": self._alpha, "lmbda": self._lmbda,
                "point": [float(v) for v in (*np.atleast_1d(x), *np.atleast_1d(y))], "text": self.describe(),
                "crop_sha256": None if crop is None else hashlib.sha256(np.ascontiguousarray(crop).tobytes()).hexdigest()}

    def describe(self) -> str:
        """The text panel: α, λ, bpp, true scores and the proxy score of the selection."""
        row = self.current
        if row is None:
            return f"α = {self._alpha:g}, λ = {self._lmbda:g}: not trained"
        lines = [f"α = {self._alpha:g}   λ = {self._lmbda:g}", f"bpp = {row['bpp']:.3f}"]
        lines += [f"{s} = {row[s]:.3f}" for s in self.scores]
        if "proxy" in row and pd.notna(row["proxy"]):
            lines.append(f"proxy M̂ = {row['proxy']:.3f}  (true {self.metric} {row[self.metric]:.3f})")
        return "\n".join(lines)

    # ----------------------------------------------------------------------------- drawing
    def _build_figure(self) -> None:
        from matplotlib.ticker import MaxNLocator

        from proxiqa_lab.evaluation.plots import _label, axis_label

        axes = self.figure.subplots(1, len(self.planes) + 2, width_ratios=[1.3] * len(self.planes) + [0.8, 1.0])
        self.ax_rd, *_, self.ax_text, self.ax_crop = axes
        cmap = matplotlib.colormaps["viridis"]
        self.markers = []
        for ax, metric in zip(axes, self.planes):
            for i, alpha in enumerate(self.alphas):
                sub = self.results[np.isclose(self.results["alpha"], alpha)].sort_values("bpp")
                color = cmap(0.85 * i / max(1, len(self.alphas) - 1))
                marker, size, style = SERIES_STYLES[i % len(SERIES_STYLES)]
                ax.plot(sub["bpp"], sub[metric], marker=marker, ms=size, ls=style, color=color,
                        mfc=color if i == 0 else "none", mew=1.5, label=f"α = {alpha:g}")
            self.markers.append(ax.plot([], [], "o", ms=18, mfc="none", mec="red", mew=2.5, label="selected")[0])
            ax.set(xlabel="rate (bits per pixel)", ylabel=f"{axis_label(metric)}, one image",
                   title=f"{_label(metric)} against rate, one line per α")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.ticklabel_format(axis="both", style="plain", useOffset=False)
            ax.grid(alpha=0.3)
        self.ax_rd.legend(fontsize=8, title=f"α of eq. (10)\n{self.objective}" if self.objective else "eq. (10)",
                          title_fontsize=8)
        self.figure.suptitle(f"Eq. (10) with {objective_title(self.objective)}: one model per (α, λ)"
                             if self.objective else "Eq. (10): one model per (α, λ)", fontsize=11)
        self.marker = self.markers[0]
        self.ax_text.axis("off")
        self.text = self.ax_text.text(0.0, 1.0, "", va="top", family="monospace", fontsize=9)
        self.ax_crop.axis("off")
        self._image = None

    def _crop_of(self, row: pd.Series | None) -> np.ndarray | None:
        key = (self._alpha, self._lmbda)
        if key in self._crops:
            return self._crops[key]
        if row is not None and "crop" in row and isinstance(row["crop"], str) and Path(row["crop"]).is_file():
            from proxiqa_lab.data import load_image

            self._crops[key] = load_image(row["crop"])
            return self._crops[key]
        return None

    def _refresh(self) -> None:
        row = self.current
        for marker, metric in zip(self.markers, self.planes):
            if row is None:
                marker.set_data([], [])
            else:
                marker.set_data([row["bpp"]], [row[metric]])
        self.text.set_text(self.describe())
        crop = self._crop_of(row)
        if crop is None:
            if self._image is not None:
                self._image.set_visible(False)
            self.ax_crop.set_title("no crop stored")
        else:
            if self._image is None:
                self._image = self.ax_crop.imshow(crop)
            else:
                self._image.set_data(crop)
                self._image.set_visible(True)
            self.ax_crop.set_title("decoded crop (selected model)", fontsize=10)
        if self._box is not None:
            self._show()

    def draw(self) -> Figure:
        """The figure for the current selection (a static view when there is no browser)."""
        self._refresh()
        return self.figure

    def show(self):
        """The widget in a live notebook; the static figure where nothing renders widgets
        (a notebook executed headlessly, see :mod:`proxiqa_lab.progress`)."""
        from proxiqa_lab.progress import headless

        return self.draw() if headless() else self.widget()

    # ----------------------------------------------------------------------------- widget
    def widget(self):
        """An ``ipywidgets.VBox`` with the α and λ sliders and the figure as a PNG image that follows them."""
        import ipywidgets as w

        if self._box is None:
            self.alpha_slider = w.SelectionSlider(options=[(f"{a:g}", a) for a in self.alphas], value=self._alpha,
                                                  description="α", continuous_update=False)
            self.lmbda_slider = w.SelectionSlider(options=[(f"{v:g}", v) for v in self.lmbdas], value=self._lmbda,
                                                  description="λ", continuous_update=False)
            width, _ = self.figure.get_size_inches()
            self.image = w.Image(format="png", layout=w.Layout(width=f"{round(width * DISPLAY_DPI)}px",
                                                               max_width="100%", height="auto"))
            self.alpha_slider.observe(lambda change: self.select(alpha=change["new"]), names="value")
            self.lmbda_slider.observe(lambda change: self.select(lmbda=change["new"]), names="value")
            self._box = w.VBox([w.HBox([self.alpha_slider, self.lmbda_slider]), self.image])
            self._show()
        return self._box

    def _show(self) -> None:
        """Render the figure into the widget's PNG image (no output capture, so it also works headless)."""
        import io

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=2 * DISPLAY_DPI)
        self.image.value = buffer.getvalue()


def _nearest(grid: list[float], value: float, name: str) -> float:
    """The grid value closest to ``value`` (on a log scale for λ, which grows geometrically)."""
    if not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}; the grid has {grid}")
    if name == "lmbda":
        if value <= 0:
            raise ValueError(f"lmbda must be > 0, got {value}; the grid has {grid}")
        distance = [abs(np.log(g) - np.log(value)) for g in grid]
    else:
        distance = [abs(g - value) for g in grid]
    return float(grid[int(np.argmin(distance))])
