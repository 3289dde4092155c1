"""Training: one trainer for every objective (eqs. 8, 10–11, 13–14), profiles, checkpoints, DDP.

>>> from proxiqa_lab.training import train
>>> run = train("smoke", objective="proxy:vmaf", out="runs/demo")   # doctest: +SKIP
>>> run.log[["step", "bpp", "metric_true", "metric_proxy"]].tail()  # doctest: +SKIP

Proxy pretraining on synthetic distortions (Sec. III-C) lives in
:mod:`proxiqa_lab.training.pretrain`, the distortion database it trains on in
:mod:`proxiqa_lab.training.distortions`.
"""

from proxiqa_lab.training.config import (
    FINETUNE_KEEP_AT,
    FINETUNE_LR_DROP_AT,
    LAB_FINETUNE_STEPS,
    LAB_LAMBDAS,
    PAPER_LAMBDAS,
    PROFILES,
    TrainConfig,
    finetune_schedule,
    make_config,
)
from proxiqa_lab.training.objectives import Objective, allowed_objectives, parse_objective
from proxiqa_lab.training.trainer import LOG_COLUMNS, Run, Trainer, learning_rate, load_run, train

__all__ = [
    "FINETUNE_KEEP_AT",
    "FINETUNE_LR_DROP_AT",
    "LAB_FINETUNE_STEPS",
    "LAB_LAMBDAS",
    "LOG_COLUMNS",
    "PAPER_LAMBDAS",
    "PROFILES",
    "Objective",
    "Run",
    "TrainConfig",
    "Trainer",
    "allowed_objectives",
    "finetune_schedule",
    "learning_rate",
    "load_run",
    "make_config",
    "parse_objective",
    "train",
]
