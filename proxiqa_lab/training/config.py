"""Training configuration: the :class:`TrainConfig` dataclass and the ``smoke``/``lab``/``paper`` profiles.

Conventions (shared with :mod:`proxiqa_lab.losses`):

* images are in [0, 1]; the pixel loss of eq. (7) is the MSE on the 0..255 scale, so
  ``lmbda`` is CompressAI's λ (loss = λ·255²·MSE + bpp, eq. 8). CompressAI's eight λ for MSE
  (0.0018 … 0.18) span about 0.1–1.6 bpp for a fully trained BLS on Kodak.
* ``alpha`` weighs the proxy loss against the pixel loss (eq. 10). The released code of the
  paper (github.com/treammm/Compression, ``examples/bls2017_vmafp_th_re.py``) trains with
  ``lmbda * (r * (100 - M̂) + (2 - r) * MSE255) + bpp`` and ``r = 1``: equal weights on the
  proxy and pixel terms, i.e. ``alpha = 0.5`` in the notation of eq. (10) (with λ doubled).
  The default here is therefore ``alpha = 0.5``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from proxiqa_lab.paths import PROFILES as PROFILE_NAMES
from proxiqa_lab.paths import RUNS_PROFILE

#: CompressAI's λ for MSE-optimised models (``bmshj2018-factorized`` q1..q8): the paper's 8 rate points.
PAPER_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
#: Four of them for the laptop study: 0.2-0.9 bpp for its N=64 models on Kodak. The fifth it once had,
#: 0.18, landed within 0.05 bpp and 0.2 dB of 0.0932 (reports/lab_signal/), a point that adds nothing.
LAB_LAMBDAS = (0.0018, 0.0067, 0.0250, 0.0932)

ARCHITECTURES = ("bls", "bmshj")
#: Keys that may differ between a stored run and a resumed one.
RESUMABLE_KEYS = ("steps", "progress", "device", "keep_checkpoints_at", "overlap_metric", "diagnose_every")


@dataclass
class TrainConfig:
    """Everything a training run depends on. Field names follow the paper (eqs. 6–14).

    Attributes:
        profile: the profile the values came from (``smoke``, ``lab``, ``paper``), kept as metadata.
        architecture: ``"bls"`` (Ballé et al. 2017, the paper's codec) or ``"bmshj"`` (scale hyperprior).
        N: channels of every layer (the paper used 192). M: latent channels of ``bmshj``.
        objective: ``mse`` (eq. 8), ``ssim`` (eq. 14 + rate), ``ssim+ld`` (eq. 13), ``ms-ssim``,
            ``proxy:<metric>`` (eqs. 10–11, the paper's method) or ``pretrained-proxy:<metric>``
            (Sec. III-C: a proxy pretrained once, then frozen).
        lmbda: λ of eqs. (8), (10), (13), on CompressAI's scale (λ·255²·MSE).
        alpha: α of eqs. (10) and (13), weight of the proxy (or SSIM) term against the pixel loss.
        m_bar: M̄ of eq. (9); ``None`` takes the metric's upper bound from ``proxiqa_lab.metrics.METRICS``.
        metric_scale: factor ``s`` that brings the metric term to the units of the 255²-scaled MSE
            (``None``: 1 for 0..100 metrics, 2040 for metrics bounded by 1; see
            :mod:`proxiqa_lab.training.objectives`).
        lr: Adam learning rate of the codec; ``lr_drop_step``/``lr_drop_factor`` lower it once.
        proxy_lr: Adam learning rate of the ProxIQA network (1e-3 in the released code).
        aux_lr: Adam learning rate of the entropy bottleneck's quantiles (CompressAI's aux loss).
        steps: total training steps. batch_size / patch_size / crop_size: the patch pipeline of Sec. III-D.
        seed: seeds weights, noise and data (each DDP rank offsets the data seed by its rank).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:N]"``.
        init_checkpoint: codec weights to start from ("fine-tune from MSE": a ``model.pt`` or a run
            folder). The paper trained every model from scratch; starting from the MSE model of the
            same λ is a shortcut for short schedules and is recorded in the run metadata.
        keep_checkpoints_at: steps whose checkpoints are kept as ``checkpoints/step_<K>.pt`` (Fig. 11).
        checkpoint_every: steps between writes of ``checkpoints/last.pt``.
        log_every: steps between rows of ``log.csv``.
        grad_clip: max gradient norm of the codec step (``None``: no clipping).
        data: ``"auto"`` (the training sources if present, else scikit-image sample photos),
            ``"training"`` (bsds500 train+val and unsplash_x4), ``"samples"``, or comma-separated
            dataset names, each optionally with a split (``"bsds500:train,unsplash_x4"``).
        data_root: where datasets live (``None``: ``$PROXIQA_LAB_DATA`` or ``./data``).
        overlap_metric: compute the true metric of batch t in a worker thread while the codec steps
            on batch t+1; the proxy step for batch t then runs one step late. ``None``: on for CUDA,
            off for CPU (where the metric instead runs during the codec's backward pass of the same
            step, with no lag; see :mod:`proxiqa_lab.training.trainer`).
        proxy_init: a proxy checkpoint to start from: for ``pretrained-proxy:*`` the frozen proxy
            (``None``: pretrain one on synthetic distortions at the start of the run); for
            ``proxy:*`` the starting weights of the alternating proxy (``None``: random).
        proxy_abs: eq. (9) as ``|M̄ - M̂|``, the released code's form, instead of ``M̄ - M̂``.
        proxy_steps: proxy updates (eq. 11) per codec step, on the same batch.
        proxy_probes: perturbed copies of the reconstructions added to the proxy's batch, labelled
            by the true metric (``proxiqa_lab.training.proxy_batch.PROBE_KINDS``: ``grad``,
            ``sharpen``, ``blur``, ``noise``, cycled over the patches).
        proxy_pristine: probability per step of adding the pristine pair (x, x) to the proxy's
            batch (the released code: about 0.5).
        proxy_warmup: proxy-only steps on the starting codec's reconstructions before the
            alternation begins (a fine-tune otherwise starts against an untrained proxy).
        proxy_slope_weight: weight of the slope term (``losses.slope_loss``) added to eq. (11):
            each probe's change of proxy score must match its change of true score. Needs
            ``proxy_probes``.
        diagnose_every: every this many steps (on logged steps), log the cosine between the proxy's
            gradient and the metric's exact gradient (``grad_cos_proxy``), the same for the MSE
            gradient (``grad_cos_mse``) and their norm ratio; 0 turns it off. Needs a metric with a
            differentiable counterpart (``metrics.differentiable.EXACT``).
        deterministic: ask torch for deterministic algorithms on the CPU (exact resume); CUDA runs
            are seeded but not forced to deterministic cuDNN kernels.
        progress: show a tqdm progress bar.
    """

    profile: str = "lab"
    architecture: str = "bls"
    N: int = 64
    M: int | None = None
    objective: str = "mse"
    lmbda: float = 0.0130
    alpha: float = 0.5
    m_bar: float | None = None
    metric_scale: float | None = None
    lr: float = 1e-3
    lr_drop_step: int | None = None
    lr_drop_factor: float = 0.1
    proxy_lr: float = 1e-3
    aux_lr: float = 1e-3
    steps: int = 3000
    batch_size: int = 8
    patch_size: int = 128
    crop_size: int = 256
    seed: int = 0
    device: str = "auto"
    init_checkpoint: str | None = None
    keep_checkpoints_at: list[int] = field(default_factory=list)
    checkpoint_every: int = 250
    log_every: int = 10
    grad_clip: float | None = 1.0
    data: str = "auto"
    data_root: str | None = None
    overlap_metric: bool | None = None
    proxy_init: str | None = None
    proxy_abs: bool = False
    proxy_steps: int = 1
    proxy_probes: list[str] = field(default_factory=list)
    proxy_pristine: float = 0.0
    proxy_warmup: int = 0
    proxy_slope_weight: float = 0.0
    diagnose_every: int = 0
    deterministic: bool = True
    progress: bool = True

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with some fields changed (unknown names raise ``ValueError``)."""
        check_keys(overrides)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        check_keys(values)
        return cls(**values)

    def validate(self) -> TrainConfig:
        """Check every value; raise ``ValueError`` naming the field, the value and what is allowed."""
        from proxiqa_lab.training.objectives import parse_objective

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        import numbers

        integers = ("N", "M", "steps", "batch_size", "patch_size", "crop_size", "seed", "checkpoint_every",
                    "log_every", "lr_drop_step", "proxy_steps", "proxy_warmup", "diagnose_every")
        for name in ("lmbda", "alpha", "lr", "proxy_lr", "aux_lr", "lr_drop_factor", "m_bar", "metric_scale",
                     "grad_clip", "proxy_pristine", "proxy_slope_weight", *integers):
            value = getattr(self, name)
            optional = name in ("m_bar", "metric_scale", "grad_clip", "M", "lr_drop_step")
            kind = numbers.Integral if name in integers else numbers.Real
            if value is None and optional:
                continue
            if isinstance(value, kind) and not isinstance(value, bool):
                need(math.isfinite(value), f"{name} must be a finite number, got {value!r}")
                continue
            raise ValueError(f"{name} must be {'an integer' if kind is numbers.Integral else 'a number'}"
                             f"{' or None' if optional else ''}, got {value!r}")
        need(self.profile in PROFILE_NAMES, f"profile must be one of {PROFILE_NAMES}, got {self.profile!r}")
        need(self.architecture in ARCHITECTURES,
             f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        need(isinstance(self.N, int) and self.N > 0, f"N must be a positive integer, got {self.N!r}")
        need(self.M is None or (isinstance(self.M, int) and self.M > 0), f"M must be a positive integer, got {self.M!r}")
        need(self.lmbda > 0, f"lmbda must be > 0, got {self.lmbda}; CompressAI's MSE values are {PAPER_LAMBDAS}")
        need(0 <= self.alpha <= 1, f"alpha must be in [0, 1], got {self.alpha}")
        need(self.m_bar is None or self.m_bar > 0, f"m_bar must be > 0 (or None for the metric's bound), got {self.m_bar}")
        need(self.metric_scale is None or self.metric_scale > 0, f"metric_scale must be > 0 or None, got {self.metric_scale}")
        for name in ("lr", "proxy_lr", "aux_lr"):
            value = getattr(self, name)
            need(value > 0, f"{name} must be > 0, got {value}")
        need(0 < self.lr_drop_factor <= 1, f"lr_drop_factor must be in (0, 1], got {self.lr_drop_factor}")
        need(self.lr_drop_step is None or self.lr_drop_step >= 0,
             f"lr_drop_step must be >= 0 or None, got {self.lr_drop_step}")
        need(isinstance(self.steps, int) and self.steps >= 1, f"steps must be an integer >= 1, got {self.steps!r}")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size!r}")
        need(isinstance(self.patch_size, int) and self.patch_size >= 16 and self.patch_size % 16 == 0,
             f"patch_size must be a multiple of 16 (the codec downsamples by 16 and the proxy by 8), "
             f"got {self.patch_size!r}")
        need(self.architecture != "bmshj" or self.patch_size % 64 == 0,
             f"patch_size must be a multiple of 64 for bmshj (its hyperprior downsamples by 64), got {self.patch_size}")
        need(isinstance(self.crop_size, int) and self.crop_size >= self.patch_size,
             f"crop_size must be >= patch_size ({self.patch_size}), got {self.crop_size!r}")
        need(self.checkpoint_every >= 1, f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        need(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        need(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0 or None, got {self.grad_clip}")
        need(all(isinstance(k, int) and k >= 1 for k in self.keep_checkpoints_at),
             f"keep_checkpoints_at must be a list of steps >= 1, got {self.keep_checkpoints_at!r}")
        need(isinstance(self.data, str) and self.data.strip() != "",
             f"data must be 'auto', 'training', 'samples' or dataset names, got {self.data!r}")
        if self.device not in ("auto", "cpu") and not str(self.device).startswith("cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        need(self.proxy_steps >= 1, f"proxy_steps must be >= 1, got {self.proxy_steps}")
        need(self.proxy_warmup >= 0, f"proxy_warmup must be >= 0, got {self.proxy_warmup}")
        need(self.diagnose_every >= 0, f"diagnose_every must be >= 0 (0: off), got {self.diagnose_every}")
        need(0 <= self.proxy_pristine <= 1, f"proxy_pristine must be a probability in [0, 1], got {self.proxy_pristine}")
        need(isinstance(self.proxy_abs, bool), f"proxy_abs must be true or false, got {self.proxy_abs!r}")
        need(self.proxy_slope_weight >= 0, f"proxy_slope_weight must be >= 0, got {self.proxy_slope_weight}")
        need(not self.proxy_slope_weight or bool(self.proxy_probes),
             "proxy_slope_weight compares probes with their reconstructions: set proxy_probes too")
        from proxiqa_lab.training.proxy_batch import check_probes

        check_probes(self.proxy_probes)
        objective = parse_objective(self.objective, m_bar=self.m_bar, need_callable=False)
        tunes_proxy = {"proxy_steps": self.proxy_steps != 1, "proxy_probes": bool(self.proxy_probes),
                       "proxy_pristine": self.proxy_pristine > 0, "proxy_warmup": self.proxy_warmup > 0,
                       "proxy_slope_weight": self.proxy_slope_weight > 0}
        set_here = [k for k, v in tunes_proxy.items() if v]
        need(objective.trains_proxy or not set_here,
             f"{', '.join(set_here)} change(s) the proxy step of eq. (11), which only 'proxy:*' objectives take; "
             f"objective is {self.objective!r}")
        need(objective.uses_proxy or not self.proxy_abs,
             f"proxy_abs changes the proxy loss of eq. (9), which objective {self.objective!r} does not have")
        if self.diagnose_every:
            from proxiqa_lab.metrics.differentiable import EXACT

            need(objective.uses_proxy and objective.metric in EXACT,
                 f"diagnose_every compares the proxy's gradient with the exact gradient of its metric, which "
                 f"needs a proxy objective on one of {sorted(EXACT)}; objective is {self.objective!r}")
        return self


def check_keys(values: dict[str, Any]) -> None:
    """Raise ``ValueError`` for keys that are not ``TrainConfig`` fields."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}; allowed: {names}")


#: Named starting points. Any field can be overridden (``make_config("lab", objective="proxy:vmaf")``).
PROFILES: dict[str, TrainConfig] = {
    # Seconds on a laptop CPU: a tiny BLS on 64x64 patches of the scikit-image photos when no
    # dataset is present. For tests and CI, not for results.
    "smoke": TrainConfig(
        profile="smoke", N=8, lr=1e-3, steps=12, batch_size=4, patch_size=64, crop_size=128,
        checkpoint_every=6, log_every=1, grad_clip=1.0, lmbda=0.0130,
    ),
    # A 2-core laptop: BLS N=64 on 8x128² patches, lr 2e-3 with gradient clipping and a drop (x0.1)
    # at 80 % of the steps (calibrated by benchmarks/lab_signal.py). The lab study
    # (proxiqa_lab.studies.settings: LAB_LAMBDAS x {mse, proxy:vmaf, proxy:ssim, proxy:ms_ssim}
    # plus one pretrained-proxy run) trains the MSE models this way and fine-tunes the other
    # objectives from the MSE model of the same λ for LAB_FINETUNE_STEPS steps.
    "lab": TrainConfig(
        profile="lab", N=64, lr=2e-3, lr_drop_step=5600, lr_drop_factor=0.1, steps=7000,
        batch_size=8, patch_size=128, crop_size=256, checkpoint_every=250, log_every=10, grad_clip=1.0,
        keep_checkpoints_at=[1000, 2000, 3000, 4000, 5000, 5600, 7000],
    ),
    # Sec. III-D: N=192, Adam 1e-4 for 2M steps then 1e-5 for 100k, aux 1e-3, proxy 1e-3, batch 8 x 128².
    "paper": TrainConfig(
        profile="paper", N=192, lr=1e-4, lr_drop_step=2_000_000, lr_drop_factor=0.1, steps=2_100_000,
        batch_size=8, patch_size=128, crop_size=256, checkpoint_every=5000, log_every=100, grad_clip=None,
        data="training", keep_checkpoints_at=[1_000_000, 2_000_000],
    ),
}

#: Steps of a proxy (or SSIM) run fine-tuned from the MSE model of the same λ in the lab profile.
LAB_FINETUNE_STEPS = 1500
#: A fine-tuning run drops its learning rate (x ``lr_drop_factor``) at this fraction of its steps.
FINETUNE_LR_DROP_AT = 0.8
#: A fine-tuning run keeps a checkpoint at these fractions of its steps (for the training-steps study).
FINETUNE_KEEP_AT = (0.2, 0.4, 0.6, 0.8, 1.0)


def finetune_schedule(steps: int) -> tuple[list[int], int]:
    """The kept steps and the learning-rate drop step of a fine-tune of ``steps`` steps.

    >>> finetune_schedule(1500)
    ([300, 600, 900, 1200, 1500], 1200)
    """
    if int(steps) < 1:
        raise ValueError(f"a fine-tune needs at least 1 step, got {steps}")
    kept = sorted({max(1, round(f * steps)) for f in FINETUNE_KEEP_AT})
    return kept, int(FINETUNE_LR_DROP_AT * steps)


def make_config(profile: str | TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """The profile's config with ``overrides`` applied, validated.

    Args:
        profile: a name in :data:`PROFILES` (default ``"lab"``) or a ``TrainConfig``; ``"course"``
            trains as ``"lab"`` (:data:`proxiqa_lab.paths.RUNS_PROFILE`).
        **overrides: any ``TrainConfig`` field.

    Returns:
        A validated ``TrainConfig``.
    """
    if isinstance(profile, TrainConfig):
        base = profile
    else:
        name = "lab" if profile is None else RUNS_PROFILE.get(profile, profile)
        if name not in PROFILES:
            raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {name!r}")
        base = PROFILES[name]
    config = base.replace(**overrides)
    config.keep_checkpoints_at = sorted(int(k) for k in config.keep_checkpoints_at)
    return config.validate()


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (CLI ``--set``) into typed overrides using the field types.

    Values are read as JSON where possible (``3``, ``1e-3``, ``null``, ``[100, 200]``, ``true``),
    else kept as strings.
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        check_keys({key: None})
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key == "keep_checkpoints_at" and isinstance(value, (int, str)):
            value = [int(v) for v in str(value).split(",") if v.strip()]
        out[key] = value
    return out


def config_diff(stored: dict[str, Any], new: dict[str, Any], ignore=RESUMABLE_KEYS) -> list[str]:
    """Keys whose values differ between two config dicts (ignoring those that may change on resume).

    A key missing from one side counts as the field's default: a run stored before a field
    existed resumes under a version that has it.
    """
    defaults = TrainConfig().to_dict()
    keys = sorted((set(stored) | set(new)) - set(ignore))
    return [k for k in keys if _norm(stored.get(k, defaults.get(k))) != _norm(new.get(k, defaults.get(k)))]


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value))
