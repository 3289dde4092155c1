"""The ``proxiqa-lab`` command line.

Each subcommand lives in its own module of this package and exposes
``add_parser(subparsers)``, which registers the subcommand and sets ``func`` to a handler
taking the parsed ``argparse.Namespace`` and returning an exit status. Handlers import the
heavy parts of the kit lazily, so ``proxiqa-lab --help`` stays fast.

Bad input ends with one line, ``proxiqa-lab <command>: error: ...``, and exit status 1: the
kit's own errors, and the file system's (a full disk, a symlink loop, a file where a folder is
expected, no permission) told from their ``errno``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import ast
import errno
import importlib
import os
import stat
import sys
import warnings

from proxiqa_lab import __version__
from proxiqa_lab.errors import ProxIQALabError, describe_os_error, disk_full

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("data", "metrics", "codec", "evaluate", "bdrate", "pretrain", "train", "zoo", "notebooks",
                   "exercises")


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
    """Run ``proxiqa-lab`` with ``argv`` (default: the process's arguments); return the exit status."""
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
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ProxIQALabError, ValueError) as err:
        return _error(args, str(err))
    except OSError as err:
        if err.errno is None and not isinstance(err, FileNotFoundError):
            raise  # not from the file system: a bug
        return _error(args, describe_os_error(err))
    except RuntimeError as err:
        cause = _symlink_loop(err) or disk_full(err)
        if cause is None:
            raise
        return _error(args, describe_os_error(cause))


def _error(args: argparse.Namespace, message: str) -> int:
    print(f"proxiqa-lab {args.command}: error: {message}", file=sys.stderr)
    return 1


def _symlink_loop(err: RuntimeError) -> OSError | None:
    """The ``ELOOP`` error behind pathlib's ``RuntimeError("Symlink loop from '...'")`` (Python < 3.13)."""
    prefix = "Symlink loop from "
    if not str(err).startswith(prefix):
        return None
    try:
        name = ast.literal_eval(str(err)[len(prefix):])
    except (ValueError, SyntaxError):
        name = None
    return OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)


def check_file(path: str | os.PathLike) -> None:
    """Refuse an input path that cannot be a file: a folder, a symlink loop, a path through a file.

    A missing file passes: the command says what it expected there.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))


def check_folder(path: str | os.PathLike | None) -> None:
    """Refuse, before any work, a folder argument that is a file, a symlink loop or a path through a file.

    A missing folder passes (the command creates it), and so does None (the default folder).
    """
    if path is None:
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(path))


def check_output(path: str | os.PathLike) -> None:
    """Refuse an output path that cannot be written: a symlink loop, a path through a file."""
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
