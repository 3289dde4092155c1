"""Evaluation: RD tables of any codec, CompressAI-schema RD files, BD-rate (Tables I/II), RD plots (Fig. 8).

>>> from proxiqa_lab.classical import get_codec
>>> from proxiqa_lab.evaluation import evaluate, save_rd, bd_table, bd_summary, plot_rd
>>> df = evaluate(get_codec("jpeg"), images, metrics=("psnr_avg", "vmaf"))
>>> df = evaluate(get_codec("hevc444"), images, cache=RDCache.default())  # reruns skip the encodes
"""

from proxiqa_lab.evaluation.bdrate import METHODS, BDWarning, bd_metric, bd_rate
from proxiqa_lab.evaluation.cache import RDCache
from proxiqa_lab.evaluation.plots import plot_rd
from proxiqa_lab.evaluation.rd import (
    ALL_METRICS,
    average_curve,
    bd_summary,
    bd_table,
    evaluate,
    load_rd,
    rd_results,
    save_rd,
    summary_markdown,
    write_text,
)

__all__ = [
    "ALL_METRICS",
    "METHODS",
    "BDWarning",
    "RDCache",
    "average_curve",
    "bd_metric",
    "bd_rate",
    "bd_summary",
    "bd_table",
    "evaluate",
    "load_rd",
    "plot_rd",
    "rd_results",
    "save_rd",
    "summary_markdown",
    "write_text",
]
