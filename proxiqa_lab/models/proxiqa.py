"""The ProxIQA network (Fig. 4 of the paper): a small CNN proxy of a quality metric."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ["ProxIQANet"]


class ProxIQANet(nn.Module):
    r"""ProxIQA network :math:`\hat M = f_p(x, \hat x)` of eq. (4), Fig. 4.

    The reference and distorted patches are concatenated into a 6-channel signal and passed
    through three stages of 5x5 convolution (stride 1, same padding; 16, 32, 64 filters),
    ReLU and 2x2 max pooling. The resulting ``64 x P/8 x P/8`` feature maps are flattened
    and fed to one fully connected layer that outputs the score.

    Because the fully connected layer sees every spatial position, the network is built
    for one patch size, ``patch_size`` (the paper trains on 128x128 patches). It is stored
    in :attr:`config`, so checkpoints rebuild the same network; feeding another size is an
    error rather than a silent resize.

    Args:
        patch_size: side of the square input patches, a positive multiple of 8.
    """

    architecture = "proxiqa"

    def __init__(self, patch_size: int = 128):
        super().__init__()
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 8 or patch_size % 8:
            raise ValueError(f"patch_size must be a positive multiple of 8 (three 2x2 poolings), got {patch_size!r}")
        self.patch_size = patch_size
        stages = []
        for c_in, c_out in ((6, 16), (16, 32), (32, 64)):
            conv = nn.Conv2d(c_in, c_out, kernel_size=5, stride=1, padding=2)
            stages += [conv, nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*stages)
        self.fc = nn.Linear(64 * (patch_size // 8) ** 2, 1)

    @property
    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the network."""
        return {"patch_size": self.patch_size}

    @classmethod
    def config_from_state(cls, state_dict: dict) -> dict:
        """The config that a state dict's shapes imply: the FC layer sees 64 maps of (P/8)^2 positions."""
        inputs = int(state_dict["fc.weight"].shape[1])
        side = math.isqrt(inputs // 64)
        if 64 * side * side != inputs:
            raise ValueError(f"fc.weight takes {inputs} inputs, not 64 feature maps of a square patch")
        return {"patch_size": 8 * side}

    def forward(self, x: Tensor, x_hat: Tensor) -> Tensor:
        """Predict the quality score of each pair.

        Args:
            x: reference patches, (N, 3, P, P).
            x_hat: distorted patches, same shape as ``x``.

        Returns:
            (N,) tensor of predicted scores :math:`\\hat M`.
        """
        self._check_inputs(x, x_hat)
        features = self.features(torch.cat([x, x_hat], dim=1))
        return self.fc(features.flatten(1)).squeeze(1)

    def _check_inputs(self, x: Tensor, x_hat: Tensor) -> None:
        for name, t in (("x", x), ("x_hat", x_hat)):
            if not isinstance(t, Tensor) or t.dim() != 4 or t.shape[1] != 3:
                shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"{name} must be an RGB batch of shape (N, 3, H, W), got {shape}")
        if x.shape != x_hat.shape:
            raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
        h, w = x.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(f"patch height and width must be multiples of 8 (three 2x2 poolings), got {h}x{w}")
        if (h, w) != (self.patch_size, self.patch_size):
            raise ValueError(
                f"this ProxIQANet was built for {self.patch_size}x{self.patch_size} patches, got {h}x{w}; "
                f"crop the patches or build the network with ProxIQANet(patch_size=...)"
            )
