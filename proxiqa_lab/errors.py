"""Errors the kit raises for bad input. Each message says what was wrong and what to do."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path


class ProxIQALabError(Exception):
    """Base class of the kit's own errors; the CLI prints these without a traceback."""


class DataNotFoundError(ProxIQALabError, FileNotFoundError):
    """A dataset or file is missing; the message names the command that fetches it."""


class ImageError(ProxIQALabError, ValueError):
    """An image cannot be read, or its size or format is unusable."""


class MetricError(ProxIQALabError, ValueError):
    """A quality metric cannot be computed for the given inputs."""


class BitstreamError(ProxIQALabError, ValueError):
    """A bitstream is truncated, corrupt, or was not written by this kit."""


class CheckpointError(ProxIQALabError, ValueError):
    """A checkpoint is missing, corrupt, or does not describe a known model."""


class TrainingError(ProxIQALabError, RuntimeError):
    """Training cannot go on (for example a NaN or Inf loss)."""


class ZooError(ProxIQALabError, ValueError):
    """A shipped model or a run archive is missing, altered, damaged, or not one of the kit's."""


#: errno values that mean the disk (or the user's quota) is full.
DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def disk_full(err: BaseException) -> OSError | None:
    """The full-disk ``OSError`` behind ``err``: itself, or one it was raised from or while handling.

    ``torch.save`` into a file, for one, turns a failed write into a ``RuntimeError`` whose context is
    the ``OSError``.
    """
    return next((e for e in exception_chain(err) if isinstance(e, OSError) and e.errno in DISK_FULL), None)


def exception_chain(err: BaseException | None) -> Iterator[BaseException]:
    """``err``, then the exceptions it was raised from or while handling."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def describe_os_error(err: OSError) -> str:
    """One line for a failed file operation: what was wrong with which file, and what to do.

    A kit error raised as an ``OSError`` subclass with a message only (no ``errno``) is given as it is.
    """
    if err.errno is None or err.strerror is None:
        return str(err)
    name = os.fsdecode(err.filename) if err.filename is not None else None
    shown = f"'{name}'" if name is not None else "a file"
    if err.errno in DISK_FULL:
        if err.filename2 is not None:  # a copy (shutil names its source first) or a move: the destination
            name = os.fsdecode(err.filename2)
        if name is None:
            return f"disk full ({err.strerror}); free space and rerun"
        kept = f"{name} was left as it was" if os.path.lexists(name) else "nothing was written"
        return f"disk full ({err.strerror}) while writing {name}: {kept}; free space and rerun"
    if err.errno == errno.ELOOP:
        return f"{shown} is a symlink loop (a link that leads back to itself); fix or remove the link"
    if err.errno == errno.ENOTDIR:
        blocker = _first_file_on(name) if name is not None else None
        if blocker is None:
            return f"{shown}: a part of its path is a file, not a folder"
        return f"'{blocker}' is a file, not a folder" + ("" if blocker == name else f" (in the path {shown})")
    if err.errno == errno.EISDIR:
        return f"{shown} is a folder, not a file; give the path of a file"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied for {shown}; check its owner and mode (ls -l) or choose another path"
    if err.errno == errno.ENAMETOOLONG:
        short = f"'{name[:60]}...'" if name is not None and len(name) > 60 else shown
        return f"the path {short} is too long for the file system; use a shorter name"
    if err.errno == errno.EROFS:
        return f"{shown} is on a read-only file system; choose a path you can write to"
    if err.errno == errno.ENOENT:
        return f"{shown} does not exist"
    if err.errno == errno.EEXIST:
        return f"{shown} already exists" + ("" if name is None or os.path.isdir(name) else " and is not a folder")
    return f"{err.strerror} ({shown})" if name is not None else err.strerror


def _first_file_on(path: str) -> str | None:
    """The first part of ``path``, from the top, that exists but is not a folder; None if none is."""
    for part in (*reversed(Path(path).parents), Path(path)):
        if os.path.lexists(part) and not os.path.isdir(part):
            return str(part)
    return None
