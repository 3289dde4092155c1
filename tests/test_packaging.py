"""One list of dependencies: pyproject.toml; environment.yml and constraints.txt only point at it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_the_package_with_its_extras_and_constraints():
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == ["-c constraints.txt", "-e .[dev]"], "conda installs what pyproject.toml lists, nothing of its own"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required.startswith(">=") and tuple(map(int, python.split("=")[1].split("."))) >= \
        tuple(map(int, required[2:].split(".")))


def test_constraints_pin_only_what_pyproject_requires():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower()
             for d in project["dependencies"] + sum(project["optional-dependencies"].values(), [])}
    pins = [line.split("==")[0].strip().lower() for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert pins and set(pins) <= names, f"constraints.txt pins {sorted(set(pins) - names)}, which nothing requires"
