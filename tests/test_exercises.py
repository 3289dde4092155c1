"""The notebooks' exercises: their form, the answer checks, the command line, and the instructor's answer key,
run in the course profile as a teacher's class would run it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from proxiqa_lab.cli import main
from proxiqa_lab.exercises import EXERCISES, ExerciseError, all_exercises, by_notebook, check
from proxiqa_lab.notebooks.runner import discover_notebooks, run_suite

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
ANSWERS = NOTEBOOKS / "answers"
NAMES = [p.stem for p in discover_notebooks(NOTEBOOKS)]


# --------------------------------------------------------------------------- the catalogue and the notebooks
@pytest.mark.parametrize("name", NAMES)
def test_every_notebook_ends_with_3_to_6_exercises_that_it_shows(name):
    own = by_notebook(name[:2])
    assert 3 <= len(own) <= 6, f"{name} has {len(own)} exercises"
    assert [ex.id for ex in own] == [f"{name[:2]}.{k}" for k in range(1, len(own) + 1)], "numbered NN.1, NN.2, ..."
    assert all(ex.notebook == name and ex.cost and ex.title for ex in own)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Exercises"))
    section = "\n".join(c.source for c in nb.cells[start:])
    for ex in own:
        assert f"**{ex.id} ·" in section, f"{ex.id} is not in {name}'s Exercises section"
        assert (f'exercises.check("{ex.id}",' in section) == ex.has_check, f"{ex.id}: a check cell iff it has a check"
        assert ex.has_check or ex.good_answer, f"{ex.id} is answered in words: the key says what a good answer mentions"
    key = "\n".join(c.source for c in nbformat.read(ANSWERS / f"{name[:2]}_answers.ipynb", as_version=4).cells)
    assert all(f"**{ex.id} ·" in key for ex in own), f"the answer key of {name} answers every exercise"


def test_at_least_half_of_the_exercises_have_checks():
    exercises = all_exercises()
    assert sum(ex.has_check for ex in exercises) * 2 >= len(exercises)


def test_list_json_and_check_from_the_shell(capsys):
    assert main(["exercises", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in listed] == [ex.id for ex in all_exercises()]
    assert set(listed[0]) >= {"id", "notebook", "title", "cost", "has_check"}
    assert not any(k in e for e in listed for k in ("expected", "answer", "good_answer")), "the list gives nothing away"
    assert main(["exercises", "check", "99.1", "3"]) == 2
    assert "no exercise '99.1'" in capsys.readouterr().err
    checked = next(ex for ex in all_exercises() if ex.has_check and not ex.choices)
    assert main(["exercises", "check", checked.id, "not a number"]) == 2
    err = capsys.readouterr().err
    assert "asks for a number" in err and err.count("\n") == 1
    with pytest.raises(ExerciseError, match="asks for a number"):
        check(checked.id, True, results={})
    words = next(ex for ex in all_exercises() if not ex.has_check)
    assert main(["exercises", "check", words.id, "1"]) == 2
    assert "answered in words" in capsys.readouterr().err


def test_no_answer_yet_is_neither_right_nor_an_error():
    ex = next(ex for ex in all_exercises() if ex.has_check)
    result = check(ex.id, None, results={})
    assert not result and not result.answered and "no answer yet" in result.message


# --------------------------------------------------------------------------- the answer key, in the course profile
@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The nine notebooks in the course profile (the shipped models, nothing trained), then the nine answer keys."""
    root = tmp_path_factory.mktemp("course")
    env = {"PROXIQA_LAB_REPORTS": root / "reports", "PROXIQA_LAB_RUNS": root / "runs",
           "PROXIQA_LAB_DATA": os.environ.get("PROXIQA_LAB_DATA", str(REPO / "data"))}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, str(Path(value).resolve()))
        notebooks = run_suite("course", NOTEBOOKS, cwd=root, cell_timeout=600, echo=print)
        answers = run_suite("course", ANSWERS, cwd=root, out=root / "answers", cell_timeout=600, echo=print)
        yield {"notebooks": notebooks, "answers": answers, "reports": root / "reports" / "course"}


def test_the_answer_key_runs_and_every_check_accepts_its_solution(course):
    for result in course["notebooks"] + course["answers"]:
        assert result.status == "ok", f"{result.name}: {result.failure.describe()}"
    assert [r.name for r in course["answers"]] == [f"{n[:2]}_answers" for n in NAMES]
    executed = "\n".join(Path(r.executed).read_text() for r in course["answers"])
    assert executed.count(": right") >= sum(ex.has_check for ex in all_exercises())


def _renderings(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    value = float(value)
    shown = {f"{value:.1f}", f"{value:.2f}", f"{value:.3f}", repr(value)}
    if abs(value) >= 10:
        shown.add(f"{value:.0f}")
    return shown


def test_every_check_rejects_a_wrong_answer_and_never_shows_the_right_one(course):
    for ex in (ex for ex in all_exercises() if ex.has_check):
        results = json.loads((course["reports"] / ex.notebook / "results.json").read_text())
        right = ex.expected(results)
        if ex.choices:
            wrongs = [c for c in ex.choices if c.lower() != str(right).lower()]
        else:
            allowed = max(ex.tolerance, ex.rel_tolerance * abs(right))
            wrongs = [right + 3 * allowed + 1, right - 3 * allowed - 1]
            if 2 * abs(right) > allowed:  # the sign matters: a BD-rate's tells saving from losing
                wrongs.append(-right)
        assert wrongs, ex.id
        for wrong in wrongs:
            result = check(ex.id, wrong, results=results)
            assert not result, f"{ex.id} accepted the wrong answer {wrong!r}"
            shown = result.message
            if ex.choices:
                named = [c for c in ex.choices if re.search(rf"(?<!\w){re.escape(c)}(?!\w)", shown, re.IGNORECASE)]
                assert str(right) not in named or len(named) == len(ex.choices), f"{ex.id} names the answer: {shown}"
            else:
                assert not any(r in shown for r in _renderings(right)), f"{ex.id}'s message shows the answer"
        assert check(ex.id, right, results=results), f"{ex.id} refuses its own right answer"
    assert len(EXERCISES) == len(all_exercises())
