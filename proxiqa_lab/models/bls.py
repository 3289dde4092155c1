"""BLS: the factorized-prior codec of Ballé, Laparra and Simoncelli (2017), the paper's [35]."""

from __future__ import annotations

import math

import torch.nn as nn
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from compressai.models import CompressionModel
from compressai.models.utils import conv, deconv
from torch import Tensor

__all__ = ["BLS"]


class BLS(CompressionModel):
    r"""End-to-end optimized image compression, J. Ballé, V. Laparra, E. P. Simoncelli,
    `"End-to-end Optimized Image Compression" <https://arxiv.org/abs/1611.01704>`_, ICLR 2017.

    The model the paper builds on (Sec. III-A.2, its "BLS" baseline)::

        x -> g_a -> y -> Q -> y_hat -> g_s -> x_hat        (y_hat coded with a factorized
                                                           entropy bottleneck)

    ``g_a``: 9x9/s4, 5x5/s2, 5x5/s2 convolutions with GDN between them;
    ``g_s``: the mirror, 5x5/s2, 5x5/s2, 9x9/s4 transposed convolutions with inverse GDN.
    The total downsampling is 16, so inputs to :meth:`compress` must have sides that are
    multiples of 16 (:mod:`proxiqa_lab.codec` pads and crops).

    Args:
        N: number of filters in every layer, including the latent (the paper uses 192).
    """

    architecture = "bls"

    def __init__(self, N: int = 192):
        super().__init__()
        if isinstance(N, bool) or not isinstance(N, int) or N < 1:
            raise ValueError(f"N (number of filters) must be a positive integer, got {N!r}")
        self.N = N
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.g_a = nn.Sequential(
            conv(3, N, kernel_size=9, stride=4),
            GDN(N),
            conv(N, N, kernel_size=5, stride=2),
            GDN(N),
            conv(N, N, kernel_size=5, stride=2),
        )
        self.g_s = nn.Sequential(
            deconv(N, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            deconv(N, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            deconv(N, 3, kernel_size=9, stride=4),
        )

    @property
    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the model."""
        return {"N": self.N}

    @classmethod
    def config_from_state(cls, state_dict: dict) -> dict:
        """The config that a state dict's shapes imply (checked before a checkpoint is built)."""
        return {"N": int(state_dict["g_a.0.weight"].shape[0])}

    @property
    def downsampling_factor(self) -> int:
        """Product of the analysis strides (16): input sides must be multiples of it."""
        return math.prod(m.stride[0] for m in self.g_a if isinstance(m, nn.Conv2d))

    def forward(self, x: Tensor) -> dict:
        y = self.g_a(x)
        y_hat, y_likelihoods = self.entropy_bottleneck(y)
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods}}

    def compress(self, x: Tensor) -> dict:
        y = self.g_a(x)
        y_strings = self.entropy_bottleneck.compress(y)
        return {"strings": [y_strings], "shape": y.size()[-2:]}

    def decompress(self, strings: list, shape) -> dict:
        if not isinstance(strings, list) or len(strings) != 1:
            raise ValueError(f"BLS decodes one list of strings (for y), got {type(strings).__name__} of length "
                             f"{len(strings) if hasattr(strings, '__len__') else '?'}")
        y_hat = self.entropy_bottleneck.decompress(strings[0], shape)
        x_hat = self.g_s(y_hat).clamp_(0, 1)
        return {"x_hat": x_hat}
