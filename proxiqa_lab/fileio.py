"""Atomic file writes: a temporary file in the destination's folder, fsync, then ``os.replace``.

A reader (or a crash, even ``kill -9``) sees either the old file or the complete new one,
never a partial file. The temporary file is named ``.<name>.<random>.tmp`` and is removed
when the write fails; the finished file gets the usual mode (``0o666 & ~umask``), not the
``0o600`` that :func:`tempfile.mkstemp` gives.

This module is low level on purpose: of the kit, it imports only :mod:`proxiqa_lab.errors`.

>>> from proxiqa_lab.fileio import atomic_open
>>> with atomic_open("out/table.csv", "w") as f:  # doctest: +SKIP
...     f.write("a,b\\n1,2\\n")
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from proxiqa_lab.errors import exception_chain

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "current_umask"]

_MODES = ("w", "wb")


def current_umask() -> int:
    """The process umask, read without changing it.

    Linux reports it in ``/proc/self/status``. Elsewhere it is read with
    ``mask = os.umask(...); os.umask(mask)``, setting the most restrictive mask for that
    instant, so a file another thread creates meanwhile is never more open than intended.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success move it onto ``path``.

    The parent folder is created. On leaving the block the file is flushed, fsynced, given
    the usual mode and ``os.replace``-d onto ``path``. If the block raises (any exception,
    ``KeyboardInterrupt`` included) the temporary file is removed, ``path`` is left as it
    was, and the exception propagates: raise inside the block to discard what was written.
    An ``OSError`` (a full disk, say) names ``path``, not the temporary file; a parent that is
    a file gives ``NotADirectoryError``.

    Args:
        path: the destination file.
        mode: ``"wb"`` (bytes) or ``"w"`` (text, UTF-8).
        newline: for text mode, as for :func:`open` (``""`` writes newlines untranslated).

    Yields:
        The open file object.
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_open supports modes {_MODES}, got {mode!r}")
    if newline is not None and mode == "wb":
        raise ValueError("newline applies to text mode ('w') only")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # the parent is a file
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), err.filename or str(path.parent)) from err
    with _naming(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
    except BaseException:
        os.close(fd)
        _discard(tmp)
        raise
    try:
        with _naming(path):
            with f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Give an ``OSError`` about the temporary file, or about no file (a failed ``write``), the
    destination's name: the one the user knows."""
    try:
        yield
    except Exception as err:
        for cause in exception_chain(err):  # also the OSError behind another error (torch.save raises RuntimeError)
            if isinstance(cause, OSError) and cause.errno is not None:
                name = os.path.basename(os.fsdecode(cause.filename)) if cause.filename is not None else None
                if name is None or name.startswith(f".{path.name}.") and name.endswith(".tmp"):
                    cause.filename = str(path)
        raise


def _discard(tmp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); return the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, newline: str | None = None) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`atomic_open`); return the path."""
    with atomic_open(path, "w", newline=newline) as f:
        f.write(text)
    return Path(path)
