"""BMSHJ: the scale-hyperprior codec of Ballé et al. (2018), the paper's [36]."""

from __future__ import annotations

from compressai.models import ScaleHyperprior

__all__ = ["BMSHJ"]


class BMSHJ(ScaleHyperprior):
    r"""Scale hyperprior, J. Ballé, D. Minnen, S. Singh, S. J. Hwang, N. Johnston,
    `"Variational Image Compression with a Scale Hyperprior" <https://arxiv.org/abs/1802.01436>`_,
    ICLR 2018: CompressAI's :class:`~compressai.models.ScaleHyperprior`, registered here with
    defaults and a :attr:`config` so checkpoints can rebuild it.

    The total downsampling (analysis plus hyper-analysis) is 64.

    Args:
        N: channels of the transforms and of the hyper-latent z.
        M: channels of the latent y.
    """

    architecture = "bmshj"

    def __init__(self, N: int = 128, M: int = 192):
        for name, value in (("N", N), ("M", M)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        super().__init__(N=N, M=M)

    @property
    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the model."""
        return {"N": self.N, "M": self.M}

    @classmethod
    def config_from_state(cls, state_dict: dict) -> dict:
        """The config that a state dict's shapes imply (checked before a checkpoint is built)."""
        return {"N": int(state_dict["g_a.0.weight"].shape[0]), "M": int(state_dict["g_a.6.weight"].shape[0])}
