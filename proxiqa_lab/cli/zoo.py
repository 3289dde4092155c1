"""``proxiqa-lab zoo``: the trained models shipped with the kit, and archives of your own runs.

    proxiqa-lab zoo list [--json]
    proxiqa-lab zoo verify
    proxiqa-lab zoo export RUNS_DIR OUT.tar [--run NAME ...]
    proxiqa-lab zoo import ARCHIVE [--runs DIR]
    proxiqa-lab zoo train [--profile lab] [--jobs 2] [--only 02,07]
    proxiqa-lab zoo ship [--profile lab]      (maintainers: add complete runs of runs/lab to the zoo)
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="the trained lab models shipped with the kit; export and import runs",
        description="The trained runs shipped with the kit (proxiqa_lab/zoo, every file checked against its "
        "sha256), and archives of trained runs that an instructor hands a class.",
    )
    actions = parser.add_subparsers(dest="zoo_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    listing = actions.add_parser("list", help="one line per shipped model (--json: one object each)")
    listing.add_argument("--json", action="store_true",
                         help="a JSON list: name, architecture, objective, lmbda, alpha, steps, init, path, "
                              "sha256, ...")
    listing.set_defaults(func=_list)

    verify = actions.add_parser("verify", help="check every shipped file against its sha256")
    verify.set_defaults(func=_verify)

    export = actions.add_parser(
        "export", help="pack the complete runs of a runs folder into one archive",
        description="Pack every complete run of RUNS_DIR (e.g. runs/lab) into the new archive OUT (.tar), with "
        "compact checkpoints (float16, no optimiser state), their logs and a manifest of sha256.")
    export.add_argument("runs_dir", metavar="RUNS_DIR", help="a profile's runs folder, e.g. runs/lab")
    export.add_argument("out", metavar="OUT", help="the archive to write (never overwritten)")
    export.add_argument("--run", action="append", metavar="NAME", help="only this run (repeatable)")
    export.add_argument("--final-only", action="store_true",
                        help="only each run's final model, not its kept step checkpoints (a smaller archive)")
    export.set_defaults(func=_export)

    imp = actions.add_parser(
        "import", help="add the runs of an archive to runs/",
        description="Check an archive of `zoo export` against its manifest and add its runs to RUNS/<profile>/. "
        "A corrupt or foreign archive changes nothing; a run that is already there is kept as it is.")
    imp.add_argument("archive", metavar="ARCHIVE")
    imp.add_argument("--runs", metavar="DIR", help="runs root (default: $PROXIQA_LAB_RUNS or ./runs)")
    imp.set_defaults(func=_import)

    train = actions.add_parser(
        "train", help="train the runs the notebooks need, two side by side",
        description="Train every run the notebooks of a profile need (the zoo's runs, for the lab profile) into "
        "runs/<profile>/, each as soon as the model it starts from is complete, in JOBS single-threaded workers. "
        "Complete runs are skipped; interrupted ones resume.")
    train.add_argument("--profile", default="lab", help="the profile (default: lab)")
    train.add_argument("--jobs", type=int, default=2, help="runs trained side by side (default: 2)")
    train.add_argument("--only", metavar="NB", help="only the runs of these notebooks, e.g. 02,07")
    train.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    train.add_argument("--list", action="store_true",
                       help="list the runs, and whether each is in runs/, shipped, or still to train, and stop")
    train.set_defaults(func=_train)

    ship = actions.add_parser(
        "ship", help="maintainers: add the complete runs of runs/<profile> to the shipped zoo",
        description="Pack the complete runs that the notebooks of the profile need, and the classical codecs' RD "
        "points of runs/rd_cache, into proxiqa_lab/zoo and its registry. Runs the zoo has already are kept.")
    ship.add_argument("--profile", default="lab", help="the profile (default: lab)")
    ship.set_defaults(func=_ship)


def _list(args: argparse.Namespace) -> int:
    from proxiqa_lab.zoo import load_registry

    models = load_registry()
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=1))
        return 0
    if not models:
        print("the zoo is empty")
        return 0
    print(f"{'name':<52} {'objective':<22} {'lmbda':>7} {'alpha':>5} {'steps':>5} {'MB':>5}  init")
    for m in models:
        alpha = "" if m.alpha is None else f"{m.alpha:g}"
        lmbda = "" if m.lmbda is None else f"{m.lmbda:g}"
        print(f"{m.name:<52} {m.objective:<22} {lmbda:>7} {alpha:>5} {m.steps:>5} {m.size / 1e6:>5.2f}  {m.init or ''}")
    print(f"{len(models)} models, {sum(m.size for m in models) / 1e6:.1f} MB")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from proxiqa_lab.zoo import load_registry, verify

    models = load_registry()
    problems = verify(models)
    for line in problems:
        print(line)
    files = sum(len(m.files) for m in models)
    if problems:
        print(f"{len(problems)} of {files} shipped files do not match the registry; those runs are refused "
              f"(restore them with `git checkout -- proxiqa_lab/zoo`)")
        return 1
    print(f"all {files} files of {len(models)} shipped models match their sha256")
    return 0


def _export(args: argparse.Namespace) -> int:
    from proxiqa_lab.errors import disk_full
    from proxiqa_lab.zoo import export_runs

    try:
        models = export_runs(args.runs_dir, args.out, names=args.run, final_only=args.final_only)
    except (OSError, RuntimeError) as err:
        full = disk_full(err)
        if full is None:
            raise
        raise OSError(full.errno, full.strerror, args.out) from err  # not the name of a file packed on the way
    size = sum(m.size for m in models)
    print(f"wrote {args.out}: {len(models)} runs, {size / 1e6:.1f} MB")
    return 0


def _import(args: argparse.Namespace) -> int:
    from proxiqa_lab.zoo import import_archive

    done = import_archive(args.archive, args.runs)
    for name in done["imported"]:
        print(f"imported {name}")
    for name in done["kept"]:
        print(f"kept     {name} (already there; not replaced)")
    print(f"{len(done['imported'])} runs imported, {len(done['kept'])} kept as they were")
    return 0


def _train(args: argparse.Namespace) -> int:
    from proxiqa_lab.paths import runs_profile
    from proxiqa_lab.zoo.plan import is_complete, notebook_runs, train_plan

    args.profile = runs_profile(args.profile)
    runs = notebook_runs(args.profile)
    if args.only:
        wanted = {n.strip().zfill(2) for n in args.only.split(",") if n.strip()}
        chosen = {r.name for r in runs if wanted & set(r.notebooks)}
        chosen |= {n for r in runs if r.name in chosen for n in r.needs}
        runs = [r for r in runs if r.name in chosen]
    if args.list:
        from proxiqa_lab.zoo.plan import is_shipped

        for r in runs:
            where = ("in runs/" if is_complete(r, args.profile) else
                     "shipped" if is_shipped(r, args.profile) else "to train")
            print(f"{where:<9} {r.name:<60} notebooks {','.join(r.notebooks)}")
        return 0
    train_plan(runs, args.profile, jobs=args.jobs, device=args.device, log=lambda m: print(m, flush=True))
    return 0


def _ship(args: argparse.Namespace) -> int:
    from proxiqa_lab.paths import runs_root
    from proxiqa_lab.zoo import load_registry
    from proxiqa_lab.zoo.archive import ship_rd_cache
    from proxiqa_lab.zoo.plan import ship_complete

    added = ship_complete(args.profile)
    for model in added:
        print(f"shipped {model.name} ({model.size / 1e6:.2f} MB)")
    cache = runs_root() / "rd_cache"
    points = ship_rd_cache(cache) if cache.is_dir() else 0
    models = load_registry()
    print(f"{len(added)} runs and {points} RD point files added; the zoo holds {len(models)} models, "
          f"{sum(m.size for m in models) / 1e6:.1f} MB")
    return 0
