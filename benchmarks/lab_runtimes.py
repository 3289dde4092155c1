"""Lab-profile runtime of each notebook: its measured wall time plus the training it needs.

    python benchmarks/lab_runtimes.py [--executed reports/lab/executed] [--out reports/lab_runtimes]

Run it after ``proxiqa-lab run-notebooks --profile lab``. For each notebook it reads the wall
time from the suite's ``suite.json`` (the latest run of that notebook) and collects the runs the
notebook trains or reuses, from the same study settings the notebook calls
(``StudySettings.specs``, ``steps_plan``, ``explorer_specs``). A run counts for the first
notebook, in order, that needs it; its cost is the training time its ``run.json`` records
(summed over resumes). The sum is what the notebook costs from an empty ``runs/lab/`` when the
notebooks before it have run. Runs that are not complete are listed as missing.

Writes ``runtimes.json`` and ``runtimes.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from proxiqa_lab.fileio import atomic_write_text
from proxiqa_lab.paths import runs_root
from proxiqa_lab.studies import RunSpec, explorer_specs, fooling_specs, settings_for
from proxiqa_lab.studies.adversarial import pretrained_proxy
from proxiqa_lab.training import load_run, make_config


def notebook_runs(metric: str = "vmaf", lmbda_02: float = 0.025) -> dict[str, list[RunSpec | str]]:
    """The runs each lab notebook trains or reuses, in notebook order (as the notebooks build them)."""
    lab = settings_for("lab")
    proxy = str(runs_root() / "lab" / f"pretrained-proxy-{metric}-p{make_config('lab').patch_size}-nall-s0.pt")
    return {
        "00_quickstart": lab.specs(["mse"], [lab.anchor_lmbda]),
        "01_proxiqa_architecture": [],
        "02_pretrained_proxy_failure": [proxy, *fooling_specs(lab, metric, lmbda_02, proxy)],
        "03_alternating_training": lab.specs(lab.objectives),
        "04_rate_distortion": lab.specs(lab.objectives),
        "05_limitations_ssim": lab.specs(["mse", "ssim", "proxy:ssim", "ssim+ld"]),
        "06_training_steps": lab.steps_plan("proxy:vmaf").specs,
        "07_alpha_lambda_explorer": explorer_specs(lab.alphas, lab.explorer_lambdas, lab.explorer_objective,
                                                   lab.finetune_steps is not None, lab.anchor_lmbda),
        "08_runtime": lab.specs(["mse", "proxy:vmaf"]),
    }


def run_cost(run: RunSpec | str) -> tuple[str, float | None]:
    """``(name, training seconds)`` of a run folder or a pretrained proxy; ``None`` when not complete."""
    if isinstance(run, str):  # a pretrained proxy checkpoint
        path = Path(run)
        if not path.is_file():
            return path.name, None
        _, info = pretrained_proxy("lab", **settings_for("lab").pretrain)
        return path.name, float(info["report"]["train_seconds"])
    name = run.name("bls", make_config("lab").N)
    out = runs_root() / "lab" / name
    if not (out / "config.json").is_file():
        return name, None
    run = load_run(out)
    return (name, run.train_seconds) if run.metadata.get("status") == "complete" else (name, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executed", default="reports/lab/executed", help="folder of the lab suite's suite.json")
    parser.add_argument("--out", default="reports/lab_runtimes", help="where runtimes.json and .md go")
    args = parser.parse_args()

    suite = json.loads((Path(args.executed) / "suite.json").read_text())
    wall = {nb["name"]: nb["wall_s"] for nb in suite["notebooks"] if nb["status"] == "ok"}
    seen: set[str] = set()
    rows = []
    for notebook, runs in notebook_runs().items():
        added, missing, seconds = [], [], 0.0
        for run in runs:
            name, cost = run_cost(run)
            if name in seen:
                continue
            seen.add(name)
            if cost is None:
                missing.append(name)
            else:
                added.append({"run": name, "train_seconds": cost})
                seconds += cost
        rows.append({"notebook": notebook, "wall_s": wall.get(notebook), "new_runs": len(added),
                     "train_seconds": round(seconds, 1), "runs": added, "missing": missing})

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "runtimes.json", json.dumps({"profile": "lab", "notebooks": rows}, indent=2))
    lines = ["# Lab-profile runtimes per notebook", "",
             "Wall time of the notebook with its runs present (`proxiqa-lab run-notebooks --profile lab`), and the",
             "training time recorded by the runs it is first to need (`run.json`, on this machine).", "",
             "| notebook | notebook wall time | runs it adds | their training time | not complete |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        wall_s = "not run" if r["wall_s"] is None else f"{r['wall_s']:.1f} s"
        train = f"{r['train_seconds'] / 60:.1f} min" if r["new_runs"] else "none"
        lines.append(f"| {r['notebook']} | {wall_s} | {r['new_runs']} | {train} | {', '.join(r['missing']) or ''} |")
    atomic_write_text(out / "runtimes.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    if any(r["missing"] for r in rows) or any(r["wall_s"] is None or math.isnan(r["wall_s"]) for r in rows):
        print("\nsome notebooks have not run in the lab profile, or some of their runs are not complete")


if __name__ == "__main__":
    main()
