"""Exercises at the end of each notebook, and checks that say right or not yet without giving the answer away.

An :class:`Exercise` belongs to one notebook (``"02.3"`` is the third exercise of
``02_pretrained_proxy_failure``). Exercises whose answer is a number or a choice have a check:
the right answer is computed by ``expected`` from what the student's own run of the notebook
recorded (``reports/<profile>/<notebook>/results.json``, :func:`~proxiqa_lab.studies.load_results`),
so another ``SEED`` or profile is not marked wrong. A number is right within ``tolerance``
(absolute) or ``rel_tolerance`` (relative to the right value); a choice when it is the right one,
case and spaces aside. The message never contains the right answer. Exercises answered in words
have no check; the answer key lists what a good answer mentions (``good_answer``).

>>> from proxiqa_lab import exercises
>>> exercises.check("00.1", 12.3, profile="course")  # doctest: +SKIP
00.1 not yet: ... (hint)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxiqa_lab.errors import ProxIQALabError

__all__ = ["EXERCISES", "CheckResult", "Exercise", "ExerciseError", "check", "exercise", "register"]


class ExerciseError(ProxIQALabError, ValueError):
    """An unknown exercise id, or an answer of the wrong kind (text where a number is asked)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    Attributes:
        id: ``"NN.k"``: notebook number and position.
        notebook: the notebook's name (``"02_pretrained_proxy_failure"``).
        title: a short title, as the notebook's Exercises section gives it.
        kind: ``"predict"`` (predict, then run), ``"change"`` (change a parameter and explain),
            ``"extend"`` (a few lines with the package) or ``"read"`` (read a figure).
        cost: what it takes on a CPU laptop in the course profile, e.g. ``"seconds"``, ``"~2 min"``.
        expected: ``results -> right answer`` (a number, or one of ``choices``); ``None`` for an
            answer in words.
        tolerance: how far (absolute) a numeric answer may be from the right one.
        rel_tolerance: how far, as a fraction of the right value (the larger of the two applies).
        choices: the accepted vocabulary of a choice question (answers outside it are malformed).
        hint: what the check says to a wrong answer; it must not give the answer away.
        good_answer: what a good answer mentions (for the answer key; words-only exercises).
    """

    id: str
    notebook: str
    title: str
    kind: str
    cost: str
    expected: Callable[[dict], Any] | None = None
    tolerance: float = 0.0
    rel_tolerance: float = 0.0
    choices: tuple[str, ...] = ()
    hint: str = ""
    good_answer: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_check(self) -> bool:
        return self.expected is not None

    def describe(self) -> dict:
        """What ``exercises list --json`` shows: nothing of the answer."""
        return {"id": self.id, "notebook": self.notebook, "title": self.title, "kind": self.kind,
                "cost": self.cost, "has_check": self.has_check, **({"choices": list(self.choices)} if self.choices else {})}


#: Every exercise, by id, in notebook order.
EXERCISES: dict[str, Exercise] = {}

_KINDS = ("predict", "change", "extend", "read")


def register(*items: Exercise) -> None:
    """Add exercises to :data:`EXERCISES` (an id may be registered once)."""
    for ex in items:
        if ex.id in EXERCISES:
            raise ValueError(f"exercise {ex.id} is registered twice")
        if ex.kind not in _KINDS:
            raise ValueError(f"exercise {ex.id}: kind {ex.kind!r} is not one of {_KINDS}")
        if ex.id.split(".")[0] != ex.notebook[:2]:
            raise ValueError(f"exercise {ex.id} does not belong to notebook {ex.notebook}")
        if ex.has_check and not ex.hint:
            raise ValueError(f"exercise {ex.id} has a check but no hint")
        EXERCISES[ex.id] = ex


def exercise(exercise_id: str) -> Exercise:
    """The exercise ``exercise_id``; :class:`ExerciseError` names the known ones when there is none."""
    _load_all()
    if not isinstance(exercise_id, str) or exercise_id not in EXERCISES:
        known = ", ".join(EXERCISES)
        raise ExerciseError(f"there is no exercise {str(exercise_id)[:20]!r}; the exercises are {known}")
    return EXERCISES[exercise_id]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check`: ``right``, and the message shown (never the right answer)."""

    id: str
    right: bool
    message: str
    answered: bool = True

    def __bool__(self) -> bool:
        return self.right

    def __repr__(self) -> str:
        return self.message

    def _repr_markdown_(self) -> str:
        return f"**{self.message}**" if self.right else self.message


def check(exercise_id: str, answer, profile: str = "course", results: dict | None = None) -> CheckResult:
    """Check an answer to an exercise against what the student's run of its notebook recorded.

    Args:
        exercise_id: ``"NN.k"``.
        answer: a number (int, float, or a string that reads as one) or a choice; ``None`` or
            ``...`` means not answered yet.
        profile: the profile the notebook ran in (its ``PROFILE``).
        results: the notebook's results (default: read from ``reports/<profile>/<notebook>/results.json``).

    Returns:
        A :class:`CheckResult`, true when the answer is right. Its message says right, or not yet
        with the hint, and never contains the right answer.

    Raises:
        ExerciseError: for an unknown id, an exercise without a check, or a malformed answer.
    """
    ex = exercise(exercise_id)
    if not ex.has_check:
        raise ExerciseError(f"exercise {ex.id} is answered in words; the answer key says what a good answer "
                            f"mentions")
    if answer is None or answer is Ellipsis:
        return CheckResult(ex.id, False, f"{ex.id}: no answer yet; put yours in place of None and run the cell",
                           answered=False)
    given = _choice(answer, ex) if ex.choices else _number(answer, ex)
    if results is None:
        from proxiqa_lab.studies.results import load_results

        try:
            results = load_results(profile, ex.notebook)
        except FileNotFoundError:
            raise ExerciseError(f"exercise {ex.id} is checked against your run of notebooks/{ex.notebook}.ipynb "
                                f"in the {profile} profile; run that notebook first") from None
    right = ex.expected(results)
    if ex.choices:
        ok = given == _normal(right)
    else:
        allowed = max(ex.tolerance, ex.rel_tolerance * abs(float(right)))
        ok = math.isfinite(given) and abs(given - float(right)) <= allowed
    if ok:
        return CheckResult(ex.id, True, f"{ex.id}: right")
    return CheckResult(ex.id, False, f"{ex.id}: not yet. Hint: {ex.hint}")


def _normal(text) -> str:
    return " ".join(str(text).lower().split())


def _choice(answer, ex: Exercise) -> str:
    given = _normal(answer)
    if given not in {_normal(c) for c in ex.choices}:
        raise ExerciseError(f"exercise {ex.id} asks for one of {list(ex.choices)}, got {str(answer)[:40]!r}")
    return given


def _number(answer, ex: Exercise) -> float:
    if isinstance(answer, bool):
        raise ExerciseError(f"exercise {ex.id} asks for a number, got {answer!r}")
    try:
        value = float(answer.strip().rstrip("%")) if isinstance(answer, str) else float(answer)
    except (TypeError, ValueError, OverflowError):
        raise ExerciseError(f"exercise {ex.id} asks for a number, got {str(answer)[:40]!r}") from None
    if not math.isfinite(value):
        raise ExerciseError(f"exercise {ex.id} asks for a finite number, got {str(answer)[:40]!r}")
    return value


def _load_all() -> None:
    """Import every notebook's exercises (each module registers its own)."""
    from proxiqa_lab.exercises import catalog  # noqa: F401


def by_notebook(notebook_prefix: str) -> Sequence[Exercise]:
    """The exercises of one notebook (``"02"``), in order."""
    _load_all()
    return [ex for ex in EXERCISES.values() if ex.id.split(".")[0] == notebook_prefix]
