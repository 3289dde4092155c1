"""Compact copies of trained runs: the shipped zoo, and archives an instructor hands a class.

:func:`pack_run` copies a run folder with compact checkpoints (float16, no optimiser state) and
records each file's sha256. :func:`export_runs` packs every complete run of a runs folder into
one ``.tar`` with a ``manifest.json``; :func:`~proxiqa_lab.zoo.importing.import_archive` checks such
an archive, as untrusted input, and only then moves its runs into ``runs/``, next to the runs
already there, which it never replaces. :func:`ship` writes runs into the zoo and its registry.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from proxiqa_lab.errors import ZooError
from proxiqa_lab.fileio import atomic_write_text
from proxiqa_lab.zoo.registry import ZooModel

__all__ = ["ARCHIVE_FORMAT", "export_runs", "model_entry", "pack_run", "ship", "ship_rd_cache",
           "trained_runs"]

#: ``manifest.json``'s ``format`` in an archive of runs.
ARCHIVE_FORMAT = "proxiqa-lab runs archive 1"
#: The plain files of a run folder that travel with it.
RUN_FILES = ("config.json", "run.json", "log.csv")
#: Its checkpoints, stored compact.
RUN_CHECKPOINTS = ("model.pt", "proxy.pt")
#: A pretrained proxy is one file, ``runs/<profile>/<name>.pt``; packed, it is ``<name>/proxy.pt``.
PROXY_PREFIX = "pretrained-proxy-"


def _digest(path: Path) -> dict:
    from proxiqa_lab.data.registry import sha256_file

    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def trained_runs(runs_dir: str | os.PathLike) -> list[Path]:
    """The complete runs of ``runs_dir`` (run folders, and pretrained proxies' ``.pt`` files), sorted."""
    from proxiqa_lab.training.runs import is_complete

    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ZooError(f"{str(runs_dir)!r} is not a folder; give a runs folder such as runs/lab")
    found = [p for p in runs_dir.iterdir() if p.is_dir() and is_complete(p)]
    found += [p for p in runs_dir.glob(f"{PROXY_PREFIX}*.pt") if p.is_file()]
    return sorted(found)


def pack_run(source: str | os.PathLike, dest: str | os.PathLike, steps=None) -> dict:
    """Copy a complete run (or a pretrained proxy's file) to the folder ``dest``, checkpoints made compact.

    Args:
        source: a run folder, or a pretrained proxy's ``.pt`` file.
        dest: the new folder (must not exist).
        steps: the kept steps whose ``checkpoints/step_<K>.pt`` go along (``None``: all of them).

    Returns:
        The files written: path in ``dest`` -> ``{"sha256", "size"}``.
    """
    from proxiqa_lab.training.runs import is_complete
    from proxiqa_lab.models.compact import write_compact

    source, dest = Path(source), Path(dest)
    if dest.exists():
        raise ZooError(f"{str(dest)!r} already exists; nothing is overwritten")
    dest.mkdir(parents=True)
    if source.is_file():
        write_compact(source, dest / "proxy.pt")
    else:
        if not is_complete(source):
            raise ZooError(f"{str(source)!r} is not a complete training run (run.json says it has not finished)")
        for name in RUN_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, dest / name)
        _relative_paths(dest / "config.json")
        for name in RUN_CHECKPOINTS:
            if (source / name).is_file():
                write_compact(source / name, dest / name)
        for kept in sorted((source / "checkpoints").glob("step_*.pt")):
            if steps is None or int(kept.stem.split("_")[1]) in steps:
                (dest / "checkpoints").mkdir(exist_ok=True)
                write_compact(kept, dest / "checkpoints" / kept.name)
    return {p.relative_to(dest).as_posix(): _digest(p) for p in sorted(dest.rglob("*")) if p.is_file()}


def _relative_paths(config_file: Path) -> None:
    """The paths a run's config names (the model it started from, its proxy), relative to the project root
    when they lie under it: they name the runs, not the machine that trained them."""
    from proxiqa_lab.paths import project_root

    config = json.loads(config_file.read_text())
    root = project_root().resolve()
    for key in ("init_checkpoint", "proxy_init"):
        if config.get(key) and Path(config[key]).is_absolute() and Path(config[key]).resolve().is_relative_to(root):
            config[key] = Path(config[key]).resolve().relative_to(root).as_posix()
    atomic_write_text(config_file, json.dumps(config, indent=2))


def model_entry(packed: str | os.PathLike, profile: str, files: dict, notebooks=()) -> ZooModel:
    """The registry entry of a packed run (its folder name is the run's name)."""
    packed = Path(packed)
    if not (packed / "config.json").is_file():  # a pretrained proxy
        from proxiqa_lab.models.checkpoint import read_checkpoint

        extra = read_checkpoint(packed / "proxy.pt")
        report = extra.get("report") or {}
        batches = -(-int(report.get("n_train") or 0) // int(report.get("batch_size") or 1))
        return ZooModel(packed.name, profile, "proxiqa", f"pretrain:{report.get('metric', extra.get('metric'))}",
                        None, None, int(report.get("epochs") or 0) * batches, None, tuple(notebooks),
                        report.get("train_seconds"), files)
    config = json.loads((packed / "config.json").read_text())
    meta = json.loads((packed / "run.json").read_text())
    objective = config["objective"]
    uses_alpha = objective.startswith(("proxy", "pretrained-proxy", "direct")) or objective == "ssim+ld"
    init = config.get("init_checkpoint")
    return ZooModel(packed.name, profile, config["architecture"], objective, float(config["lmbda"]),
                    float(config["alpha"]) if uses_alpha else None, int(meta.get("step", config["steps"])),
                    Path(init).parent.name if init else None, tuple(notebooks),
                    meta.get("train_seconds"), files)


def _packed_name(source: Path) -> str:
    return source.stem if source.is_file() else source.name


def export_runs(runs_dir: str | os.PathLike, out: str | os.PathLike, names=None,
                final_only: bool = False) -> list[ZooModel]:
    """Pack the complete runs of ``runs_dir`` (e.g. ``runs/lab``) into the archive ``out`` (a new ``.tar``).

    Args:
        runs_dir: a profile's runs folder; its name is the profile the runs are imported into.
        out: the archive to write; an existing file is never overwritten.
        names: only these runs (``None``: every complete one).
        final_only: leave out the kept step checkpoints (``checkpoints/step_<K>.pt``).

    Returns:
        The archive's models, as its manifest lists them.
    """
    runs_dir, out = Path(runs_dir), Path(out)
    if out.exists():
        raise ZooError(f"{str(out)!r} already exists; nothing is overwritten, pick a new file name")
    sources = trained_runs(runs_dir)
    if names is not None:
        wanted = set(names)
        missing = sorted(wanted - {_packed_name(s) for s in sources})
        if missing:
            raise ZooError(f"{str(runs_dir)!r} has no complete run called {missing}")
        sources = [s for s in sources if _packed_name(s) in wanted]
    if not sources:
        raise ZooError(f"{str(runs_dir)!r} holds no complete training run to export")
    profile = runs_dir.name
    models = []
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        for source in sources:
            packed = Path(tmp) / profile / _packed_name(source)
            models.append(model_entry(packed, profile, pack_run(source, packed, steps=() if final_only else None)))
        manifest = {"format": ARCHIVE_FORMAT, "profile": profile, "models": [m.to_dict() for m in models]}
        for m in manifest["models"]:
            m.pop("path")  # where it lands depends on the machine that imports it
        partial = out.with_name(f".{out.name}.partial")
        try:
            with tarfile.open(partial, "w") as tar:
                data = json.dumps(manifest, indent=1).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                for model in models:
                    for rel in model.files:
                        tar.add(Path(tmp) / profile / model.name / rel, f"{profile}/{model.name}/{rel}",
                                recursive=False)
            os.replace(partial, out)
        except BaseException:  # a full disk or an interrupt leaves no partial archive behind
            partial.unlink(missing_ok=True)
            raise
    return models


def ship(sources, profile: str = "lab", notebooks: dict | None = None, steps: dict | None = None,
         zoo: str | os.PathLike | None = None) -> list[ZooModel]:
    """Add runs to the zoo: pack each into ``<zoo>/<profile>/<name>/`` and list it in ``registry.json``.

    A run the zoo already has is left as it is (remove its folder and entry to ship it again), but for
    the notebooks its entry lists, which ``notebooks`` brings up to date for every run it names.

    Args:
        sources: run folders (and pretrained proxies' ``.pt`` files).
        profile: the profile they belong to.
        notebooks: run name -> the notebooks that use it.
        steps: run name -> the kept steps to ship (default: none, only ``model.pt``).
        zoo: the zoo folder (default: :func:`~proxiqa_lab.zoo.registry.zoo_root`).

    Returns:
        The models added.
    """
    from proxiqa_lab.zoo.registry import load_registry, rd_cache_files, write_registry, zoo_root

    root = Path(zoo) if zoo is not None else zoo_root()
    registry = root / "registry.json"
    models = [dataclasses.replace(m, notebooks=tuple(notebooks[m.name]))
              if notebooks and m.profile == profile and m.name in notebooks else m for m in load_registry(registry)]
    have = {(m.profile, m.name) for m in models}
    added = []
    for source in map(Path, sources):
        name = _packed_name(source)
        if (profile, name) in have:
            continue
        packed = root / profile / name
        files = pack_run(source, packed, steps=(steps or {}).get(name, ()))
        added.append(model_entry(packed, profile, files, (notebooks or {}).get(name, ())))
    write_registry(models + added, rd_cache_files(registry), registry)
    return added


def ship_rd_cache(cache_dir: str | os.PathLike, zoo: str | os.PathLike | None = None) -> int:
    """Copy the classical codecs' RD points of ``cache_dir`` (e.g. ``runs/rd_cache``) into the zoo and its
    registry, so a fresh clone reads them instead of running the encoders. Returns the files added."""
    from proxiqa_lab.zoo.registry import load_registry, rd_cache_files, write_registry, zoo_root

    root = Path(zoo) if zoo is not None else zoo_root()
    registry = root / "registry.json"
    files = rd_cache_files(registry)
    added = 0
    for src in sorted(Path(cache_dir).glob("*/*.json")):
        rel = src.relative_to(cache_dir).as_posix()
        dest = root / "rd_cache" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        added += rel not in files
        files[rel] = _digest(dest)
    write_registry(load_registry(registry), files, registry)
    return added
