"""Exercises at the end of every notebook, their answer checks, and the instructor's answer key.

==========================  =========================================================
module                      what it does
==========================  =========================================================
:mod:`~.core`               :class:`Exercise`, :func:`check` (right or not yet, never the answer)
:mod:`~.catalog`            the exercises of each notebook, one module a notebook
==========================  =========================================================

In a notebook::

    from proxiqa_lab import exercises
    exercises.check("02.1", 42.0, profile=PROFILE)

From the shell: ``proxiqa-lab exercises list [--json]`` and ``proxiqa-lab exercises check ID VALUE``.
The answer key is ``notebooks/answers/NN_answers.ipynb``, run in CI in the course profile.
"""

from proxiqa_lab.exercises.core import EXERCISES, CheckResult, Exercise, ExerciseError, by_notebook, check, exercise

__all__ = ["EXERCISES", "CheckResult", "Exercise", "ExerciseError", "all_exercises", "by_notebook", "check",
           "exercise"]


def all_exercises() -> list[Exercise]:
    """Every exercise, in notebook order."""
    from proxiqa_lab.exercises.core import _load_all

    _load_all()
    return sorted(EXERCISES.values(), key=lambda ex: tuple(int(p) for p in ex.id.split(".")))
