"""``proxiqa-lab exercises``: list the notebooks' exercises, and check an answer from the shell.

    proxiqa-lab exercises list [--json]
    proxiqa-lab exercises check ID VALUE [--profile course]     exit 0 right, 1 not yet, 2 unknown id
"""

from __future__ import annotations

import argparse
import json
import sys

from proxiqa_lab.paths import PROFILES


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "exercises", help="list the notebooks' exercises and check answers",
        description="The exercises at the end of every notebook. A check compares an answer with what your run "
        "of the notebook recorded (reports/<profile>/<notebook>/results.json) and says right or not yet, with a "
        "hint; it never prints the answer.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="id, notebook, title, cost, and whether an answer check exists")
    lst.add_argument("--json", action="store_true", help="one JSON list")
    lst.set_defaults(func=_list)
    chk = sub.add_parser("check", help="check an answer: exit 0 when right, 1 when not yet, 2 for an unknown id")
    chk.add_argument("id", metavar="ID", help="an exercise id, e.g. 02.1")
    chk.add_argument("value", metavar="VALUE", help="your answer: a number or one of the exercise's choices")
    chk.add_argument("--profile", default="course", choices=PROFILES,
                     help="the profile you ran the notebook in (default: course)")
    chk.set_defaults(func=_check)


def _list(args: argparse.Namespace) -> int:
    from proxiqa_lab.exercises import all_exercises

    items = [ex.describe() for ex in all_exercises()]
    if args.json:
        print(json.dumps(items, indent=1))
        return 0
    for ex in items:
        print(f"{ex['id']:<6} {ex['notebook']:<30} {'check' if ex['has_check'] else 'words':<6} {ex['cost']:<10} "
              f"{ex['title']}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from proxiqa_lab.exercises import EXERCISES, ExerciseError, check
    from proxiqa_lab.exercises.core import _load_all

    _load_all()
    if args.id not in EXERCISES:
        print(f"proxiqa-lab exercises: error: there is no exercise {args.id[:20]!r}; "
              f"`proxiqa-lab exercises list` shows them", file=sys.stderr)
        return 2
    try:
        result = check(args.id, args.value, profile=args.profile)
    except ExerciseError as err:
        print(f"proxiqa-lab exercises: error: {err}", file=sys.stderr)
        return 2
    print(result.message)
    return 0 if result.right else 1
