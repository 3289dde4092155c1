"""What a run reports while it trains: the rows of ``log.csv``, TensorBoard events beside it, and the
numbers on its progress bar.

On resume, :meth:`RunLog.open` keeps the rows up to the checkpoint's step and drops the later ones, so a
resumed ``log.csv`` equals an uninterrupted one. Under DDP only the main process writes files.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import Any

from proxiqa_lab.fileio import atomic_open
from proxiqa_lab.training.runs import LOG_COLUMNS

__all__ = ["RunLog"]


class RunLog:
    """``log.csv``, ``tensorboard/`` and the progress bar of one run folder.

    Args:
        out: the run folder.
        main: whether this process writes the files (the main process under DDP).
    """

    def __init__(self, out: str | Path, main: bool = True):
        self.out = Path(out)
        self.path = self.out / "log.csv"
        self.main = main
        self._file = None
        self._writer: csv.DictWriter | None = None
        self._board = None
        self._bar = None

    def open(self, upto: int, bar: dict | None = None) -> list[str]:
        """Open ``log.csv`` for appending, dropping its rows after step ``upto``; start the TensorBoard
        events at step ``upto + 1``; show a progress bar (``tqdm`` keyword arguments) when ``bar`` is given.

        Returns:
            Notes for the run's metadata (e.g. why there are no TensorBoard events).
        """
        notes = []
        if self.main:
            rows: list[dict] = []
            if self.path.is_file():
                with open(self.path, newline="") as f:
                    rows = [r for r in csv.DictReader(f) if r.get("step") and int(float(r["step"])) <= upto]
            with atomic_open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            self._file = open(self.path, "a", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=LOG_COLUMNS, extrasaction="ignore", restval="")
            try:
                from proxiqa_lab.training.tensorboard import Board

                self._board = Board(self.out / "tensorboard", upto + 1)
            except ImportError as err:  # tensorboard is a dependency; a broken install only loses the events
                notes.append(f"no TensorBoard events: {err}")
            except OSError as err:  # the events are best effort (see proxiqa_lab.training.tensorboard)
                where = err.filename or self.out / "tensorboard"
                notes.append(f"no TensorBoard events: {err.strerror or err} ({where})")
            if bar is not None:
                from proxiqa_lab.progress import tqdm

                self._bar = tqdm(unit="step", dynamic_ncols=True, **bar)
        return notes

    def write(self, row: dict) -> None:
        """Log one step's row (a row marked ``_skip`` is not logged)."""
        if row.pop("_skip", False):
            return
        if self._writer is not None:
            try:
                self._writer.writerow({k: _fmt(row.get(k)) for k in LOG_COLUMNS})
                self._file.flush()
            except OSError as err:  # a full disk: name the file
                err.filename = err.filename or str(self.path)
                raise
            if self._board is not None:
                self._board.scalars(row)
        if self._bar is not None:
            post = {"loss": f"{row['loss']:.4g}", "bpp": f"{row['bpp']:.3f}", "psnr": f"{row['psnr']:.2f}"}
            if "metric_true" in row:
                post["M"] = f"{row['metric_true']:.3g}"
            if "metric_proxy" in row:
                post["M^"] = f"{row['metric_proxy']:.3g}"
            self._bar.set_postfix(post, refresh=False)

    def advance(self) -> None:
        """One more step done (the progress bar)."""
        if self._bar is not None:
            self._bar.update(1)

    def checkpoint(self, step: int, images: tuple | None) -> None:
        """At a checkpoint: flush ``log.csv`` and add the last batch's images (``(x, x_hat)``) to the events."""
        if self.main and self._board is not None and images is not None:
            self._board.images(step, *images)
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Close the progress bar, ``log.csv`` and the events, each even when another fails."""
        self._writer = None
        with contextlib.ExitStack() as stack:
            for name in ("_board", "_file", "_bar"):  # closed in reverse order
                handle = getattr(self, name)
                setattr(self, name, None)
                if handle is not None:
                    stack.callback(handle.close)


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value
