"""Picking the compute device: CUDA where it exists, else the CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def default_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``"auto"``/``None`` to CUDA when available, else CPU.

    Raises:
        ValueError: for an unknown name, or ``"cuda"`` on a machine without CUDA.
    """
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or device.split(":")[0] not in DEVICE_CHOICES[1:]:
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but this machine has no CUDA device; use 'auto' or 'cpu'")
    return torch.device(device)
