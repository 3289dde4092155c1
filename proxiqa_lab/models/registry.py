"""Models by name, as CompressAI registers its zoo."""

from __future__ import annotations

import inspect

import torch.nn as nn

from proxiqa_lab.models.bls import BLS
from proxiqa_lab.models.bmshj import BMSHJ
from proxiqa_lab.models.proxiqa import ProxIQANet

__all__ = ["CONFIG_LIMITS", "MODELS", "architecture_of", "build_model", "check_config", "config_keys"]

#: Architecture name -> model class. Each class takes its config as keyword arguments
#: and exposes it again as ``model.config``.
MODELS: dict[str, type[nn.Module]] = {"bls": BLS, "bmshj": BMSHJ, "proxiqa": ProxIQANet}

#: The largest value of each config key that the kit builds. The paper's widest codec has N = 192,
#: M = 320; the bound keeps a config from someone else (a checkpoint, an archive) from allocating
#: gigabytes before anything is checked.
CONFIG_LIMITS = {"N": 512, "M": 512, "patch_size": 1024}


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
    check_config(name, config)
    return _model_class(name)(**config)


def check_config(name: str, config: dict, state_dict: dict | None = None) -> None:
    """Refuse a config before anything is built: unknown keys, values that are not integers within
    :data:`CONFIG_LIMITS`, and (given ``state_dict``) sizes that its weights contradict.

    The weights' shapes say what config they were trained with (each model class's
    ``config_from_state``), so a small file that declares a huge model is refused without
    allocating it.

    Raises:
        ValueError: saying which key is wrong and why.
    """
    cls = _model_class(name)
    if not isinstance(config, dict):
        raise ValueError(f"a config is a dict of constructor arguments, got {type(config).__name__}")
    allowed = config_keys(name)
    unknown = sorted(set(config) - set(allowed), key=str)
    if unknown:
        raise ValueError(f"model {name!r} does not take {', '.join(map(repr, unknown))}; its config keys are {allowed}")
    for key, value in config.items():
        limit = CONFIG_LIMITS.get(key)
        if limit is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit):
            shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
            raise ValueError(f"{name!r} config {key}={shown} is out of range: the kit builds {key} from 1 to {limit}")
    if state_dict is None:
        return
    try:
        implied = cls.config_from_state(state_dict)
    except (KeyError, AttributeError, IndexError, TypeError, ValueError) as err:
        raise ValueError(f"its weights are not those of a {name!r} model ({type(err).__name__}: {err})") from None
    defaults = inspect.signature(cls.__init__).parameters
    declared = {k: config.get(k, defaults[k].default) for k in implied}
    if declared != implied:
        raise ValueError(f"its config says {declared} but its weights are those of {implied}")


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
