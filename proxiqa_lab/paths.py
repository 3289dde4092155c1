"""Where the kit reads and writes: the project root, its ``data/``, ``runs/``, ``reports/`` and ``notebooks/``.

They resolve to the same folders wherever a kernel or a command starts, so a notebook run by
papermill from the repository root, opened in JupyterLab from ``notebooks/``, or a command run
from any sub-folder all share one data root, one set of trained runs and one report tree:

1. an environment variable wins: ``$PROXIQA_LAB_DATA``, ``$PROXIQA_LAB_RUNS``,
   ``$PROXIQA_LAB_REPORTS`` for one folder each, ``$PROXIQA_LAB_ROOT`` for the root of all three;
2. else the project root is the nearest folder, from the working directory up, whose
   ``pyproject.toml`` names the ``proxiqa-lab`` project (the repository checkout);
3. else the checkout the package was installed from (``pip install -e .``), when it has one;
4. else the working directory.

Explicit arguments (``data_root(root)``, ``--root``, ``--out``) always win over all of these.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PROFILES = ("smoke", "course", "lab", "paper")
#: Profiles that train nothing of their own: their notebooks use the runs (and the shipped
#: models) of another profile. ``course`` is the lab study shown from the lab's trained models.
RUNS_PROFILE = {"course": "lab"}
#: What marks the project's root folder.
MARKER = "pyproject.toml"
_PROJECT_NAME = 'name = "proxiqa-lab"'


@lru_cache(maxsize=64)
def _is_root(folder: str) -> bool:
    try:
        return _PROJECT_NAME in (Path(folder) / MARKER).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The project root (see the module docstring); ``start`` defaults to the working directory."""
    if os.environ.get("PROXIQA_LAB_ROOT"):
        return Path(os.environ["PROXIQA_LAB_ROOT"]).expanduser()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _is_root(str(folder)):
            return folder
    checkout = Path(__file__).resolve().parents[1]
    if _is_root(str(checkout)):
        return checkout
    return here


def reports_root() -> Path:
    """``$PROXIQA_LAB_REPORTS``, else ``<project root>/reports``."""
    return Path(os.environ.get("PROXIQA_LAB_REPORTS") or project_root() / "reports")


def runs_root() -> Path:
    """``$PROXIQA_LAB_RUNS``, else ``<project root>/runs``: training run folders."""
    return Path(os.environ.get("PROXIQA_LAB_RUNS") or project_root() / "runs")


def notebooks_root() -> Path:
    """``<project root>/notebooks``: the numbered notebooks ``run-notebooks`` runs."""
    return project_root() / "notebooks"


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


def runs_profile(profile: str) -> str:
    """The profile whose runs ``profile`` trains and reads (``runs/<it>/``): ``lab`` for ``course``."""
    return RUNS_PROFILE.get(check_profile(profile), profile)


def report_dir(profile: str, notebook: str) -> Path:
    """``reports/<profile>/<notebook>/``, created on demand."""
    path = reports_root() / check_profile(profile) / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path
