"""One project root wherever a kernel starts: data, runs and reports resolve to the same folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxiqa_lab.data import data_root
from proxiqa_lab.paths import project_root, reports_root, runs_root

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in ("PROXIQA_LAB_ROOT", "PROXIQA_LAB_DATA", "PROXIQA_LAB_RUNS", "PROXIQA_LAB_REPORTS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("start", [".", "notebooks", "proxiqa_lab/training", "reports"])
def test_same_folders_from_the_repository_and_its_subfolders(monkeypatch, start):
    monkeypatch.chdir(REPO / start)
    assert project_root() == REPO
    assert (data_root(), runs_root(), reports_root()) == (REPO / "data", REPO / "runs", REPO / "reports")


def test_from_anywhere_else_the_installed_checkout(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert project_root() == REPO  # the package is installed from this checkout (pip install -e .)


def test_another_projects_pyproject_is_not_the_root(monkeypatch, tmp_path):
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    monkeypatch.chdir(other / "sub")
    assert project_root() == REPO
    copy = tmp_path / "my-copy"
    (copy / "notebooks").mkdir(parents=True)
    (copy / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    monkeypatch.chdir(copy / "notebooks")
    assert project_root() == copy  # a second checkout is its own root


def test_environment_and_arguments_win(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO / "notebooks")
    monkeypatch.setenv("PROXIQA_LAB_ROOT", str(tmp_path / "root"))
    assert runs_root() == tmp_path / "root" / "runs" and data_root() == tmp_path / "root" / "data"
    monkeypatch.setenv("PROXIQA_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PROXIQA_LAB_REPORTS", str(tmp_path / "reports"))
    assert (data_root(), runs_root(), reports_root()) == (tmp_path / "data", tmp_path / "runs", tmp_path / "reports")
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"
