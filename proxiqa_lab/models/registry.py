"""Models by name, as CompressAI registers its zoo."""

from __future__ import annotations

import inspect

import torch.nn as nn

from proxiqa_lab.models.bls import BLS
from proxiqa_lab.models.bmshj import BMSHJ
from proxiqa_lab.models.proxiqa import ProxIQANet

__all__ = ["MODELS", "architecture_of", "build_model", "config_keys"]

#: Architecture name -> model class. Each class takes its config as keyword arguments
#: and exposes it again as ``model.config``.
MODELS: dict[str, type[nn.Module]] = {"bls": BLS, "bmshj": BMSHJ, "proxiqa": ProxIQANet}


def config_keys(name: str) -> list[str]:
    """The keyword arguments that ``build_model(name, ...)`` accepts."""
    params = inspect.signature(_model_class(name).__init__).parameters
    return [p for p in params if p != "self" and params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def build_model(name: str, **config) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of :data:`MODELS` ("bls", "bmshj", "proxiqa").
        **config: constructor arguments, e.g. ``N=192`` for "bls".

    Returns:
        The new, untrained model.

    Raises:
        ValueError: for an unknown name or a config key the model does not take.
    """
    cls = _model_class(name)
    allowed = config_keys(name)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"model {name!r} does not take {', '.join(map(repr, unknown))}; its config keys are {allowed}")
    return cls(**config)


def architecture_of(model: nn.Module) -> str:
    """The registry name of ``model``'s class (exact class, not a subclass)."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(
        f"{type(model).__name__} is not a registered model; known models are "
        f"{ {name: cls.__name__ for name, cls in MODELS.items()} }"
    )


def _model_class(name: str) -> type[nn.Module]:
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models are {sorted(MODELS)}")
    return MODELS[name]
