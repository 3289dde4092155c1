"""Keep committed notebooks clean: no outputs, no execution counts, one ``parameters`` cell.

Usage::

    python -m proxiqa_lab.notebooks.hygiene notebooks/          # check, exit 1 on problems
    python -m proxiqa_lab.notebooks.hygiene --fix notebooks/    # strip outputs and counts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from proxiqa_lab.fileio import atomic_write_text

KERNEL_NAME = "python3"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}


def _notebook_paths(paths: list[str | Path]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.ipynb") if not p.name.startswith(".")))
        elif path.suffix == ".ipynb" and path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} is neither a notebook nor a folder of notebooks")
    return found


def check_notebook(path: str | Path) -> list[str]:
    """Problems that keep a notebook from being committed; empty when it is clean.

    Checks: every code cell has no outputs and no execution count, exactly one cell is
    tagged ``parameters``, the kernel spec names ``python3``, and a notebook with a
    ``## Results`` section ends with its ``## Exercises`` section.
    """
    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has an execution count")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"{len(tagged)} cells are tagged 'parameters' (cells {tagged}); exactly one must be")
    elif nb.cells[tagged[0]].cell_type != "code":
        problems.append(f"the 'parameters' cell {tagged[0]} is not a code cell")
    headings = [(i, c.source.splitlines()[0].strip()) for i, c in enumerate(nb.cells)
                if c.cell_type == "markdown" and c.source.startswith("## ")]
    if any(h == "## Results" for _, h in headings) and (not headings or headings[-1][1] != "## Exercises"):
        problems.append("its last section must be '## Exercises', after '## Results' (see proxiqa_lab.exercises)")
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != KERNEL_NAME:
        problems.append(f"kernel spec is {kernel!r}; it must be {KERNEL_NAME!r}")
    return problems


def clean_notebook(path: str | Path) -> bool:
    """Strip outputs, execution counts and papermill/widget state, and store the standard kernel spec,
    in place; True if it changed.

    The file is rewritten through a temporary file and a rename, so a failure never leaves a
    half-written notebook.
    """
    path = Path(path)
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    # Whatever kernel a notebook was last run with in JupyterLab, it is stored with the standard one,
    # which papermill and every Jupyter install know (in the kit's .venv it is the .venv's Python).
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    after = nbformat.writes(nb) + "\n"
    if after == before:
        return False
    atomic_write_text(path, after)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxiqa_lab.notebooks.hygiene", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
    parser.add_argument("--fix", action="store_true", help="strip outputs and execution counts in place")
    args = parser.parse_args(argv)
    try:
        paths = _notebook_paths(args.paths)
    except FileNotFoundError as err:
        print(f"hygiene: error: {err}", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        if args.fix and clean_notebook(path):
            print(f"cleaned {path}")
        for problem in check_notebook(path):
            print(f"{path}: {problem}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
