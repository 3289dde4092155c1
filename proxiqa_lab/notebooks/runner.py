"""Run the numbered notebooks in order through papermill and index what they produced.

Each notebook gets ``PROFILE`` (and any extra parameters) injected into its ``parameters``
cell, is executed headlessly, and is written to ``reports/<profile>/executed/``. The index
(``index.md`` and ``index.html`` beside the executed notebooks) lists each notebook's status,
wall time and every figure and table it wrote under ``reports/<profile>/<notebook>/``.
"""

from __future__ import annotations

import ast
import html
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from proxiqa_lab.paths import check_profile, notebooks_root, reports_root

#: The kernels' own log is silenced: its start-up warning "Kernel is running over TCP without
#: encryption" (a kernel on this machine) and its note of the interrupt papermill sends at shutdown
#: are noise to a student. Warnings and errors of the notebooks' code still show in their cells, and
#: a kernel that dies fails its notebook.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]

#: Files the index links to, by kind.
ARTIFACT_KINDS = {".png": "figure", ".svg": "figure", ".csv": "table", ".json": "results", ".md": "table"}


@dataclass
class NotebookFailure:
    """Where a notebook stopped: the cell (index in the source notebook) and the error."""

    cell_index: int | None
    ename: str
    evalue: str
    source: str = ""

    def describe(self) -> str:
        first = self.source.strip().splitlines()[0] if self.source.strip() else ""
        where = f"cell {self.cell_index}" if self.cell_index is not None else "before any cell ran"
        return f"{where} [{first[:70]}]: {self.ename}: {self.evalue}"


@dataclass
class NotebookResult:
    """Outcome of one notebook in a suite run."""

    name: str
    status: str  # "ok" | "failed"
    wall_s: float
    executed: str
    artifacts: list[str] = field(default_factory=list)
    failure: NotebookFailure | None = None
    previous: bool = False  # from an earlier run of the suite (kept in the index by --only runs)


def discover_notebooks(folder: str | Path | None = None, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``) of ``folder`` in order.

    Args:
        folder: where the notebooks are; the project's ``notebooks/`` (from any working folder)
            when None.
        only: keep notebooks whose name starts with one of these prefixes (``["02", "04"]``).

    Raises:
        FileNotFoundError: the folder has no numbered notebooks, or a prefix matches none.
        ValueError: ``only`` is given but holds no prefix (empty, or blank strings only).
    """
    if only is not None:
        prefixes = [o.strip() for o in only if o.strip()]  # a blank prefix would match every notebook
        if not prefixes:
            raise ValueError(f"--only {','.join(only)!r} names no notebook; give comma-separated prefixes like 02,04")
        only = prefixes
    folder = Path(folder) if folder is not None else notebooks_root()
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}; pass --notebooks DIR")
    if only:
        unknown = [o for o in only if not any(p.stem.startswith(o) for p in notebooks)]
        if unknown:
            names = ", ".join(p.stem for p in notebooks)
            raise FileNotFoundError(f"--only {','.join(unknown)} matches no notebook; the notebooks are: {names}")
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in only)]
    return notebooks


def parse_parameter(value: str) -> object:
    """A ``-p NAME VALUE`` value: a Python literal when it parses as one, else the string."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _source_cell_index(executed_nb: dict, cell_index: int) -> int:
    """Map a cell index of the executed notebook back to the source (drop papermill's injected cell)."""
    cells = executed_nb.get("cells", [])
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    return cell_index - 1 if injected and cell_index > injected[0] else cell_index


def _running_cell(executed: Path) -> tuple[int, str] | None:
    """The cell that was running when execution stopped, from the saved copy: its source index and source.

    papermill saves the executed notebook as cells start and end, and records each cell's
    ``start_time``; after a kernel death the last cell that started is the one that was running
    (its status may already read ``completed``). None when no cell started.
    """
    try:
        nb = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cells = nb.get("cells", [])
    started = [i for i, c in enumerate(cells) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    running = [i for i, c in enumerate(cells) if c.get("metadata", {}).get("papermill", {}).get("status") == "running"]
    if not (running or started):
        return None
    i = (running or started)[-1]
    return _source_cell_index(nb, i), "".join(cells[i].get("source", ""))


def _failure_from(err: Exception, executed: Path) -> NotebookFailure:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        index = err.cell_index
        if executed.exists():
            index = _source_cell_index(json.loads(executed.read_text(encoding="utf-8")), index)
        return NotebookFailure(index, err.ename, str(err.evalue), err.source)
    running = _running_cell(executed)
    if running is not None:  # e.g. the kernel died (DeadKernelError) inside a cell
        index, source = running
        return NotebookFailure(index, type(err).__name__, str(err) or "the kernel stopped", source)
    return NotebookFailure(None, type(err).__name__, str(err))


def check_parameters(notebooks: list[Path], parameters: dict) -> None:
    """Refuse a ``-p NAME VALUE`` that no notebook has, or whose type its ``parameters`` cell contradicts.

    papermill reads each notebook's parameters with their annotated types (``SEED: int = 0``);
    an ``int`` is accepted where a ``float`` is declared.
    """
    import papermill

    declared: dict[str, tuple[str, str]] = {}
    for nb in notebooks:
        for name, info in papermill.inspect_notebook(str(nb)).items():
            declared.setdefault(name, (info.get("inferred_type_name", "None"), info.get("help", "")))
    types = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
    for name, value in parameters.items():
        if name not in declared:
            raise ValueError(f"-p {name}: no notebook has a parameter {name!r}; they have: {', '.join(sorted(declared))}")
        kind, help_text = declared[name]
        allowed = types.get(kind)
        if allowed and (not isinstance(value, allowed) or (kind != "bool" and isinstance(value, bool))):
            raise ValueError(f"-p {name} {value!r}: {name} is {'an' if kind == 'int' else 'a'} {kind} "
                             f"({help_text or 'see the parameters cell'}), got {type(value).__name__} {value!r}")


def export_html(executed: Path) -> Path | None:
    """An HTML copy of an executed notebook beside it (``NN_name.html``), for readers without Jupyter."""
    import nbformat
    from nbconvert import HTMLExporter

    if not executed.is_file():
        return None
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(executed, as_version=4))
    target = executed.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def artifacts_of(report_folder: Path) -> list[Path]:
    """Figures, tables and results files a notebook wrote, sorted."""
    if not report_folder.is_dir():
        return []
    return sorted(p for p in report_folder.rglob("*") if p.is_file() and p.suffix in ARTIFACT_KINDS)


def run_notebook(
    notebook: Path,
    executed: Path,
    parameters: dict,
    cwd: Path,
    log_output: bool = False,
    cell_timeout: int | None = None,
) -> tuple[float, NotebookFailure | None]:
    """Execute one notebook; return its wall time and the failure, if any.

    ``cell_timeout`` (seconds) stops a cell that runs longer, so a hung kernel fails the
    notebook instead of blocking the suite.
    """
    import papermill

    from proxiqa_lab.progress import HEADLESS_ENV

    start = time.perf_counter()
    before = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"  # the kernel inherits it: text progress bars, static figures
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            log_output=log_output,
            cwd=str(cwd),
            execution_timeout=cell_timeout,
            extra_arguments=KERNEL_ARGUMENTS,
        )
        failure = None
    except Exception as err:  # papermill raises many kinds; all of them mean "this notebook failed"
        failure = _failure_from(err, executed)
    finally:
        if before is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = before
    return time.perf_counter() - start, failure


def run_suite(
    profile: str = "smoke",
    notebooks_dir: str | Path | None = None,
    only: list[str] | None = None,
    parameters: dict | None = None,
    out: str | Path | None = None,
    cwd: str | Path | None = None,
    log_output: bool = False,
    cell_timeout: int | None = None,
    echo=print,
) -> list[NotebookResult]:
    """Run the notebooks in order and write the index.

    Every notebook runs even when an earlier one failed (each one trains or reuses what it
    needs), so a nightly run reports all failures at once.

    Args:
        profile: "smoke", "lab" or "paper", injected as ``PROFILE``.
        notebooks_dir: folder of numbered notebooks; the project's ``notebooks/`` when None.
        only: name prefixes to run (``["02", "04"]``); all when None.
        parameters: extra values injected into every notebook's ``parameters`` cell.
        out: folder for executed notebooks and the index; ``reports/<profile>/executed``.
        cwd: working directory of the kernels (where ``reports/`` and ``runs/`` resolve);
            the current one when None.
        log_output: stream cell outputs to the log.
        cell_timeout: seconds a cell may run before its notebook fails (``None``: no limit).
        echo: where progress lines go.

    Returns:
        One :class:`NotebookResult` per notebook, in order.
    """
    check_profile(profile)
    cwd = Path(cwd or os.getcwd()).resolve()
    notebooks = discover_notebooks(notebooks_dir, only)
    check_parameters(notebooks, parameters or {})
    out = Path(out) if out else cwd / reports_root() / profile / "executed"
    out.mkdir(parents=True, exist_ok=True)
    params = {**(parameters or {}), "PROFILE": profile}
    results: list[NotebookResult] = []
    earlier = [r for r in previous_results(out, profile) if r.name not in {n.stem for n in notebooks}]
    suite_start = time.perf_counter()
    for notebook in notebooks:
        executed = out / notebook.name
        echo(f"[{notebook.stem}] running ({profile}) ...")
        wall, failure = run_notebook(notebook, executed, params, cwd, log_output, cell_timeout)
        export_html(executed)
        report_folder = cwd / reports_root() / profile / notebook.stem
        result = NotebookResult(
            name=notebook.stem,
            status="failed" if failure else "ok",
            wall_s=round(wall, 2),
            executed=str(executed),
            artifacts=[str(p) for p in artifacts_of(report_folder)],
            failure=failure,
        )
        results.append(result)
        echo(f"[{notebook.stem}] {result.status} in {wall:.1f} s" + (f": {failure.describe()}" if failure else ""))
        write_index(sorted(results + earlier, key=lambda r: r.name), out, profile, time.perf_counter() - suite_start)
    if out == cwd / reports_root() / profile / "executed":
        from proxiqa_lab.studies.paper import write_index as write_paper_index

        echo(f"the {profile} results beside the paper's: {write_paper_index(profile)}")
    return results


def previous_results(out: str | Path, profile: str) -> list[NotebookResult]:
    """Results recorded in ``out/suite.json`` by an earlier run of the same profile (empty if none)."""
    path = Path(out) / "suite.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        if summary.get("profile") != profile:
            return []
        results = []
        for item in summary["notebooks"]:
            failure = NotebookFailure(**item["failure"]) if item.get("failure") else None
            results.append(NotebookResult(**{**item, "failure": failure, "previous": True}))
        return results
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _rel(path: str | Path, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), start.resolve())).as_posix()


def write_index(results: list[NotebookResult], out: str | Path, profile: str, total_s: float) -> Path:
    """Write ``index.md``, ``index.html`` and ``suite.json`` into ``out``; return the Markdown path."""
    out = Path(out)
    ok = sum(r.status == "ok" for r in results)
    fresh = [r for r in results if not r.previous]
    lines = [
        f"# ProxIQA Lab notebooks: {profile} profile",
        "",
        f"{ok}/{len(results)} notebooks ran without error; this run: {len(fresh)} notebook(s), "
        f"total wall time {total_s:.1f} s" + (" (rows marked * are from an earlier run)." if len(fresh) < len(results)
                                              else "."),
        "",
        "| notebook | status | wall time (s) | figures | tables and results |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        figures = [a for a in r.artifacts if ARTIFACT_KINDS[Path(a).suffix] == "figure"]
        tables = [a for a in r.artifacts if ARTIFACT_KINDS[Path(a).suffix] != "figure"]
        link = lambda a: f"[{Path(a).name}]({_rel(a, out)})"  # noqa: E731
        status = r.status if not r.failure else f"failed: {r.failure.describe()}".replace("|", "\\|")
        page = Path(r.executed).with_suffix(".html")
        html_link = f" ([HTML]({_rel(page, out)}))" if page.is_file() else ""
        lines.append(
            f"| [{r.name}]({_rel(r.executed, out)}){html_link}{' *' if r.previous else ''} | {status} | {r.wall_s:.1f} | "
            f"{' '.join(map(link, figures)) or '-'} | {' '.join(map(link, tables)) or '-'} |"
        )
    md = out / "index.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "index.html").write_text(_html_index(results, out, profile, total_s), encoding="utf-8")
    summary = {"profile": profile, "total_s": round(total_s, 2), "notebooks": [asdict(r) for r in results]}
    (out / "suite.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return md


def _html_index(results: list[NotebookResult], out: Path, profile: str, total_s: float) -> str:
    rows = []
    for r in results:
        links = " ".join(f'<a href="{html.escape(_rel(a, out))}">{html.escape(Path(a).name)}</a>' for a in r.artifacts)
        status = r.status if not r.failure else f"failed: {r.failure.describe()}"
        page = Path(r.executed).with_suffix(".html")
        target = page if page.is_file() else Path(r.executed)
        rows.append(
            f'<tr><td><a href="{html.escape(_rel(target, out))}">{r.name}</a></td>'
            f"<td>{html.escape(status)}</td><td>{r.wall_s:.1f}</td><td>{links}</td></tr>"
        )
    return (
        f"<!doctype html><meta charset='utf-8'><title>ProxIQA Lab notebooks ({profile})</title>"
        f"<h1>ProxIQA Lab notebooks: {profile} profile</h1><p>Total wall time {total_s:.1f} s.</p>"
        "<table border='1' cellpadding='4'><tr><th>notebook</th><th>status</th><th>wall time (s)</th>"
        f"<th>figures, tables and results</th></tr>{''.join(rows)}</table>\n"
    )
