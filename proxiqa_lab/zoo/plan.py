"""Which trained runs the notebooks of a profile need, and a queue that trains them two at a time.

:func:`notebook_runs` asks each notebook's study for its runs, exactly as the notebook does
(``settings.specs``, ``fooling_specs``, ``steps_plan``, ``explorer_specs``), and merges them into
one list in the order a class needs them (notebook 02's fooling first), each with the notebooks
that use it. :func:`train_plan` trains that list side by side: a run starts as soon as the MSE
model it is fine-tuned from is complete, so two single-threaded workers stay busy on a 2-core
machine, and an interrupted plan resumes where it stopped (every run resumes from its last
checkpoint).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

#: The notebooks whose runs the zoo holds, in the order their runs are trained.
NOTEBOOK_ORDER = ("02", "07", "06", "03", "05", "04", "00", "08")
#: A pretrained proxy is not a RunSpec; the plan names it with this.
PRETRAINED_PROXY = "pretrained-proxy"


@dataclass
class PlannedRun:
    """One run of the plan.

    Attributes:
        name: the run folder's name under ``runs/<profile>/``.
        spec: its :class:`~proxiqa_lab.studies.RunSpec` (``None`` for the pretrained proxy).
        needs: the plan names it starts from (the MSE models of its chain, the pretrained proxy).
        chain: the specs :func:`~proxiqa_lab.studies.train_grid` needs, bases first.
        notebooks: the notebooks that use it.
    """

    name: str
    spec: Any
    needs: tuple[str, ...] = ()
    chain: list = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)


def spec_architecture(spec, profile: str = "lab", train: dict | None = None) -> tuple[str, int]:
    """``(architecture, N)`` of a spec's run: the profile's, unless the spec overrides them."""
    from proxiqa_lab.training import make_config

    options = {**(train or {}), **{k: v for k, v in spec.overrides if k in ("architecture", "N", "M")}}
    config = make_config(profile, **options)
    return config.architecture, config.N


def notebook_specs(settings, proxy_path: str) -> dict[str, list]:
    """Each notebook's runs, as it asks for them: ``{"02": [RunSpec, ...], ...}``."""
    from proxiqa_lab import studies

    lab = settings  # the notebooks' runs, as each asks for them
    return {
        "00": lab.specs(["mse"], [0.0932 if lab.anchor_lmbda is None else lab.anchor_lmbda]),
        "02": studies.fooling_specs(lab, "vmaf", 0.025, proxy_path),
        "07": studies.explorer_specs(lab.alphas, lab.explorer_lambdas, lab.explorer_objective,
                                     lab.finetune_steps is not None, lab.anchor_lmbda),
        "03": lab.specs(lab.objectives),
        "06": lab.steps_plan("proxy:vmaf").specs,
        "05": lab.specs(["mse", "ssim", "proxy:ssim", "ssim+ld"]),
        "04": lab.specs(lab.objectives) + lab.control_specs() + lab.bmshj_specs(),
        "08": lab.specs(["mse", "proxy:vmaf"]),
    }


def notebook_runs(profile: str = "lab") -> list[PlannedRun]:
    """Every run the notebooks of ``profile`` train, once each, in :data:`NOTEBOOK_ORDER`."""
    from proxiqa_lab import studies
    from proxiqa_lab.studies.adversarial import pretrained_proxy_path

    settings = studies.settings_for(profile)
    proxy_path = str(pretrained_proxy_path(profile, "vmaf", **settings.pretrain, seed=0))
    proxy_name = proxy_path.rsplit("/", 1)[-1]
    plan: dict[str, PlannedRun] = {proxy_name: PlannedRun(proxy_name, None, notebooks=["02"])}
    per_notebook = notebook_specs(settings, proxy_path)
    for notebook in NOTEBOOK_ORDER:
        specs = per_notebook[notebook]
        for spec in specs:
            arch, n = spec_architecture(spec, profile, settings.train)
            name = spec.name(arch, n)
            if name not in plan:
                chain = _chain(spec, specs)
                needs = tuple(s.name(*spec_architecture(s, profile, settings.train)) for s in chain[:-1])
                if spec.objective.startswith("pretrained-proxy"):
                    needs += (proxy_name,)
                plan[name] = PlannedRun(name, spec, needs, chain)
            if notebook not in plan[name].notebooks:
                plan[name].notebooks.append(notebook)
    return list(plan.values())


def _chain(spec, specs) -> list:
    """The specs ``spec`` is trained after (its MSE model, and the anchor that one starts from), then ``spec``."""
    arch = dict(spec.overrides).get("architecture")

    def mse_of(lmbda, finetuned_base):
        found = [s for s in specs if s.objective == "mse" and s.lmbda == lmbda and not s.finetune
                 and (finetuned_base or s.base_lmbda is None) and dict(s.overrides).get("architecture") == arch]
        if not found:
            raise ValueError(f"{spec} starts from the MSE model of λ={lmbda:g}, which its notebook does not train")
        return found[0]

    if spec.finetune:
        base = mse_of(spec.lmbda, True)
        return _chain(base, specs) + [spec]
    if spec.base_lmbda is not None:
        return [mse_of(spec.base_lmbda, False), spec]
    return [spec]


def _train_one(chain, profile, options):
    """Worker: train one run (its bases are complete and are reused), with one torch thread."""
    import torch

    from proxiqa_lab.studies.grid import train_grid

    torch.set_num_threads(1)
    train_grid(chain, profile, progress=False, **options)


def _pretrain_one(profile, options):
    import torch

    from proxiqa_lab import studies

    torch.set_num_threads(1)
    settings = studies.settings_for(profile)
    studies.pretrained_proxy(profile, "vmaf", **settings.pretrain, seed=0, **options)


def train_plan(runs: list[PlannedRun], profile: str = "lab", jobs: int = 2, device: str = "cpu",
               data_root: str | None = None, log=print) -> list[str]:
    """Train the plan's runs ``jobs`` at a time, each as soon as what it starts from is complete.

    Runs complete in ``runs/<profile>/`` or shipped with the kit are skipped (a fine-tune whose MSE
    model is shipped starts from the shipped one), interrupted ones resume. The workers are spawned, so a script
    that calls this needs an ``if __name__ == "__main__":`` guard.

    Returns:
        The names trained (or completed) by this call, in the order they finished.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from proxiqa_lab import studies

    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    settings = studies.settings_for(profile)
    options = {"train": settings.train_options(), "finetune_steps": settings.finetune_steps, "seed": 0,
               "device": device, "data_root": data_root}
    done = {r.name for r in runs if is_complete(r, profile) or is_shipped(r, profile)}
    pending = [r for r in runs if r.name not in done]
    known = {r.name for r in runs}
    finished, running = [], {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while pending or running:
            for run in list(pending):
                if len(running) >= jobs:
                    break
                if all(n in done or n not in known for n in run.needs):
                    pending.remove(run)
                    log(f"{time.strftime('%H:%M:%S')} start {run.name} (notebooks {', '.join(run.notebooks)})")
                    future = (pool.submit(_pretrain_one, profile, {"data_root": data_root, "device": device})
                              if run.spec is None else pool.submit(_train_one, run.chain, profile, options))
                    running[future] = run
            if not running:
                missing = sorted({n for r in pending for n in r.needs} - done)
                raise RuntimeError(f"the plan cannot go on: {missing} are neither complete nor planned")
            ready, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ready:
                run = running.pop(future)
                future.result()
                done.add(run.name)
                finished.append(run.name)
                log(f"{time.strftime('%H:%M:%S')} done  {run.name}")
    return finished


def is_shipped(run: PlannedRun, profile: str = "lab") -> bool:
    """Whether the zoo ships the planned run (its files are checked when a notebook uses it)."""
    from pathlib import Path

    from proxiqa_lab.zoo.registry import find_model

    return find_model(Path(run.name).stem if run.spec is None else run.name, profile) is not None


def is_complete(run: PlannedRun, profile: str = "lab") -> bool:
    """Whether ``runs/<profile>/`` holds the planned run, complete."""
    from proxiqa_lab.paths import runs_root
    from proxiqa_lab.training.runs import is_complete as is_complete_run

    out = runs_root() / profile / run.name
    return out.is_file() if run.spec is None else is_complete_run(out)


def ship_complete(profile: str = "lab", runs_dir=None, zoo=None) -> list:
    """Add the plan's complete runs of ``runs_dir`` (default ``runs/<profile>``) to the zoo, with the notebooks
    that use them; the training-steps study's fine-tunes keep the checkpoints of the profile's ``steps_kept`` (their last step is
    their model.pt). Runs the zoo has already
    are left as they are. Returns the models added."""
    from pathlib import Path

    from proxiqa_lab import studies
    from proxiqa_lab.paths import runs_root
    from proxiqa_lab.training.runs import is_complete as is_complete_run
    from proxiqa_lab.zoo.archive import ship

    runs_dir = Path(runs_dir) if runs_dir is not None else runs_root() / profile
    everything = notebook_runs(profile)
    plan = [r for r in everything
            if ((runs_dir / r.name).is_file() if r.spec is None else is_complete_run(runs_dir / r.name))]
    sources = [runs_dir / r.name for r in plan]
    # every planned run's notebooks, so that the entries of runs shipped earlier follow the notebooks too
    notebooks = {Path(r.name).stem if r.spec is None else r.name: r.notebooks for r in everything}
    settings = studies.settings_for(profile)
    kept = tuple(k for k in settings.steps_kept or () if k != settings.finetune_steps)
    steps = {r.name: kept for r in plan if r.spec is not None and r.spec.finetune and "06" in r.notebooks}
    return ship(sources, profile, notebooks=notebooks, steps=steps, zoo=zoo)


def grid_models(objective: str, architecture: str = "bls", profile: str = "lab") -> list:
    """The shipped models of notebook 04's curve of ``objective`` (BLS, or ``bmshj``), one per λ, by λ.

    Raises:
        ZooError: when the zoo ships none of them.
    """
    from proxiqa_lab import studies
    from proxiqa_lab.errors import ZooError
    from proxiqa_lab.zoo.registry import find_model

    settings = studies.settings_for(profile)
    specs = settings.bmshj_specs() if architecture == "bmshj" else settings.specs(settings.objectives)
    names = [s.name(*spec_architecture(s, profile, settings.train)) for s in specs
             if s.objective == objective and (objective != "mse" or not s.finetune)]
    models = [m for m in (find_model(n, profile) for n in names) if m is not None]
    if not models:
        known = sorted(settings.objectives if architecture == "bls" else ("mse", "proxy:vmaf"))
        raise ZooError(f"the zoo ships no {architecture.upper()} {objective!r} models of the {profile} grid; "
                       f"objectives: {known} (proxiqa-lab zoo list)")
    return sorted(models, key=lambda m: m.lmbda)
