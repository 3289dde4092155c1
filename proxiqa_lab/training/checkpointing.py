"""Training state on disk: atomic writes of ``checkpoints/last.pt`` and exact RNG capture.

Everything is stored as dicts, lists, numbers, strings and tensors, so a training checkpoint
loads with ``torch.load(weights_only=True)``. RNG states (torch, CUDA, numpy, Python) are kept
as tensors and lists.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from proxiqa_lab.errors import CheckpointError, TrainingError
from proxiqa_lab.fileio import atomic_open


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and Python random states, as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``.

    A crash (even ``kill -9``) leaves either the old file or the new one, never a partial one.
    """
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
    return path


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True``; raise ``CheckpointError`` if unreadable."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign files
        from proxiqa_lab.models.checkpoint import load_error_reason

        raise CheckpointError(f"{str(path)!r} is not a readable training checkpoint: {load_error_reason(err)}; "
                              f"start a new run in an empty --out folder") from None
    if not isinstance(state, dict) or "step" not in state or "codec" not in state:
        raise CheckpointError(f"{str(path)!r} is not a training checkpoint of this kit (no 'step'/'codec' entries)")
    return state


def plain(value: Any) -> Any:
    """Convert numpy scalars/arrays inside ``value`` to Python numbers/tensors (for weights-only files)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    return value


@contextlib.contextmanager
def run_lock(out: str | os.PathLike) -> Iterator[None]:
    """Hold ``<out>/.lock`` for the duration of a run, so two processes never train into one folder.

    Raises:
        TrainingError: when another process holds the lock (its PID is named).
    """
    path = Path(out) / ".lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise TrainingError(f"{out} is in use by another training process (pid {owner}); "
                            f"wait for it to finish or choose another --out") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
