"""``proxiqa-lab run-notebooks``: execute the notebook suite in order (papermill) and index it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proxiqa_lab.paths import PROFILES


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run-notebooks",
        help="run the numbered notebooks in order and write an index of their figures and tables",
        description="Run notebooks/NN_*.ipynb in order through papermill with PROFILE injected; write the "
        "executed notebooks and an index (index.md, index.html, suite.json) to reports/<profile>/executed/.",
    )
    p.add_argument("--profile", default="smoke", choices=PROFILES,
                   help="study size (default: smoke; course: the lab's trained models on a few images)")
    p.add_argument("--only", default=None, help="comma-separated notebook prefixes to run, e.g. 02,04")
    p.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="extra value injected into every notebook's parameters cell (Python literal or string); repeatable",
    )
    p.add_argument("--out", default=None, help="folder for executed notebooks and the index")
    p.add_argument("--notebooks", default=None,
                   help="folder of the notebooks (default: the project's notebooks/, from any working folder)")
    p.add_argument("--log-output", action="store_true", help="stream cell outputs while running")
    p.add_argument("--cell-timeout", type=int, default=None, metavar="S",
                   help="fail a notebook whose cell runs longer than S seconds (default: no limit)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from proxiqa_lab.cli import check_folder
    from proxiqa_lab.notebooks.runner import parse_parameter, run_suite

    only = args.only.split(",") if args.only is not None else None  # blank prefixes are dropped, none left refused
    check_folder(args.out)
    parameters = {name: parse_parameter(value) for name, value in args.parameter}
    if "PROFILE" in parameters:
        raise ValueError("set the profile with --profile, not -p PROFILE")
    results = run_suite(
        profile=args.profile, notebooks_dir=args.notebooks, only=only, parameters=parameters,
        out=args.out, log_output=args.log_output, cell_timeout=args.cell_timeout,
    )
    failed = [r for r in results if r.status != "ok"]
    total = sum(r.wall_s for r in results)
    index = Path(results[0].executed).parent / "index.md"
    print(f"{len(results) - len(failed)}/{len(results)} notebooks ran in {total:.1f} s; index: {index}")
    for r in failed:
        print(f"proxiqa-lab run-notebooks: error: notebook {r.name} failed at {r.failure.describe()}", file=sys.stderr)
    return 1 if failed else 0
