"""The notebook runner and the notebook hygiene check, on tiny throwaway notebooks."""

from __future__ import annotations

import json

import nbformat
import pytest

from proxiqa_lab.cli import main
from proxiqa_lab.notebooks.hygiene import check_notebook, clean_notebook
from proxiqa_lab.notebooks.hygiene import main as hygiene_main
from proxiqa_lab.notebooks.runner import discover_notebooks, parse_parameter, run_suite


def _notebook(path, cells, tag_parameters=True):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    params = nbformat.v4.new_code_cell('PROFILE = "smoke"  # smoke | lab | paper\nVALUE = 1  # a number')
    if tag_parameters:
        params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def suite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROXIQA_LAB_ROOT", str(tmp_path))
    folder = tmp_path / "nbs"
    folder.mkdir()
    write = (
        "from proxiqa_lab.paths import report_dir\n"
        "import json\n"
        "(report_dir(PROFILE, '00_ok') / 'results.json').write_text(json.dumps({'value': VALUE}))"
    )
    _notebook(folder / "00_ok.ipynb", [write])
    _notebook(folder / "01_fails.ipynb", ["x = 1", "raise ValueError('boom at the third cell')", "y = 2"])
    return folder


@pytest.mark.notebooks
def test_failing_notebook_exits_nonzero_naming_notebook_and_cell(suite, tmp_path, capsys):
    status = main(["run-notebooks", "--notebooks", str(suite), "-p", "VALUE", "7"])
    err = capsys.readouterr().err
    assert status == 1
    assert "01_fails" in err and "cell 3" in err and "ValueError" in err and "boom" in err
    assert "00_ok" not in err
    # the good notebook ran with the injected value, and the index links its results
    assert json.loads((tmp_path / "reports/smoke/00_ok/results.json").read_text()) == {"value": 7}
    executed = tmp_path / "reports/smoke/executed"
    summary = json.loads((executed / "suite.json").read_text())
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "failed"]
    assert summary["notebooks"][1]["failure"]["cell_index"] == 3
    assert (executed / "00_ok.ipynb").exists() and (executed / "index.html").exists()
    # an HTML copy of each executed notebook, failed ones included, linked from the index
    assert "boom at the third cell" in (executed / "01_fails.html").read_text()
    assert "00_ok.html" in (executed / "index.md").read_text() and "00_ok.html" in (executed / "index.html").read_text()


@pytest.mark.notebooks
def test_only_runs_selected_and_succeeds(suite, tmp_path):
    results = run_suite(notebooks_dir=suite, only=["00"], out=tmp_path / "out", echo=lambda _: None)
    assert [r.name for r in results] == ["00_ok"] and results[0].status == "ok"
    index = (tmp_path / "out/index.md").read_text()
    assert "00_ok" in index and "results.json" in index and "01_fails" not in index
    # a later --only run keeps the earlier notebook in the index, marked as previous
    run_suite(notebooks_dir=suite, only=["01"], out=tmp_path / "out", echo=lambda _: None)
    summary = json.loads((tmp_path / "out/suite.json").read_text())
    assert [(n["name"], n["previous"]) for n in summary["notebooks"]] == [("00_ok", True), ("01_fails", False)]
    rows = {line.split("]")[0]: line for line in (tmp_path / "out/index.md").read_text().splitlines()
            if line.startswith("| [")}
    assert rows["| [00_ok"].split(" | ")[0].endswith(" *")  # the earlier run's notebook is marked
    assert not rows["| [01_fails"].split(" | ")[0].endswith(" *")


def test_discover_rejects_unknown_prefix_and_empty_folder(suite, tmp_path):
    assert [p.stem for p in discover_notebooks(suite)] == ["00_ok", "01_fails"]
    with pytest.raises(FileNotFoundError, match="matches no notebook"):
        discover_notebooks(suite, only=["09"])
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        discover_notebooks(tmp_path)


def test_cli_rejects_profile_as_parameter(suite, capsys):
    assert main(["run-notebooks", "--notebooks", str(suite), "-p", "PROFILE", "lab"]) == 1
    assert "--profile" in capsys.readouterr().err


def test_parse_parameter():
    assert parse_parameter("3") == 3 and parse_parameter("0.5") == 0.5
    assert parse_parameter("[1, 2]") == [1, 2] and parse_parameter("cpu") == "cpu"


def test_hygiene_check_and_fix(tmp_path, capsys):
    path = _notebook(tmp_path / "00_x.ipynb", ["1 + 1"])
    assert check_notebook(path) == []
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nb.cells[2].execution_count = 1
    nbformat.write(nb, path)
    problems = check_notebook(path)
    assert any("outputs" in p for p in problems) and any("execution count" in p for p in problems)
    assert hygiene_main([str(tmp_path)]) == 1
    assert hygiene_main(["--fix", str(tmp_path)]) == 0
    assert check_notebook(path) == [] and clean_notebook(path) is False


def test_hygiene_requires_one_parameters_cell_and_python3_kernel(tmp_path):
    path = _notebook(tmp_path / "00_x.ipynb", ["1"], tag_parameters=False)
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"]["name"] = "julia"
    nbformat.write(nb, path)
    problems = check_notebook(path)
    assert any("0 cells are tagged" in p for p in problems) and any("julia" in p for p in problems)


@pytest.mark.notebooks
def test_kernel_death_names_the_running_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROXIQA_LAB_ROOT", str(tmp_path))
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_dies.ipynb", ["x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "y = 2"])
    assert main(["run-notebooks", "--notebooks", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "cell 3" in err and "DeadKernelError" in err and "before any cell ran" not in err


def test_parameter_of_the_wrong_type_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROXIQA_LAB_ROOT", str(tmp_path))
    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PROFILE: str = "smoke"  # profile\nSEED: int = 0  # seeds training')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, folder / "00_typed.ipynb")
    assert main(["run-notebooks", "--notebooks", str(folder), "-p", "SEED", "notanumber"]) == 1
    err = capsys.readouterr().err
    assert "SEED" in err and "int" in err and "seeds training" in err
    assert main(["run-notebooks", "--notebooks", str(folder), "-p", "SEDE", "1"]) == 1
    assert "no notebook has a parameter 'SEDE'" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()  # refused before any notebook ran


def test_clean_notebooks_repairs_what_jupyterlab_leaves(tmp_path):
    """Outputs, counts, widget state and another kernel (as an older README had students install) are all
    repaired by `make clean-notebooks`, so the hygiene check of `make test` passes afterwards."""
    path = _notebook(tmp_path / "00_used.ipynb", ["print('hi')"])
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"display_name": "ProxIQA Lab", "language": "python", "name": "proxiqa-lab"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    nb.cells[2].execution_count = 3
    nbformat.write(nb, path)
    assert any("kernel spec" in p for p in check_notebook(path)) and any("outputs" in p for p in check_notebook(path))
    assert hygiene_main(["--fix", str(tmp_path)]) == 0
    assert check_notebook(path) == []
    assert nbformat.read(path, as_version=4).metadata["kernelspec"]["name"] == "python3"


@pytest.mark.notebooks
def test_runs_are_quiet_but_the_notebooks_warnings_stay_in_their_cells(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROXIQA_LAB_ROOT", str(tmp_path))
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_warns.ipynb", ["import warnings\nwarnings.warn('a warning of the notebook')"])
    assert main(["run-notebooks", "--notebooks", str(folder)]) == 0
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err and "IPKernelApp" not in out + err, "no kernel log for a student"
    executed = (tmp_path / "reports/smoke/executed/00_warns.ipynb").read_text()
    assert "a warning of the notebook" in executed
