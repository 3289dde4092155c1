"""Importing an archive of runs from someone else: untrusted input, checked before a byte is written.

An archive of :func:`~proxiqa_lab.zoo.archive.export_runs` is a ``.tar`` with a ``manifest.json``
that lists every file of every run with its size and sha256. :func:`import_archive` takes it as
untrusted input, the way :func:`tarfile.data_filter` treats a tar file:

1. **Names.** The profile and run names must be plain folder names, and each file of a run one
   of the names a run folder holds (``config.json``, ``run.json``, ``log.csv``, ``model.pt``,
   ``proxy.pt``, ``checkpoints/step_<K>.pt``): no absolute path, no ``..``, nothing else. Every
   tar member must be a regular file (no link, device, or sparse file) whose name and size are
   exactly those the manifest lists. All of this is checked, while the archive is scanned with
   a bound on the bytes it may declare, before anything is written.
2. **Sizes.** Each file may hold at most :data:`MAX_FILE_BYTES`, the archive :data:`MAX_ARCHIVE_BYTES`,
   and there must be room on the disk for it. Members are copied in chunks against their declared
   size and hashed as they are copied; the first byte past the size stops the import.
3. **Checkpoints.** Every checkpoint is built and loaded (its config bounded and checked against
   its weights first, :func:`~proxiqa_lab.models.load_checkpoint`), and every run folder must be
   complete, before any run moves.

Files are staged in a hidden folder inside the destination, then each new run is moved into
place; a run that is already there is never replaced. Whenever the archive is refused, the
destination is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from proxiqa_lab.errors import CheckpointError, ZooError
from proxiqa_lab.zoo.registry import ZooModel

__all__ = ["MAX_ARCHIVE_BYTES", "MAX_FILE_BYTES", "MAX_MEMBERS", "import_archive"]

#: The most one file of an archive may hold (the kit's largest compact checkpoint is about 150 MB).
MAX_FILE_BYTES = 256 * 2**20
#: The most all the files of an archive may hold together, and the most it may declare.
MAX_ARCHIVE_BYTES = 4 * 2**30
#: The most members an archive may have.
MAX_MEMBERS = 100_000
#: The most ``manifest.json`` may hold.
MAX_MANIFEST_BYTES = 16 * 2**20

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}")
_RUN_FILE = re.compile(r"(config\.json|run\.json|log\.csv|model\.pt|proxy\.pt|checkpoints/step_[0-9]{1,9}\.pt)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


def import_archive(archive: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Check an archive of :func:`~proxiqa_lab.zoo.archive.export_runs` and add its runs to
    ``runs_dir/<profile>/`` (default ``runs/``).

    Every name, size and sha256 is checked against the manifest and the kit's bounds, and every
    checkpoint must load, before any run is moved into place (see the module docstring); a
    corrupt, foreign or hostile archive changes nothing. A run that is already there is kept as
    it is, never replaced.

    Returns:
        ``{"imported": [...], "kept": [...]}``: the runs added, and those left as they were.

    Raises:
        ZooError: when the archive is missing, unreadable, foreign, unsafe, or does not match its manifest.
    """
    from proxiqa_lab.paths import runs_root

    archive = Path(archive)
    if not archive.is_file():
        raise ZooError(f"{str(archive)!r} does not exist (or is not a file)")
    root = Path(runs_dir) if runs_dir is not None else runs_root()
    if root.exists() and not root.is_dir():
        raise ZooError(f"the runs folder {str(root)!r} is a file, not a folder; give a folder with --runs")
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError):
        raise ZooError(f"{str(archive)!r} is not a readable archive: not a tar file, or one that is damaged or cut "
                       f"short") from None
    with tar:
        members = _scan(tar, archive)
        profile, models, expected = _read_manifest(tar, members, archive)
        _match(members, expected, archive)
        target = root / profile
        created = [p for p in (root, target) if not p.exists()]
        try:
            target.mkdir(parents=True, exist_ok=True)
            _check_inside(target, root, archive)
            _check_room(target, sum(int(f["size"]) for f in expected.values()))
            with tempfile.TemporaryDirectory(dir=target, prefix=".import-") as tmp:
                staging = Path(tmp)
                _check_inside(staging, target, archive)
                for name, member in members.items():
                    _copy(tar, member, staging, name, expected[name], archive)
                runs = [_check_run(staging / profile / m.name, archive) for m in models]
                return _move(models, runs, staging / profile, target)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise ZooError(f"disk full while importing {str(archive)!r}: nothing was imported; free space and "
                               f"rerun") from None
            raise
        finally:
            for folder in reversed(created):  # a refused archive leaves the destination as it was
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _scan(tar: tarfile.TarFile, archive: Path) -> dict[str, tarfile.TarInfo]:
    """The archive's members by name, read header by header: the bytes they declare are bounded before
    any member's data is read past, and each must be a regular file with a safe name."""
    members, declared = {}, 0
    try:
        while (member := tar.next()) is not None:
            declared += member.size
            if declared > MAX_ARCHIVE_BYTES or len(members) >= MAX_MEMBERS:
                raise ZooError(f"{str(archive)!r} declares more than {MAX_ARCHIVE_BYTES // 2**30} GiB or "
                               f"{MAX_MEMBERS:,} files; nothing was imported")
            if member.name in members:
                raise ZooError(f"{str(archive)!r} holds {member.name!r} twice; nothing was imported")
            if not member.isreg() or member.issparse() or member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise ZooError(f"{str(archive)!r} holds {member.name!r}, which is a link, a folder or a special "
                               f"file; an archive of runs holds only plain files, nothing was imported")
            if hasattr(tarfile, "data_filter"):  # the standard library's rules for untrusted tar files
                try:
                    tarfile.data_filter(member, "/nonexistent-destination")
                except tarfile.FilterError as err:
                    raise ZooError(f"{str(archive)!r} holds an unsafe member ({err}); nothing was imported") from None
            members[member.name] = member
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ZooError(f"{str(archive)!r} is damaged or cut short ({err}); nothing was imported") from None
    return members


def _read_manifest(tar, members: dict, archive: Path) -> tuple[str, list[ZooModel], dict[str, dict]]:
    """The profile, the models and ``{member name: {"sha256", "size"}}`` that the manifest lists, each
    name checked to be a plain folder name or a run file's name."""
    foreign = f"{str(archive)!r} is not a runs archive of the kit (made by `proxiqa-lab zoo export`)"
    member = members.pop("manifest.json", None)
    if member is None:
        raise ZooError(f"{foreign}: it has no manifest.json")
    if member.size > MAX_MANIFEST_BYTES:
        raise ZooError(f"{foreign}: its manifest.json holds {member.size:,} bytes")
    try:
        manifest = json.loads(tar.extractfile(member).read(MAX_MANIFEST_BYTES))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ZooError(f"{str(archive)!r} is damaged or cut short ({err}); nothing was imported") from None
    except (ValueError, RecursionError) as err:
        raise ZooError(f"{foreign}: its manifest.json is not readable JSON ({type(err).__name__})") from None
    from proxiqa_lab.zoo.archive import ARCHIVE_FORMAT

    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        said = manifest.get("format") if isinstance(manifest, dict) else None
        raise ZooError(f"{foreign}: its manifest says format {str(said)[:80]!r}")
    try:
        profile = manifest["profile"]
        models = [ZooModel.from_dict({**m, "profile": profile}) for m in manifest["models"]]
        files = [(m, rel, f) for m in models for rel, f in m.files.items()]
    except (KeyError, TypeError, AttributeError) as err:
        raise ZooError(f"{str(archive)!r} has a malformed manifest.json ({err})") from None
    bad = [n for n in [profile, *(m.name for m in models)] if not _is_name(n)]
    if bad:
        raise ZooError(f"{str(archive)!r} names runs {str(bad)[:200]}, which are not folder names; nothing was "
                       f"imported")
    if len({m.name for m in models}) != len(models):
        raise ZooError(f"{str(archive)!r} lists a run twice; nothing was imported")
    expected = {}
    for model, rel, digest in files:
        if not isinstance(rel, str) or not _RUN_FILE.fullmatch(rel):
            raise ZooError(f"{str(archive)!r} lists the file {str(rel)[:200]!r} in run {model.name!r}, which is not "
                           f"a file of a run folder; nothing was imported")
        size = digest.get("size") if isinstance(digest, dict) else None
        sha = digest.get("sha256") if isinstance(digest, dict) else None
        if (isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_BYTES
                or not isinstance(sha, str) or not _SHA256.fullmatch(sha)):
            raise ZooError(f"{str(archive)!r} lists {model.name}/{rel} with a size or sha256 that is not valid, or "
                           f"a size over {MAX_FILE_BYTES // 2**20} MiB; nothing was imported")
        expected[f"{profile}/{model.name}/{rel}"] = {"size": size, "sha256": sha}
    if sum(f["size"] for f in expected.values()) > MAX_ARCHIVE_BYTES:
        raise ZooError(f"{str(archive)!r} lists more than {MAX_ARCHIVE_BYTES // 2**30} GiB of files; nothing was "
                       f"imported")
    return profile, models, expected


def _is_name(name) -> bool:
    return isinstance(name, str) and bool(_NAME.fullmatch(name)) and name not in (".", "..")


def _match(members: dict, expected: dict, archive: Path) -> None:
    """Every member is a file the manifest lists, with the size it lists, and none is missing."""
    unexpected = sorted(set(members) - set(expected))
    missing = sorted(set(expected) - set(members))
    if unexpected or missing:
        raise ZooError(f"{str(archive)!r} does not match its manifest (missing {str(missing[:3])[:200]}, not listed "
                       f"{str(unexpected[:3])[:200]}); nothing was imported")
    for name, member in members.items():
        if member.size != expected[name]["size"]:
            raise ZooError(f"{str(archive)!r}: {name} holds {member.size:,} bytes, its manifest says "
                           f"{expected[name]['size']:,}; nothing was imported")


def _check_inside(folder: Path, parent: Path, archive: Path) -> None:
    if not folder.resolve().is_relative_to(parent.resolve()):
        raise ZooError(f"importing {str(archive)!r} would write to {str(folder.resolve())!r}, outside "
                       f"{str(parent)!r} (a link?); nothing was imported")


def _check_room(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + 64 * 2**20:
        raise ZooError(f"not enough free space in {str(folder)!r} to import {needed / 2**20:.1f} MiB (free: "
                       f"{free / 2**20:.1f} MiB); nothing was imported, free space and rerun")


def _copy(tar, member: tarfile.TarInfo, staging: Path, name: str, want: dict, archive: Path) -> None:
    """Copy one member into the staging folder in chunks, hashing it, stopping at its declared size."""
    path = staging.joinpath(*name.split("/"))
    if not path.resolve().is_relative_to(staging.resolve()):  # names were checked; this is the last guard
        raise ZooError(f"{str(archive)!r}: {name!r} resolves outside the staging folder; nothing was imported")
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with tar.extractfile(member) as src, open(path, "xb") as dst:
            while chunk := src.read(min(_CHUNK, want["size"] + 1 - size)):
                size += len(chunk)
                if size > want["size"]:
                    break
                digest.update(chunk)
                dst.write(chunk)
    except (tarfile.TarError, EOFError) as err:
        raise ZooError(f"{str(archive)!r} is damaged or cut short at {name} ({err}); nothing was imported") from None
    if size != want["size"]:
        raise ZooError(f"{str(archive)!r} is damaged or cut short at {name} (it holds other than the {want['size']:,} "
                       f"bytes its manifest says); nothing was imported")
    if digest.hexdigest() != want["sha256"]:
        raise ZooError(f"{str(archive)!r}: {name} does not match its sha256 in the manifest (damaged or altered); "
                       f"nothing was imported")


def _check_run(packed: Path, archive: Path) -> bool:
    """Whether ``packed`` is a pretrained proxy (one ``proxy.pt``) rather than a run folder; every checkpoint of
    it is built and loaded, and a run folder must be complete."""
    from proxiqa_lab.models import load_checkpoint
    from proxiqa_lab.training.runs import is_complete

    is_proxy = not (packed / "config.json").is_file()
    if is_proxy and sorted(p.name for p in packed.iterdir()) != ["proxy.pt"]:
        raise ZooError(f"{str(archive)!r}: {packed.name} is neither a run folder (no config.json) nor a pretrained "
                       f"proxy (one proxy.pt); nothing was imported")
    if not is_proxy:
        try:
            config = json.loads((packed / "config.json").read_text())
        except (ValueError, RecursionError, UnicodeDecodeError):
            config = None
        if not isinstance(config, dict) or not is_complete(packed):
            raise ZooError(f"{str(archive)!r}: {packed.name} is not a complete run (its config.json, run.json or "
                           f"model.pt is missing or unreadable); nothing was imported")
    for checkpoint in sorted(packed.rglob("*.pt")):
        try:
            load_checkpoint(checkpoint, device="cpu")
        except CheckpointError as err:
            raise ZooError(f"{str(archive)!r}: {checkpoint.relative_to(packed.parent)} does not load "
                           f"({err}); nothing was imported") from None
    return is_proxy


def _move(models: list[ZooModel], proxies: list[bool], staged: Path, target: Path) -> dict[str, list[str]]:
    done = {"imported": [], "kept": []}
    for model, is_proxy in zip(models, proxies):
        packed = staged / model.name
        dest = target / (f"{model.name}.pt" if is_proxy else model.name)
        if dest.exists() or dest.is_symlink():
            done["kept"].append(model.name)
            continue
        os.rename(packed / "proxy.pt" if is_proxy else packed, dest)
        done["imported"].append(model.name)
    return done
