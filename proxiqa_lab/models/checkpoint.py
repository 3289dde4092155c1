"""Checkpoints: a model's architecture, config and weights in one ``torch.save`` file.

A checkpoint is a dict ``{"architecture", "config", "state_dict", **extra}`` made only of
plain Python types and tensors, so it loads with ``torch.load(weights_only=True)`` (no
arbitrary code runs on load). ``extra`` holds whatever the caller adds: optimizer state
dicts, the step, RNG states as tensors, metric logs.

A checkpoint from someone else is untrusted input. :func:`load_checkpoint` checks its config
against the kit's bounds and against its weights' shapes before building anything, and a
codec's entropy-coder tables before the (unchecked, C++) rANS coder can read them.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
import torch.nn as nn
from compressai.entropy_models import EntropyModel, GaussianConditional

from proxiqa_lab.device import default_device
from proxiqa_lab.errors import CheckpointError
from proxiqa_lab.fileio import atomic_open
from proxiqa_lab.models.compact import CompactError, is_compact, read_compact
from proxiqa_lab.models.registry import MODELS, architecture_of, build_model, check_config

__all__ = ["save_checkpoint", "check_entropy_tables", "load_checkpoint", "load_error_reason", "non_finite_entries",
           "read_checkpoint", "RESERVED_KEYS"]

#: Keys a checkpoint always has; ``extra`` may not reuse them.
RESERVED_KEYS = ("architecture", "config", "state_dict")

_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.device, torch.Size)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra) -> Path:
    """Write ``model`` (and ``extra``) to ``path`` atomically.

    The file is written to a temporary file in the same folder, flushed to disk and then
    renamed over ``path``, so a crash or an error never leaves a partial checkpoint.

    Args:
        path: destination file (parent folders are created).
        model: a registered model (see :data:`~proxiqa_lab.models.MODELS`).
        **extra: more entries, made of dicts, lists, tuples, strings, numbers, booleans,
            None and tensors (e.g. ``optimizer=opt.state_dict(), step=1000``).

    Returns:
        The path written.
    """
    path = Path(path)
    clash = sorted(set(extra) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"extra entries may not be named {clash}: those keys are reserved for the model")
    for key, value in extra.items():
        _check_plain(value, key)
    checkpoint = {
        "architecture": architecture_of(model),
        "config": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_open(path, "wb") as f:
        torch.save(checkpoint, f)
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model stored in ``path``.

    Works for CompressAI models saved before and after ``update()`` (the entropy models'
    CDF buffers are resized to the stored ones).

    Args:
        path: a file written by :func:`save_checkpoint`.
        device: where to put the model; ``None`` means :func:`~proxiqa_lab.device.default_device`.

    Returns:
        ``(model, extra)``: the model in eval mode, and the checkpoint's other entries
        (tensors on the CPU).

    Raises:
        CheckpointError: when the file is missing, corrupt, or not a checkpoint of a known model.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint, dict) or any(k not in checkpoint for k in RESERVED_KEYS):
        raise CheckpointError(
            f"{str(path)!r} is not a ProxIQA Lab checkpoint: expected a dict with keys {list(RESERVED_KEYS)}, got "
            f"{sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__}"
        )
    architecture, config, state_dict = (checkpoint[k] for k in RESERVED_KEYS)
    if architecture not in MODELS:
        raise CheckpointError(f"{str(path)!r} holds an unknown architecture {architecture!r}; known: {sorted(MODELS)}")
    if not isinstance(config, dict) or not isinstance(state_dict, dict):
        raise CheckpointError(f"{str(path)!r} has a malformed config or state_dict")
    try:
        check_config(architecture, config, state_dict)
    except ValueError as err:
        raise CheckpointError(f"{str(path)!r} cannot be loaded: {err}") from None
    bad = non_finite_entries(state_dict)
    if bad:
        raise CheckpointError(f"{str(path)!r} holds NaN or Inf weights ({', '.join(bad[:3])}"
                              f"{f' and {len(bad) - 3} more' if len(bad) > 3 else ''}): the run that wrote it "
                              f"diverged, or the file was altered; use an earlier checkpoint")
    try:
        model = build_model(architecture, **config)
        model.load_state_dict(state_dict)
        check_entropy_tables(model)
    except (ValueError, RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{str(path)!r} does not match its architecture {architecture!r}: {err}") from None
    model = model.to(default_device(device)).eval()
    extra = {k: v for k, v in checkpoint.items() if k not in RESERVED_KEYS}
    return model, extra


def read_checkpoint(path: str | os.PathLike):
    """What a checkpoint file holds, as ``torch.load(weights_only=True)`` gives it; a compact
    checkpoint (:mod:`proxiqa_lab.models.compact`, float16, xz) comes back with float32 weights.

    Raises:
        CheckpointError: when the file is missing or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist (or is not a file)")
    try:
        if is_compact(path):
            return read_compact(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except CompactError as err:
        raise CheckpointError(f"{str(path)!r} is not a readable checkpoint: {err}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            AttributeError, TypeError) as err:
        raise CheckpointError(f"{str(path)!r} is not a readable checkpoint: {load_error_reason(err)}") from None


def check_entropy_tables(model: nn.Module) -> None:
    """Refuse entropy-coder tables that CompressAI's rANS coder cannot use safely.

    The coder indexes its tables without bounds checks, so every CDF must be what
    :meth:`~compressai.entropy_models.EntropyModel.update` writes: a length from 2 to the table's
    width, a row rising strictly from 0 to ``2**precision``, and finite positive scales.
    Tables not built yet (size 0) are left for ``update()`` to build.

    Raises:
        ValueError: naming the entropy model whose tables are wrong.
    """
    for name, module in model.named_modules():
        if not isinstance(module, EntropyModel) or module._quantized_cdf.numel() == 0:
            continue
        cdf, lengths, offsets = module._quantized_cdf, module._cdf_length, module._offset
        top = 1 << module.entropy_coder_precision
        ok = (cdf.dim() == 2 and lengths.shape == offsets.shape == cdf.shape[:1]
              and bool(((lengths >= 2) & (lengths <= cdf.shape[1])).all()))
        if ok:
            inside = torch.arange(cdf.shape[1]) < lengths[:, None].long()
            rising = (cdf[:, 1:] > cdf[:, :-1]) | ~inside[:, 1:]
            ends = cdf.gather(1, (lengths[:, None].long() - 1).clamp(min=0)).squeeze(1)
            ok = bool((cdf[:, 0] == 0).all() and (ends == top).all() and rising.all()
                      and (offsets.abs() <= 1 << 20).all())
        if ok and isinstance(module, GaussianConditional):
            scales = module.scale_table
            ok = scales.numel() == cdf.shape[0] and bool((torch.isfinite(scales) & (scales > 0)).all())
        if not ok:
            raise ValueError(f"the entropy-coder tables of {name!r} are not valid CDF tables (altered or damaged)")


def non_finite_entries(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` that hold NaN or Inf."""
    return [k for k, v in state_dict.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]


def load_error_reason(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in the kit's words.

    torch's own message ends with advice to retry with ``weights_only=False``, which runs any
    code the file carries; the kit never gives that advice.
    """
    text = str(err)
    if "Unsupported global" in text or "Unsupported class" in text:
        return ("it holds Python objects other than tensors and plain data, which the kit does not load "
                "(loading them could run code from the file); only files written by the kit load")
    if (isinstance(err, (pickle.UnpicklingError, EOFError, KeyError)) or "weights_only" in text
            or "zip archive" in text or "PytorchStreamReader" in text):
        return ("it is not a PyTorch checkpoint, or it is truncated or damaged (an interrupted copy or download?); "
                "only files written by the kit load")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(err).__name__}: {first[:200]}" if first else type(err).__name__


def _check_plain(value, where: str) -> None:
    """Refuse values that ``torch.load(weights_only=True)`` could not read back."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                raise ValueError(f"checkpoint entry {where} has a key of type {type(k).__name__}; use str or int")
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise ValueError(
            f"checkpoint entry {where} is a {type(value).__name__}; checkpoints hold only dicts, lists, tuples, "
            f"str, int, float, bool, None and tensors (convert numpy arrays with torch.from_numpy)"
        )
