"""Study outputs as files: ``results.json`` and CSV tables under ``reports/<profile>/<notebook>/``.

Tests and nightly jobs read these files instead of parsing notebook outputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from proxiqa_lab.fileio import atomic_write_text
from proxiqa_lab.paths import report_dir


def to_jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts only: numpy and pandas values converted, NaN/Inf as ``None``."""
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return value.as_posix()
    if value is None or isinstance(value, str):
        return value
    return str(value)


def record_results(profile: str, notebook: str, results: dict[str, Any]) -> Path:
    """Write a notebook's key results to ``reports/<profile>/<notebook>/results.json``.

    Args:
        profile: the profile the notebook ran in.
        notebook: the notebook's name (``"04_rate_distortion"``).
        results: numbers, tables (DataFrames become lists of records) and file paths.

    Returns:
        The path written. ``profile`` and ``notebook`` are stored in the file too.
    """
    if not isinstance(results, dict):
        raise ValueError(f"results must be a dict of named values, got {type(results).__name__}")
    path = report_dir(profile, notebook) / "results.json"
    payload = {"profile": profile, "notebook": notebook, **to_jsonable(results)}
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


def load_results(profile: str, notebook: str) -> dict[str, Any]:
    """Read what :func:`record_results` wrote; ``FileNotFoundError`` names the notebook to run."""
    path = report_dir(profile, notebook) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run notebooks/{notebook}.ipynb in the {profile} profile first")
    return json.loads(path.read_text(encoding="utf-8"))


def save_table(df: pd.DataFrame, profile: str, notebook: str, name: str, index: bool = False) -> Path:
    """Write ``df`` to ``reports/<profile>/<notebook>/<name>.csv`` and return the path."""
    path = report_dir(profile, notebook) / f"{name}.csv"
    atomic_write_text(path, df.to_csv(index=index))
    return path
