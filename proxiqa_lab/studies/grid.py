"""Grids of training runs that notebooks share: each run lives in ``runs/<profile>/<name>/``.

A run folder is named after what makes it different (architecture and width, objective, λ,
α, fine-tuning), so a later notebook that asks for the same model finds it: a complete run is
reused as is, an interrupted one is resumed from its last checkpoint, and a missing one is
trained. Asking for more steps than a finished run has continues that run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from proxiqa_lab.paths import runs_profile, runs_root

#: How tables and plots name the objectives (the paper writes M_p for a proxy-optimised model).
OBJECTIVE_LABELS = {
    "mse": "MSE",
    "ssim": "SSIM",
    "ssim+ld": "SSIM+Ld",
    "ms-ssim": "MS-SSIM",
    "proxy:vmaf": "VMAF_p",
    "proxy:ssim": "SSIM_p",
    "proxy:ms_ssim": "MS-SSIM_p",
    "proxy:vmaf_neg": "VMAF-NEG_p",
    "pretrained-proxy:vmaf": "VMAF_p (pretrained, frozen)",
    "direct:vmaf": "VMAF_direct",
    "direct:vmaf_neg": "VMAF-NEG_direct",
}


def objective_label(objective: str, architecture: str = "bls") -> str:
    """``"BLS VMAF_p"`` for ``proxy:vmaf``: the paper's naming of an optimised codec."""
    label = OBJECTIVE_LABELS.get(objective, objective)
    return f"{architecture.upper()} {label}"


#: ``TrainConfig`` options that do not name a run folder: they do not change what is trained
#: (``proxy_init`` of a frozen proxy is named by the objective; of an alternating one, by a tag),
#: or the name's first part says them (``architecture`` and ``N``: ``bmshj48-...``).
UNNAMED_OPTIONS = ("architecture", "N", "steps", "progress", "device", "proxy_init", "diagnose_every",
                   "keep_checkpoints_at", "overlap_metric")


def _tag(value: Any) -> str:
    """An option value as it appears in a run folder's name (lists joined by ``+``)."""
    if isinstance(value, (list, tuple)):
        return "+".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class RunSpec:
    """One model of a grid.

    Attributes:
        objective: a training objective (``"mse"``, ``"proxy:vmaf"``, ...).
        lmbda: λ (eqs. 8, 10).
        alpha: α (eqs. 10, 13); only part of the name for objectives that use it.
        finetune: start from the MSE model of the same λ (``init_checkpoint``).
        overrides: other ``TrainConfig`` fields, as sorted (name, value) pairs.
        base_lmbda: MSE runs only: start from the MSE model of this other λ (the grid's anchor)
            instead of from scratch; a short fine-tune moves a trained model to a new rate.
        steps: steps of this fine-tune (``None``: the grid's ``finetune_steps``); part of the name.
    """

    objective: str = "mse"
    lmbda: float = 0.013
    alpha: float = 0.5
    finetune: bool = False
    overrides: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    base_lmbda: float | None = None
    steps: int | None = None

    def __post_init__(self):
        if self.base_lmbda is not None and (self.objective != "mse" or self.finetune):
            raise ValueError(f"base_lmbda is for MSE runs that are not fine-tunes, got {self}")
        if self.steps is not None and not (self.finetune or self.base_lmbda is not None):
            raise ValueError(f"steps is for fine-tunes (finetune=True or base_lmbda), got {self}")

    def name(self, architecture: str = "bls", N: int | None = None) -> str:
        """The run folder's name, e.g. ``bls8-proxy_vmaf-lmbda0.0067-alpha0.5``."""
        parts = [f"{architecture}{N or ''}", self.objective, f"lmbda{self.lmbda:g}"]
        if self.objective.startswith(("proxy", "pretrained-proxy", "direct")) or self.objective == "ssim+ld":
            parts.append(f"alpha{self.alpha:g}")
        if self.finetune:
            parts.append("ft")
        if self.base_lmbda is not None:
            parts.append(f"from{self.base_lmbda:g}")
        parts += [f"{k}{_tag(v)}" for k, v in self.overrides if k not in UNNAMED_OPTIONS]
        if self.objective.startswith("proxy:") and dict(self.overrides).get("proxy_init"):
            parts.append("proxyinit")
        if self.steps is not None:
            parts.append(f"steps{self.steps}")
        return "-".join(parts).replace(":", "_").replace("+", "_").replace(" ", "")


def grid_specs(objectives, lambdas, alpha: float = 0.5, finetune: bool = False, anchor: float | None = None,
               **overrides: Any) -> list[RunSpec]:
    """Every (objective, λ) pair as a :class:`RunSpec`, MSE runs first (others may start from them).

    Args:
        objectives: training objectives; ``"mse"`` is put first.
        lambdas: one run per λ and objective.
        alpha: α of every run.
        finetune: non-MSE runs start from the MSE model of the same λ.
        anchor: a λ of ``lambdas``; the MSE runs of the other λ start from its MSE model
            (``base_lmbda``), so that only one MSE model trains from scratch.
        **overrides: ``TrainConfig`` fields shared by every run.
    """
    lambdas = [float(v) for v in lambdas]
    if anchor is not None and float(anchor) not in lambdas:
        raise ValueError(f"anchor λ={anchor} must be one of the grid's λ {lambdas}")
    objectives = sorted(objectives, key=lambda o: o != "mse")
    extra = tuple(sorted(overrides.items()))
    specs = []
    for o in objectives:
        for v in lambdas:
            base = float(anchor) if o == "mse" and anchor is not None and v != float(anchor) else None
            specs.append(RunSpec(o, v, float(alpha), finetune and o != "mse", extra, base))
    return sorted(specs, key=lambda s: (s.objective != "mse", s.base_lmbda is not None))


def mse_bases(lambdas, anchor: float | None = None) -> list[RunSpec]:
    """The MSE runs that fine-tunes at ``lambdas`` start from: the ``anchor`` (when given) first,
    then the MSE model of each λ, fine-tuned from the anchor."""
    grid = [float(v) for v in lambdas] + ([float(anchor)] if anchor is not None else [])
    return grid_specs(["mse"], list(dict.fromkeys(grid)), anchor=anchor)


#: Where :func:`train_grid` takes its runs from (the notebooks' ``TRAIN`` parameter).
SOURCES = ("auto", "shipped", "retrain")
#: Config fields a shipped run may differ in from the one asked for: paths on the machine that
#: trained it, and what :data:`~proxiqa_lab.training.config.RESUMABLE_KEYS` lets change on resume.
_MACHINE_KEYS = ("init_checkpoint", "proxy_init", "data_root")


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"TRAIN (source) must be one of {SOURCES}, got {source!r}: \"auto\" uses a complete run "
                         f"of runs/ first, then the shipped one, and trains only when neither exists; \"shipped\" "
                         f"uses only the shipped runs; \"retrain\" never uses them")
    return source


def shipped(name: str, config) -> Path | None:
    """The shipped run called ``name`` when it was trained with ``config`` (paths and resumable options
    aside) for at least as many steps; ``None`` otherwise. A shipped file that does not match the zoo's
    registry raises :class:`~proxiqa_lab.errors.ZooError`."""
    from proxiqa_lab.training.config import RESUMABLE_KEYS, config_diff
    from proxiqa_lab.training.runs import is_complete
    from proxiqa_lab.zoo.registry import shipped_run

    folder = shipped_run(name, config.profile)
    if folder is None:
        return None
    stored = json.loads((folder / "config.json").read_text())
    if config_diff(stored, config.to_dict(), ignore=RESUMABLE_KEYS + _MACHINE_KEYS):
        return None
    return folder if is_complete(folder, config.steps) else None


def source_summary(grid: pd.DataFrame) -> str:
    """One line on where a grid's runs came from, e.g. ``"3 shipped with the kit, 1 from runs/lab, 0 trained"``."""
    counts = grid["status"].value_counts() if len(grid) else {}
    profile = Path(grid["run"].iloc[0]).parent.name if len(grid) else ""
    return (f"{counts.get('shipped', 0)} shipped with the kit (proxiqa_lab/zoo), {counts.get('reused', 0)} from "
            f"runs/{profile}, {counts.get('trained', 0)} trained now")


def train_grid(
    specs: list[RunSpec],
    profile: str = "smoke",
    train: dict[str, Any] | None = None,
    finetune_steps: int | None = None,
    seed: int = 0,
    device: str = "auto",
    data_root: str | None = None,
    progress: bool = True,
    source: str = "auto",
) -> pd.DataFrame:
    """Train (or reuse, or resume) every run of a grid under ``runs/<profile>/``, or use the shipped one.

    Args:
        specs: the runs, e.g. from :func:`grid_specs`.
        profile: training profile (``proxiqa_lab.training.PROFILES``) and runs sub-folder.
        train: ``TrainConfig`` overrides shared by all runs (``StudySettings.train``).
        finetune_steps: steps of runs with ``finetune=True`` (started from the MSE run of
            the same λ, which must come earlier in ``specs``) and of MSE runs with a
            ``base_lmbda`` (started from the MSE run of that λ). Their learning rate drops, and
            their checkpoints are kept, at fractions of their own steps
            (:func:`~proxiqa_lab.training.finetune_schedule`).
        seed: training seed.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        data_root: data root for the training images (``None``: the default).
        progress: tqdm bar per run.
        source: ``"auto"``: a complete run of ``runs/<profile>/`` first, then the run shipped with
            the kit (:mod:`proxiqa_lab.zoo`, checked against its sha256), and training only when
            neither exists; ``"shipped"``: the shipped runs only (a report of exactly the shipped
            weights; a run the zoo lacks is an error); ``"retrain"``: never the shipped runs (runs
            of ``runs/`` are reused or resumed as always; nothing there is deleted).

    Returns:
        One row per run: objective, lmbda, alpha, finetune, base_lmbda, label, run (folder), model
        (``model.pt``), steps, status (``"reused"``, ``"shipped"`` or ``"trained"``), seconds
        (spent in this call), train_seconds (the training time the run records, whenever it was
        trained).
    """
    from proxiqa_lab.training import finetune_schedule, load_run, make_config
    from proxiqa_lab.training import train as train_run
    from proxiqa_lab.training.runs import is_complete

    profile = runs_profile(profile)
    check_source(source)
    rows = []
    for spec in specs:
        options = {**(train or {}), **dict(spec.overrides), "objective": spec.objective, "lmbda": spec.lmbda,
                   "alpha": spec.alpha, "seed": seed, "device": device, "data_root": data_root,
                   "progress": progress}
        starts_from = spec.lmbda if spec.finetune else spec.base_lmbda
        architecture = make_config(profile, **{k: v for k, v in options.items()
                                               if k in ("architecture", "N") and v is not None}).architecture
        if starts_from is not None:
            mse = [r for r in rows if r["objective"] == "mse" and r["lmbda"] == starts_from and not r["finetune"]
                   and (spec.finetune or r["base_lmbda"] is None) and r["architecture"] == architecture]
            base = Path(mse[0]["model"]) if mse else None
            if base is None or not base.is_file():
                raise ValueError(f"run {spec} starts from the MSE model of λ={starts_from:g}; put that MSE run "
                                 f"earlier in the grid (grid_specs does)")
            options.update(init_checkpoint=str(base), steps=spec.steps or finetune_steps or options.get("steps"))
        config = make_config(profile, **{k: v for k, v in options.items() if v is not None})
        if starts_from is not None:
            kept, drop = finetune_schedule(config.steps)
            config = config.replace(lr_drop_step=drop, keep_checkpoints_at=kept).validate()
        out = runs_root() / profile / spec.name(config.architecture, config.N)
        start = time.perf_counter()
        local = is_complete(out, config.steps)
        ship = shipped(out.name, config) if source == "shipped" or (source == "auto" and not local) else None
        if ship is None and source == "shipped":
            from proxiqa_lab.errors import ZooError

            raise ZooError(f"the zoo does not ship the run {out.name!r} (with these settings); TRAIN = \"auto\" "
                           f"trains it when runs/{profile}/ does not have it either")
        if ship is not None:
            out, status = ship, "shipped"
        elif local:
            status = "reused"
        else:
            train_run(config, out=out)
            status = "trained"
        rows.append({"architecture": config.architecture, "objective": spec.objective, "lmbda": spec.lmbda,
                     "alpha": spec.alpha, "finetune": spec.finetune, "base_lmbda": spec.base_lmbda,
                     "label": objective_label(spec.objective, config.architecture), "run": str(out),
                     "model": str(out / "model.pt"), "steps": config.steps, "status": status,
                     "seconds": round(time.perf_counter() - start, 2), "train_seconds": load_run(out).train_seconds})
    return pd.DataFrame(rows)


def _train_chain(specs: list[RunSpec], options: dict[str, Any]) -> None:
    """Worker of :func:`train_chains`: one chain, one torch thread."""
    import torch

    torch.set_num_threads(1)
    train_grid(specs, progress=False, **options)


def train_side_by_side(chains: list[list[RunSpec]], options: dict[str, Any], jobs: int) -> None:
    """Train independent chains of runs (each in order) in ``jobs`` spawned worker processes, one torch thread each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if not chains:
        return
    with ProcessPoolExecutor(min(jobs, len(chains)), mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in [pool.submit(_train_chain, chain, options) for chain in chains]:
            done.result()


def train_chains(
    specs: list[RunSpec],
    profile: str = "smoke",
    jobs: int = 2,
    train: dict[str, Any] | None = None,
    finetune_steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    data_root: str | None = None,
) -> pd.DataFrame:
    """:func:`train_grid`, with the runs of different λ trained side by side in ``jobs`` processes.

    The MSE models that other λ start from (the anchor) train first; then each λ is a chain
    (its MSE model, then the runs fine-tuned from it) run in a process of its own with one
    torch thread. On a CPU with ``jobs`` cores this finishes sooner than one process with
    ``jobs`` threads. The runs land in the same folders, with the same configs, as with
    :func:`train_grid`, which is called last and finds them complete. The workers are spawned,
    so a script that calls this needs an ``if __name__ == "__main__":`` guard.

    Returns:
        The table of :func:`train_grid`.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    options = {"profile": profile, "train": train, "finetune_steps": finetune_steps, "seed": seed, "device": device,
               "data_root": data_root}
    if jobs > 1:
        starts = {s.base_lmbda for s in specs}
        roots = [s for s in specs if s.objective == "mse" and not s.finetune and s.base_lmbda is None
                 and s.lmbda in starts]
        train_grid(roots, progress=False, **options)
        chains = [roots + [s for s in specs if s.lmbda == lmbda and s not in roots]
                  for lmbda in dict.fromkeys(s.lmbda for s in specs)]
        train_side_by_side(sorted(chains, key=len, reverse=True), options, jobs)  # the longest first
    return train_grid(specs, progress=False, **options)


def checkpoint_at(run: str | Path, step: int | None = None) -> Path:
    """The codec of a run after ``step`` steps (``checkpoints/step_<K>.pt``), or ``model.pt`` for ``None``
    and for the run's last step (a shipped run does not repeat its ``model.pt`` as a step)."""
    run = Path(run)
    path = run / "model.pt" if step is None else run / "checkpoints" / f"step_{step}.pt"
    if not path.is_file() and step is not None and (run / "model.pt").is_file():
        meta = run / "run.json"
        if meta.is_file() and json.loads(meta.read_text()).get("step") == int(step):
            path = run / "model.pt"
    if not path.is_file():
        kept = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
        raise FileNotFoundError(f"{path} does not exist; the run keeps {kept or 'no step checkpoints'} "
                                f"(set keep_checkpoints_at when training)")
    return path


def learned_codec(grid: pd.DataFrame, objective: str, step: int | None = None, name: str | None = None,
                  device: str | None = None, architecture: str | None = None, finetune: bool | None = None):
    """A :class:`~proxiqa_lab.codec.LearnedCodec` over the grid's runs of one objective (and architecture,
    when the grid has more than one), one point per λ.

    ``finetune``: for a grid with two runs of the objective per λ (the MSE models and their
    equal-steps controls, :meth:`~proxiqa_lab.studies.StudySettings.control_specs`), ``False`` takes
    the runs that are not fine-tunes of a same-λ model, ``True`` those that are.
    """
    from proxiqa_lab.codec import LearnedCodec

    rows = grid[grid["objective"] == objective]
    if architecture is not None:
        rows = rows[rows["architecture"] == architecture]
    elif "architecture" in rows and rows["architecture"].nunique() > 1:
        raise ValueError(f"the grid has {objective!r} runs of {sorted(set(rows['architecture']))}; "
                         f"say which with architecture=")
    if finetune is not None:
        rows = rows[rows["finetune"].astype(bool) == finetune]
    rows = rows.sort_values("lmbda")
    if rows.empty:
        raise ValueError(f"the grid has no {objective!r} runs{f' of {architecture}' if architecture else ''}"
                         f"{'' if finetune is None else f' with finetune={finetune}'}; "
                         f"it has {sorted(set(grid['objective']))}")
    if rows["lmbda"].duplicated().any():
        raise ValueError(f"the grid has more than one {objective!r} run at λ "
                         f"{sorted(set(rows.loc[rows['lmbda'].duplicated(), 'lmbda']))}; "
                         f"say which with finetune= (False: the models, True: their fine-tunes)")
    checkpoints = [checkpoint_at(r, step) for r in rows["run"]]
    label = name or rows["label"].iloc[0] + (f" @{step}" if step is not None else "")
    return LearnedCodec(checkpoints, name=label, device=device)


def training_logs(grid: pd.DataFrame) -> pd.DataFrame:
    """Every run's ``log.csv`` stacked, with the run's objective, λ, α and label."""
    from proxiqa_lab.training import load_run

    frames = [load_run(r["run"]).log.assign(objective=r["objective"], lmbda=r["lmbda"], alpha=r["alpha"],
                                            label=r["label"]) for _, r in grid.iterrows()]
    return pd.concat(frames, ignore_index=True)
