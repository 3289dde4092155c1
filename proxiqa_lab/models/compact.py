"""Compact checkpoints: what a trained model needs to code images, and nothing else, in few bytes.

A training checkpoint carries the optimisers' state, RNG states and float32 weights. A compact
one keeps the model (architecture, config, weights and entropy-coder tables) in float16, and
the entries made of plain data (the step, a proxy's metric, a pretrained proxy's report), and
stores it byte-shuffled and xz-compressed: the float16 weights' high bytes (sign,
exponent) are put together, where xz finds them alike, as HDF5's shuffle filter does. It loads
with :func:`~proxiqa_lab.models.load_checkpoint` like any checkpoint; its float16 weights come
back as float32, unchanged in value, so a compact model codes exactly as its file says.

A tensor that float16 cannot hold (a value it would flush to zero or overflow) stays float32:
the models' constants are such values, e.g. the entropy models' likelihood bound 1e-9 and GDN's
pedestal 2^-36. Format 1 stored them in float16, as zeros; without the bound, a model fine-tuned
from such a file can estimate an infinite rate and stop (a BMSHJ model did at its third step).
Reading a format-1 file restores them from the model as built, since training never changes them.
"""

from __future__ import annotations

import io
import lzma
import os
from pathlib import Path

import numpy as np
import torch

from proxiqa_lab.fileio import atomic_open
from proxiqa_lab.models.registry import build_model

__all__ = ["CompactError", "FORMAT", "MAGIC", "MAX_PAYLOAD", "compact_checkpoint", "fits_float16", "is_compact", "read_compact",
           "restore_constants", "write_compact"]

#: The first bytes of an xz stream: how a compact checkpoint is told from a ``torch.save`` file.
MAGIC = b"\xfd7zXZ\x00"
#: The format, stored in every compact checkpoint.
FORMAT = "proxiqa-lab compact checkpoint 2"
#: The first format: every floating-point tensor in float16, the models' constants included.
FORMAT_1 = "proxiqa-lab compact checkpoint 1"
#: The most a compact checkpoint may inflate to (the largest model the kit builds, BMSHJ at
#: N = M = 512, holds about 150 MB in float16).
MAX_PAYLOAD = 512 * 2**20


def _has_tensors(value) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return any(_has_tensors(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_tensors(v) for v in value)
    return False


class CompactError(ValueError):
    """A file that starts like a compact checkpoint but is not a complete one."""


def is_compact(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts like a compact checkpoint (an xz stream)."""
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _shuffle(t: torch.Tensor) -> torch.Tensor:
    """A float16 tensor's bytes, high bytes first, as a flat uint8 tensor."""
    raw = t.detach().cpu().contiguous().numpy().view(np.uint8).reshape(-1, 2)
    return torch.from_numpy(np.ascontiguousarray(raw.T).reshape(-1))


def _unshuffle(packed: torch.Tensor, shape) -> torch.Tensor:
    raw = packed.numpy().reshape(2, -1).T.copy().view(np.float16).reshape(tuple(shape))
    return torch.from_numpy(raw).float()


def fits_float16(t: torch.Tensor) -> bool:
    """Whether float16 holds every value of ``t`` to its precision: none flushed to zero, none overflowed."""
    half = t.detach().to(torch.float16)
    overflowed = torch.isinf(half) & torch.isfinite(t)
    flushed = (half == 0) & (t != 0)
    return not bool((overflowed | flushed).any())


def restore_constants(checkpoint: dict) -> dict:
    """A format-1 checkpoint with the model's constant buffers that float16 flushed to zero (likelihood
    bounds, GDN pedestals) set back to their values in the model as built; weights are left alone."""
    try:
        model = build_model(checkpoint["architecture"], **checkpoint["config"])
    except (KeyError, TypeError, ValueError):
        return checkpoint  # not a model the kit builds: load_checkpoint says so
    state = dict(checkpoint["state_dict"])
    for name, built in model.named_buffers():
        stored = state.get(name)
        if (built.is_floating_point() and isinstance(stored, torch.Tensor) and stored.shape == built.shape
                and bool(((stored == 0) & (built != 0)).any())):
            state[name] = built.detach().clone()
    return {**checkpoint, "state_dict": state}


def compact_checkpoint(checkpoint: dict) -> dict:
    """The compact form of a checkpoint dict (see the module docstring)."""
    from proxiqa_lab.models.checkpoint import RESERVED_KEYS

    packed, shapes, plain = {}, {}, {}
    for name, value in checkpoint["state_dict"].items():
        if value.is_floating_point() and fits_float16(value):
            packed[name] = _shuffle(value.to(torch.float16))
            shapes[name] = list(value.shape)
        else:
            plain[name] = value.detach().cpu().clone()
    out = {k: checkpoint[k] for k in RESERVED_KEYS if k != "state_dict"}
    out.update(format=FORMAT, float16=packed, shapes=shapes, state_dict=plain)
    out.update({k: v for k, v in checkpoint.items() if k not in RESERVED_KEYS and not _has_tensors(v)})
    return out


def write_compact(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write the compact form of the checkpoint ``src`` (a training one, or ``model.pt``) to ``dst``."""
    from proxiqa_lab.models.checkpoint import read_checkpoint

    buffer = io.BytesIO()
    torch.save(compact_checkpoint(read_checkpoint(src)), buffer)
    dst = Path(dst)
    with atomic_open(dst, "wb") as f:
        f.write(lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    return dst


def _inflate(path: str | os.PathLike, limit: int) -> bytearray:
    """The xz stream of ``path``, decompressed in chunks; refused at the first byte past ``limit``
    (a small file can inflate to gigabytes) and when cut short or followed by other bytes."""
    decompressor, out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ), bytearray()
    with open(path, "rb") as f:
        while not decompressor.eof:
            chunk = f.read(1 << 20) if decompressor.needs_input else b""
            if decompressor.needs_input and not chunk:
                raise CompactError("its compressed data is damaged or cut short, an interrupted copy?")
            out += decompressor.decompress(chunk, max_length=limit + 1 - len(out))
            if len(out) > limit:
                raise CompactError(f"it inflates to more than {limit // 2**20} MiB, more than any model the kit "
                                   f"builds holds (a damaged or hostile file)")
        if decompressor.unused_data or f.read(1):
            raise CompactError("it has bytes after its compressed data (damaged or altered)")
    return out


def read_compact(path: str | os.PathLike) -> dict:
    """A compact checkpoint as the plain checkpoint dict it stands for (float32 weights).

    Raises:
        CompactError: when the file is not a complete compact checkpoint.
    """
    try:
        data = _inflate(path, MAX_PAYLOAD)
    except lzma.LZMAError as err:
        raise CompactError(f"its compressed data is damaged or cut short, an interrupted copy? ({err})") from None
    stored = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(stored, dict) or stored.get("format") not in (FORMAT, FORMAT_1):
        raise CompactError("it is xz-compressed but not a compact checkpoint of the kit")
    state = dict(stored["state_dict"])
    for name, packed in stored["float16"].items():
        state[name] = _unshuffle(packed, stored["shapes"][name])
    checkpoint = {k: v for k, v in stored.items() if k not in ("format", "float16", "shapes")}
    checkpoint["state_dict"] = state
    return restore_constants(checkpoint) if stored["format"] == FORMAT_1 else checkpoint
