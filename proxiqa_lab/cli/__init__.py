"""The ``proxiqa-lab`` command line.

Each subcommand lives in its own module of this package and exposes
``add_parser(subparsers)``, which registers the subcommand and sets ``func`` to a handler
taking the parsed ``argparse.Namespace`` and returning an exit status. Handlers import the
heavy parts of the kit lazily, so ``proxiqa-lab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from proxiqa_lab import __version__
from proxiqa_lab.errors import ProxIQALabError

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("data", "metrics", "codec", "evaluate", "bdrate", "pretrain", "train", "zoo", "notebooks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proxiqa-lab",
        description="ProxIQA Lab: proxy-based perceptual optimization of learned image compression.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"proxiqa_lab.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"proxiqa_lab.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Warnings are messages to the user here, not to a developer: no file and line.
    warnings.formatwarning = lambda message, category, *_args, **_kw: f"proxiqa-lab: warning: {message}\n"
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the output went to `head` or another reader that stopped early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ProxIQALabError, ValueError, FileNotFoundError) as err:
        print(f"proxiqa-lab {args.command}: error: {err}", file=sys.stderr)
        return 1
