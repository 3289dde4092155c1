"""Models: the ProxIQA network, the BLS and BMSHJ codecs, a registry, and checkpoints (full, or compact:
float16 and xz-compressed, :mod:`~proxiqa_lab.models.compact`)."""

from proxiqa_lab.models.bls import BLS
from proxiqa_lab.models.bmshj import BMSHJ
from proxiqa_lab.models.checkpoint import load_checkpoint, save_checkpoint
from proxiqa_lab.models.proxiqa import ProxIQANet
from proxiqa_lab.models.registry import MODELS, architecture_of, build_model

__all__ = [
    "BLS",
    "BMSHJ",
    "MODELS",
    "ProxIQANet",
    "architecture_of",
    "build_model",
    "load_checkpoint",
    "save_checkpoint",
]
