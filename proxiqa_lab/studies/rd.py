"""Rate-distortion studies (Sec. IV-B/C/D/E): learned and classical codecs on image subsets,
BD-rate tables in the layouts of the paper's Tables I, II and IV, and visual crops at matched
bitrate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from proxiqa_lab.evaluation.bdrate import DEFAULT_METHOD

if TYPE_CHECKING:
    from proxiqa_lab.evaluation import RDCache


@dataclass
class RDStudy:
    """An RD evaluation and its BD-rates.

    Attributes:
        df: tidy table (one row per codec, image and rate point) from
            :func:`proxiqa_lab.evaluation.evaluate`, with a ``dataset`` column.
        bd: per-image BD-rate (%) against ``baseline``, rows (codec, image) (Table I layout).
        summary: mean and std over images per codec (Table II layout).
        baseline: the anchor codec's name.
    """

    df: pd.DataFrame
    bd: pd.DataFrame
    summary: pd.DataFrame
    baseline: str


def classical_codecs(names: Sequence[str], points: Sequence[float]) -> list:
    """Classical codecs by name with the given target rates (bpp); unavailable ones are skipped with a warning."""
    import warnings

    from proxiqa_lab.classical import CodecUnavailableError, get_codec

    codecs = []
    for name in names:
        try:
            codecs.append(get_codec(name, points=list(points)))
        except CodecUnavailableError as err:
            warnings.warn(f"skipping {name}: {err}", stacklevel=2)
    return codecs


def evaluate_codecs(codecs: Sequence, images: Mapping[str, np.ndarray], metrics: Sequence[str],
                    dataset: str = "", progress: bool = False,
                    cache: RDCache | None = None) -> pd.DataFrame:
    """:func:`proxiqa_lab.evaluation.evaluate` of several codecs on the same images, concatenated.

    ``cache``: an :class:`~proxiqa_lab.evaluation.RDCache` for the classical codecs' points, or None.
    """
    from proxiqa_lab.evaluation import evaluate

    frames = [evaluate(codec, images, metrics=metrics, progress=progress, cache=cache) for codec in codecs]
    return pd.concat(frames, ignore_index=True).assign(dataset=dataset)


def bd_study(df: pd.DataFrame, baseline: str, metrics: Sequence[str], method: str = DEFAULT_METHOD) -> RDStudy:
    """Per-image BD-rates of every codec of ``df`` against ``baseline`` and their mean ± std.

    BD-rates that cannot be computed (curves that do not overlap, too few distinct points)
    are NaN, with a :class:`~proxiqa_lab.evaluation.BDWarning`, and left out of the means.
    """
    import warnings

    from proxiqa_lab.evaluation import BDWarning, bd_summary, bd_table

    if baseline not in set(df["codec"]):
        raise ValueError(f"baseline {baseline!r} is not among the codecs {sorted(set(df['codec']))}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BDWarning)  # NaN cells speak for themselves
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        bd = bd_table(df, baseline, list(metrics), method=method)
        summary = bd_summary(bd)
    return RDStudy(df=df, bd=bd, summary=summary, baseline=baseline)


def save_study(study: RDStudy, out_dir: str | Path, name: str = "rd") -> list[Path]:
    """Write the per-codec RD files (CSV + CompressAI JSON) and the BD tables (CSV) to ``out_dir``."""
    from proxiqa_lab.evaluation import save_rd

    out_dir = Path(out_dir)
    written = []
    for (dataset, codec), sub in study.df.groupby(["dataset", "codec"], sort=False):
        stem = f"{name}-{dataset}-{codec}".replace(" ", "_").replace("/", "_").replace("@", "at")
        written += list(save_rd(sub, out_dir / "rd", stem, description=f"{codec} on {dataset}"))
    bd_path, summary_path = out_dir / f"{name}_bd_per_image.csv", out_dir / f"{name}_bd_summary.csv"
    study.bd.to_csv(bd_path)
    flat = study.summary.copy()
    flat.columns = [f"{m}_{s}" for m, s in flat.columns]
    flat.to_csv(summary_path)
    return [*written, bd_path, summary_path]


def summary_records(summary: pd.DataFrame) -> list[dict]:
    """Table II rows as records ``{"codec", "<metric>_mean", "<metric>_std", ...}`` for results.json."""
    flat = summary.copy()
    flat.columns = [f"{m}_{s}" for m, s in flat.columns]
    return flat.reset_index().rename(columns={"index": "codec"}).to_dict(orient="records")


def table_iv(summary: pd.DataFrame, columns: Mapping[str, str], metrics: Sequence[str]) -> pd.DataFrame:
    """Table IV layout: rows are metrics' BD-rates, columns the optimisations (mean over images).

    Args:
        summary: from :attr:`RDStudy.summary`.
        columns: codec name -> column header (e.g. ``{"BLS SSIM": "SSIM (14)"}``).
        metrics: metric rows, in order.
    """
    from proxiqa_lab.metrics import METRICS

    out = pd.DataFrame({header: [summary.loc[codec, (m, "mean")] for m in metrics]
                        for codec, header in columns.items() if codec in summary.index})
    out.index = [f"{METRICS[m].label if m in METRICS else m} BD-rate" for m in metrics]
    return out


def matched_point(df: pd.DataFrame, codec: str, image: str, target_bpp: float) -> pd.Series:
    """The row of ``codec`` on ``image`` whose bpp is closest (in log rate) to ``target_bpp``."""
    rows = df[(df["codec"] == codec) & (df["image"] == image)]
    if rows.empty:
        raise ValueError(f"no rows for codec {codec!r} and image {image!r}")
    return rows.iloc[int(np.argmin(np.abs(np.log(rows["bpp"].to_numpy()) - np.log(target_bpp))))]


def matched_crops(codecs: Sequence, df: pd.DataFrame, image_name: str, img: np.ndarray, target_bpp: float,
                  size: int = 192, center: tuple[float, float] = (0.5, 0.5), metric: str = "vmaf",
                  ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Crops of ``img`` decoded by each codec at the rate point nearest ``target_bpp`` (Figs. 8 and 10).

    Returns:
        ``(crops, captions)``: ``{"source": crop, codec: crop, ...}`` and ``{codec: "0.31 bpp, VMAF 71.2"}``
        (rate and metric of the whole image, from ``df``).
    """
    from proxiqa_lab.studies.images import crop

    crops, captions = {"source": crop(img, size, center)}, {}
    for codec in codecs:
        row = matched_point(df, codec.name, image_name, target_bpp)
        point = next(p for p in codec.points if str(p) == str(row["point"]))
        decoded = codec.decode(codec.encode(img, point), point)
        crops[codec.name] = crop(decoded, size, center)
        captions[codec.name] = f"{row['bpp']:.3f} bpp, {metric} {row[metric]:.2f}"
    return crops, captions


def rd_study(
    codecs: Sequence,
    datasets: Mapping[str, int | None],
    metrics: Sequence[str],
    baseline: str,
    data_root: str | None = None,
    progress: bool = False,
    method: str = DEFAULT_METHOD,
    cache: RDCache | None = None,
) -> dict[str, RDStudy]:
    """Evaluate codecs on the first images of each dataset and compute BD-rates per dataset.

    Args:
        codecs: Codecs; the baseline among them.
        datasets: ``{dataset: number of images}`` (``None``: all), e.g. ``settings.eval_images``.
        metrics: metrics measured and used for BD-rates.
        baseline: the anchor codec's name.
        data_root: data root.
        progress: tqdm bars.
        method: BD fit, ``"cubic"`` (VCEG-M33, the paper's), ``"pchip"`` (JVET CTC) or ``"akima"``.
            Prefer ``"pchip"`` for short or saturating curves: a cubic least-squares fit through
            points of nearly equal quality bends steeply and can give BD-rates of thousands of percent.
        cache: an :class:`~proxiqa_lab.evaluation.RDCache` for the classical codecs' points
            (their rate search dominates the cost), or None to measure everything.

    Returns:
        ``{dataset: RDStudy}``; each study's ``df`` has ``dataset`` set to the images' source
        (the sample photos' label when the dataset was missing).
    """
    from proxiqa_lab.evaluation.bdrate import check_method
    from proxiqa_lab.studies.images import eval_images

    check_method(method)  # before the long evaluation, not after it
    out = {}
    for dataset, count in datasets.items():
        images, source = eval_images(dataset, count, data_root)
        df = evaluate_codecs(codecs, images, metrics, dataset=source, progress=progress, cache=cache)
        out[dataset] = bd_study(df, baseline, metrics, method=method)
    return out


#: The equal-steps MSE control of the RD study (notebook 04): the MSE models fine-tuned for as many
#: steps as the other BLS objectives' fine-tunes that start from them.
CONTROL = "BLS MSE (equal steps)"
#: Its BMSHJ counterpart, which the zoo does not ship (``benchmarks/bmshj_equal_steps.py`` trains it).
BMSHJ_CONTROL = "BMSHJ MSE (equal steps)"


def rd_learned_codecs(grid: pd.DataFrame, settings) -> list:
    """Notebook 04's learned codecs: the BLS curve of each of ``settings.objectives`` (MSE, the
    baseline, first), the equal-steps MSE control (:data:`CONTROL`) when the study fine-tunes, and the
    BMSHJ MSE and VMAF_p curves of Table II's last rows."""
    from proxiqa_lab.studies.grid import learned_codec

    codecs = [learned_codec(grid, o, architecture="bls", finetune=False if o == "mse" else None)
              for o in settings.objectives]
    if settings.control_specs():
        codecs.append(learned_codec(grid, "mse", architecture="bls", finetune=True, name=CONTROL))
    if settings.bmshj_lambdas:
        codecs += [learned_codec(grid, o, architecture="bmshj") for o in ("mse", "proxy:vmaf")]
    return codecs


def equal_steps_study(rd: Mapping[str, RDStudy], metrics: Sequence[str], method: str = DEFAULT_METHOD,
                      control: str = CONTROL) -> dict[str, RDStudy]:
    """BD-rates of the BLS codecs against the equal-steps MSE control, per dataset: what each objective
    gains over MSE trained as long, so that the gain is the objective's and not the extra steps'
    (the MSE baseline's own row is what those steps give). Datasets whose study lacks ``control``
    (a profile that does not fine-tune) are left out, so the result may be empty."""
    out = {}
    for name, study in rd.items():
        codecs = list(dict.fromkeys(study.df["codec"]))
        if control not in codecs:
            continue
        bls = [c for c in codecs if c.startswith("BLS ")]
        out[name] = bd_study(study.df[study.df["codec"].isin(bls)], control, metrics, method=method)
    return out


def table_i(study: RDStudy) -> pd.DataFrame:
    """Table I layout: one row per image, columns (codec, metric) of BD-rates (%), baseline left out."""
    wide = study.bd.unstack(level="codec")
    wide = wide.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    codecs = [c for c in dict.fromkeys(study.bd.index.get_level_values("codec")) if c != study.baseline]
    return wide[[c for c in codecs if c in wide.columns.get_level_values(0)]]


def rd_records(studies: Mapping[str, RDStudy]) -> dict[str, dict]:
    """Per dataset: the images' source, the images, per-image BD-rates, their summary and mean bpp per codec."""
    return {name: {"source": str(s.df["dataset"].iloc[0]), "images": sorted(set(s.df["image"])),
                   "bd_per_image": s.bd.reset_index(), "bd_summary": summary_records(s.summary),
                   "mean_bpp": s.df.groupby("codec")["bpp"].mean().to_dict()} for name, s in studies.items()}
