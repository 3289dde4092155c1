"""Study sizes per profile: what each notebook trains and evaluates in ``smoke``, ``lab`` and ``paper``.

A notebook's ``parameters`` cell holds ``PROFILE`` and a few literals; the next cell calls
:func:`settings_for` to turn the profile into every derived size, so one switch scales a
notebook from seconds (``smoke``) to a laptop afternoon (``lab``) to the paper's protocol.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from proxiqa_lab.paths import check_profile
from proxiqa_lab.training.config import LAB_FINETUNE_STEPS, LAB_LAMBDAS, PAPER_LAMBDAS, finetune_schedule
from proxiqa_lab.training.pretrain import RUN_PRETRAINING

#: The paper's eight target rates, log-spaced over 0.05-2 bpp (Sec. IV-A).
PAPER_POINTS = (0.05, 0.085, 0.146, 0.25, 0.43, 0.73, 1.25, 2.0)


class StepsPlan(NamedTuple):
    """What the training-steps study (Fig. 11) trains and evaluates."""

    specs: list  #: the runs, MSE first
    steps: tuple[int, ...]  #: the kept steps evaluated
    lr_drop_step: int | None  #: where the learning rate of the compared runs drops


@dataclass(frozen=True)
class StudySettings:
    """Everything a study's size depends on.

    Attributes:
        profile: ``smoke``, ``lab`` or ``paper``.
        lambdas: λ of the learned models, one rate point each (eq. 8/10).
        objectives: training objectives compared in the RD study, MSE first (the baseline).
        train: overrides of the training profile (``proxiqa_lab.training.make_config``).
        finetune_steps: steps of non-MSE runs started from the MSE model of the same λ
            (``None``: train them from scratch, as the paper did), and of MSE runs started from
            the anchor.
        anchor_lmbda: with ``finetune_steps``, the one λ whose MSE model trains from scratch;
            the MSE models of the other λ are fine-tuned from it for ``finetune_steps``
            (``None``: every MSE model trains from scratch, as the paper did).
        eval_images: images per evaluation dataset, in file order (``None``: all of them): Kodak,
            then Wikipedia24 standing in for the paper's Tecnick and NFLX sets.
        classical_codecs: classical codecs compared with the learned ones.
        classical_points: their target rates in bpp.
        metrics: the true metrics measured (libvmaf / ffmpeg).
        alphas: α values of the α × λ explorer grid (eq. 10).
        explorer_lambdas: λ values of that grid.
        explorer_steps: training steps of each explorer model (``None``: as the other runs, so
            the α = 0.5 models are those of the RD grid; fine-tuned when the study fine-tunes).
        keep_checkpoints_at: steps kept by runs trained from scratch, for the training-steps
            study (Fig. 11).
        lr_drop_step: step where the learning rate of runs trained from scratch drops.
        steps_lambdas: λ of the training-steps study (``None``: ``lambdas``).
        runtime_images: images timed in the runtime study (Table V).
        runtime_repeats: timed repetitions per encode/decode (the median is kept).
        pretrain: options of the proxy pretraining of Sec. III-C.
        crop: side of the crops shown in visual comparisons.
        torch_threads: torch CPU threads (``None``: torch's default).
        fooling_alpha: α of the pretrained-proxy experiment (Sec. III-C, notebook 02): the frozen
            proxy and the alternating one of the same schedule. At 1 (no pixel loss) a fine-tune
            against the frozen lab proxy fools it completely (Kodim01: proxy 99.1, true VMAF 0.0;
            reports/lab_science/fooled_proxy.md).
        explorer_objective: the objective of the α × λ explorer grid (notebook 07).
        steps_kept: the kept steps of the fine-tunes that the training-steps study evaluates
            (``None``: all of them); the lab's are those the zoo ships.
        bmshj_lambdas: λ of the BMSHJ (scale hyperprior) MSE and ``proxy:vmaf`` models of Table II's
            last rows (notebook 04); empty: none.
        bmshj: their ``N`` and ``M``.
        diagnose_every: proxy runs whose metric has an exact gradient (VMAF, VMAF-NEG, SSIM) log
            the proxy-gradient diagnostic every this many steps (``TrainConfig.diagnose_every``);
            it does not change what is trained, nor the run's name. 0: off.
    """

    profile: str
    lambdas: tuple[float, ...]
    objectives: tuple[str, ...]
    train: dict[str, Any]
    finetune_steps: int | None
    eval_images: dict[str, int | None]
    classical_codecs: tuple[str, ...]
    classical_points: tuple[float, ...]
    metrics: tuple[str, ...] = ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")
    alphas: tuple[float, ...] = (0.0, 0.5, 1.0)
    explorer_lambdas: tuple[float, ...] = (0.0067, 0.025, 0.0932)
    explorer_steps: int | None = None
    keep_checkpoints_at: tuple[int, ...] = ()
    lr_drop_step: int | None = None
    runtime_images: int = 2
    runtime_repeats: int = 1
    pretrain: dict[str, Any] = field(default_factory=dict)
    crop: int = 192
    torch_threads: int | None = None
    anchor_lmbda: float | None = None
    steps_lambdas: tuple[float, ...] | None = None
    fooling_alpha: float = 1.0
    diagnose_every: int = 0
    explorer_objective: str = "proxy:vmaf"
    steps_kept: tuple[int, ...] | None = None
    bmshj_lambdas: tuple[float, ...] = ()
    bmshj: dict[str, int] = field(default_factory=dict)

    def replace(self, **overrides: Any) -> StudySettings:
        """A copy with some fields changed; unknown names raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown study setting(s) {unknown}; allowed: {sorted(names)}")
        return dataclasses.replace(self, **overrides)

    @property
    def eval_datasets(self) -> tuple[str, ...]:
        """The evaluation datasets, Kodak first."""
        return tuple(self.eval_images)

    def train_options(self) -> dict[str, Any]:
        """``TrainConfig`` overrides of every grid run: ``train`` plus the kept steps and the lr drop."""
        options = dict(self.train)
        if self.keep_checkpoints_at:
            options["keep_checkpoints_at"] = list(self.keep_checkpoints_at)
        if self.lr_drop_step is not None:
            options["lr_drop_step"] = self.lr_drop_step
        return options

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def specs(self, objectives, lambdas=None) -> list:
        """The runs that train ``objectives`` at ``lambdas`` (default: the study's λ), MSE first.

        When the study fine-tunes (``finetune_steps``), the MSE runs they start from come first,
        anchor included, even if ``"mse"`` is not among ``objectives``.
        """
        from proxiqa_lab.studies.grid import grid_specs, mse_bases

        lambdas = tuple(float(v) for v in (self.lambdas if lambdas is None else lambdas))
        if self.finetune_steps is None:
            return [self.diagnosed(s) for s in grid_specs(objectives, lambdas)]
        others = [o for o in objectives if o != "mse"]
        return mse_bases(lambdas, self.anchor_lmbda) + [self.diagnosed(s) for s in
                                                         grid_specs(others, lambdas, finetune=True)]

    def control_specs(self, lambdas=None) -> list:
        """The equal-steps MSE controls: at each λ, the MSE model fine-tuned for as many steps as the
        objectives' fine-tunes that start from it, so that an objective's gain is told from the extra
        training's. Empty when nothing is fine-tuned (every model then trains equally long)."""
        from proxiqa_lab.studies.grid import RunSpec

        if self.finetune_steps is None:
            return []
        lambdas = tuple(float(v) for v in (self.lambdas if lambdas is None else lambdas))
        return [RunSpec("mse", v, finetune=True) for v in lambdas]

    def bmshj_specs(self, objectives=("mse", "proxy:vmaf"), controls: bool = False) -> list:
        """The BMSHJ runs of Table II (:attr:`bmshj_lambdas`), trained as the BLS grid is, MSE first;
        with ``controls``, their equal-steps MSE controls (:meth:`control_specs`) last."""
        overrides = tuple(sorted({"architecture": "bmshj", **self.bmshj}.items()))
        specs = self.specs(objectives, self.bmshj_lambdas) + (self.control_specs(self.bmshj_lambdas) if controls else [])
        return [dataclasses.replace(s, overrides=tuple(sorted((*s.overrides, *overrides))))
                for s in specs] if self.bmshj_lambdas else []

    def diagnosed(self, spec):
        """``spec`` with ``diagnose_every`` added when its proxy's metric has an exact gradient."""
        import dataclasses

        from proxiqa_lab.metrics.differentiable import EXACT

        kind, _, metric = spec.objective.partition(":")
        if not self.diagnose_every or kind not in ("proxy", "pretrained-proxy") or metric not in EXACT:
            return spec
        if any(k == "diagnose_every" for k, _ in spec.overrides):
            return spec
        overrides = tuple(sorted((*spec.overrides, ("diagnose_every", self.diagnose_every))))
        return dataclasses.replace(spec, overrides=overrides)

    def steps_plan(self, objective: str) -> StepsPlan:
        """The runs, kept steps and lr drop of the training-steps study of ``objective`` (Fig. 11).

        Without fine-tuning (the paper, ``smoke``), MSE and ``objective`` train from scratch and
        are compared at ``keep_checkpoints_at``. When the study fine-tunes (``lab``), both are
        fine-tuned for ``finetune_steps`` from the same MSE models, and compared at the
        checkpoints every fine-tune keeps (:func:`~proxiqa_lab.training.finetune_schedule`): the
        MSE fine-tune is the "same training procedure" baseline of Fig. 11's dotted line.
        """
        from proxiqa_lab.studies.grid import RunSpec, grid_specs, mse_bases

        lambdas = tuple(float(v) for v in (self.steps_lambdas or self.lambdas))
        if self.finetune_steps is None:
            return StepsPlan(grid_specs(["mse", objective], lambdas), tuple(self.keep_checkpoints_at),
                             self.lr_drop_step)
        tuned = [RunSpec("mse", v, finetune=True) for v in lambdas] + grid_specs([objective], lambdas, finetune=True)
        kept, drop = finetune_schedule(self.finetune_steps)
        if self.steps_kept is not None:
            unknown = sorted(set(self.steps_kept) - set(kept))
            if unknown:
                raise ValueError(f"steps_kept {unknown} are not steps a {self.finetune_steps}-step fine-tune "
                                 f"keeps ({kept})")
            kept = [k for k in kept if k in self.steps_kept]
        return StepsPlan(mse_bases(lambdas, self.anchor_lmbda) + tuned, tuple(kept), drop)


SETTINGS: dict[str, StudySettings] = {
    # Seconds per notebook on a 2-core CPU: tiny models, 2 Kodak images, 4 rate points.
    "smoke": StudySettings(
        profile="smoke",
        lambdas=(0.0018, 0.0067, 0.0250, 0.0932),
        objectives=("mse", "proxy:vmaf", "direct:vmaf"),
        train={"steps": 12},
        finetune_steps=None,
        eval_images={"kodak": 2, "wikipedia24": 1},
        classical_codecs=("jpeg", "jpeg2000"),
        classical_points=(0.1, 0.3, 0.8, 2.0),
        alphas=(0.0, 0.5, 1.0),
        explorer_lambdas=(0.0067, 0.0932),
        explorer_steps=None,
        keep_checkpoints_at=(4, 8, 12),
        lr_drop_step=8,
        runtime_images=1,
        runtime_repeats=1,
        pretrain=dict(RUN_PRETRAINING["smoke"]),  # as a smoke pretrained-proxy run's own: seconds
        crop=192,
        torch_threads=1,
        diagnose_every=4,
        bmshj_lambdas=(0.0067, 0.025, 0.0932),
        bmshj={"N": 8, "M": 8},
    ),
    # A laptop afternoon (2 cores, no GPU): N=64 models, all of Kodak, 4 rate points.
    "lab": StudySettings(
        profile="lab",
        lambdas=LAB_LAMBDAS,
        # direct:vmaf: the same objective through VMAF's exact gradient, the proxy's reference
        objectives=("mse", "proxy:vmaf", "direct:vmaf", "proxy:ssim", "proxy:ms_ssim"),
        train={},
        finetune_steps=LAB_FINETUNE_STEPS,
        anchor_lmbda=0.0932,
        eval_images={"kodak": None, "wikipedia24": None},
        classical_codecs=("jpeg", "jpeg2000", "hevc444", "hevc420"),
        classical_points=PAPER_POINTS,
        # The explorer shows what α does when the metric term has a useful gradient: exact VMAF
        # (the lab proxy's gradient carries almost none, notebook 03). 3 α x 3 λ; the α = 0.5 runs
        # are the lab science curves', the λ = 0.025 ones its screen's (reports/lab_science).
        alphas=(0.5, 0.8, 0.95),
        explorer_lambdas=(0.0067, 0.025, 0.0932),
        explorer_objective="direct:vmaf",
        explorer_steps=None,
        keep_checkpoints_at=(1000, 2000, 3000, 4000, 5000, 5600, 7000),
        lr_drop_step=5600,
        steps_lambdas=(0.0067, 0.0250, 0.0932),  # Fig. 11 from the kept steps of these λ's fine-tunes
        steps_kept=(600, 1500),  # the checkpoints the zoo ships (proxiqa_lab.zoo.plan.ship_complete), and model.pt
        runtime_images=24,
        runtime_repeats=3,
        # As proxiqa_lab.training.pretrain.PRETRAIN_PROFILES["lab"]: held-out PLCC about 0.9 for VMAF.
        pretrain={"patches_per_image": 1, "levels": 5, "epochs": 4, "images": None},
        crop=256,
        diagnose_every=50,
        # N=48 and M=64 give 0.69 M parameters (the BLS N=64 has 0.46 M); at N=64 its hyperprior
        # alone would make it 1.28 M, too large for the zoo's 50 MB.
        bmshj_lambdas=(0.0067, 0.025, 0.0932),
        bmshj={"N": 48, "M": 64},
    ),
    # The paper's protocol (Sec. III-D, IV-A): N=192, 2.1M steps, 8 rate points; needs GPUs.
    "paper": StudySettings(
        profile="paper",
        lambdas=PAPER_LAMBDAS,
        objectives=("mse", "proxy:vmaf", "proxy:ssim", "proxy:ms_ssim"),
        train={},
        finetune_steps=None,
        eval_images={"kodak": None, "wikipedia24": None},
        classical_codecs=("jpeg", "jpeg2000", "hevc444", "hevc420"),
        classical_points=PAPER_POINTS,
        alphas=(0.0, 0.25, 0.5, 0.75, 1.0),
        explorer_lambdas=(0.0035, 0.0130, 0.0483),
        explorer_steps=200_000,
        keep_checkpoints_at=(250_000, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_100_000),
        lr_drop_step=2_000_000,
        runtime_images=24,
        runtime_repeats=3,
        pretrain={"patches_per_image": 16, "levels": 5, "epochs": 20, "images": None},
        crop=512,
        diagnose_every=1000,
        bmshj_lambdas=PAPER_LAMBDAS,
        bmshj={"N": 128, "M": 192},
    ),
}


# The lab study shown in minutes: the lab's models (the zoo's, on a fresh clone), fewer images,
# the classical codecs' RD points shipped with the zoo. What `make report` runs.
SETTINGS["course"] = SETTINGS["lab"].replace(
    profile="course",
    eval_images={"kodak": 3, "wikipedia24": 1},
    runtime_images=1,
    runtime_repeats=1,
)


def settings_for(profile: str, **overrides: Any) -> StudySettings:
    """The study settings of ``profile`` with ``overrides`` applied.

    Args:
        profile: ``"smoke"``, ``"course"``, ``"lab"`` or ``"paper"``.
        **overrides: any :class:`StudySettings` field (e.g. ``eval_images=4``).

    Returns:
        The :class:`StudySettings`.
    """
    return SETTINGS[check_profile(profile)].replace(**overrides)
