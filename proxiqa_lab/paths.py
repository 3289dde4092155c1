"""Where the kit writes its outputs: run folders and reports.

Both are relative to the working directory unless set by environment variables, so a
course lab, a nightly job and a laptop can each point them somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILES = ("smoke", "lab", "paper")


def reports_root() -> Path:
    """``$PROXIQA_LAB_REPORTS`` or ``./reports``."""
    return Path(os.environ.get("PROXIQA_LAB_REPORTS", "reports"))


def runs_root() -> Path:
    """``$PROXIQA_LAB_RUNS`` or ``./runs``: training run folders."""
    return Path(os.environ.get("PROXIQA_LAB_RUNS", "runs"))


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


def report_dir(profile: str, notebook: str) -> Path:
    """``reports/<profile>/<notebook>/``, created on demand."""
    path = reports_root() / check_profile(profile) / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path
