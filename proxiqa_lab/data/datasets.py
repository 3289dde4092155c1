"""Local copies of the registered datasets: fetch, verify, locate.

A dataset lives in ``<data root>/<name>/`` with the same relative paths as the registry.
:func:`fetch` copies each file from a mirror (a folder or URL laid out the same way) or
downloads it from its public URL, always to a temporary file that is checked against the
registered sha256 before an atomic rename: a partial or corrupt file is never used, and
one found on disk is replaced. Verified files are recorded with their size and mtime in
``<data root>/<name>/.verified.json``.

What each check guarantees:

* :func:`fetch` (``proxiqa-lab data fetch``) hashes every file it keeps or fetches: a file it
  reports as verified has its registered sha256 now, whatever its size and mtime say.
* :func:`status` (``proxiqa-lab data list``) and :func:`dataset_files` take the fast path: a file
  whose size and mtime match the manifest counts as verified without being read again. That
  catches files that were replaced, truncated or rewritten, but not bytes changed in place with
  the mtime restored. ``status(..., rehash=True)`` (``data list --verify``) reads every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from proxiqa_lab.data.registry import DATASETS, Dataset, data_root, mirror_root
from proxiqa_lab.errors import DataNotFoundError, ProxIQALabError
from proxiqa_lab.fileio import atomic_open

__all__ = [
    "ChecksumError",
    "DatasetStatus",
    "dataset_files",
    "fetch",
    "fetch_command",
    "get_dataset",
    "status",
    "training_files",
]

MANIFEST = ".verified.json"
#: Seconds before a download gives up waiting for the server.
DOWNLOAD_TIMEOUT = 60
_CHUNK = 1 << 20


class ChecksumError(ProxIQALabError, ValueError):
    """A fetched file does not have its registered sha256."""


@dataclass(frozen=True)
class DatasetStatus:
    """How much of a dataset is on disk: ``present`` files exist, ``verified`` match sha256."""

    name: str
    total: int
    present: int
    verified: int

    @property
    def complete(self) -> bool:
        return self.verified == self.total


def get_dataset(name: str | Dataset) -> Dataset:
    """The registered :class:`Dataset` called ``name`` (a Dataset is passed through)."""
    if isinstance(name, Dataset):
        return name
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(DATASETS)}"
        )
    return DATASETS[name]


def fetch_command(name: str, root: str | os.PathLike | None = None) -> str:
    """The exact shell command that fetches dataset ``name`` into ``root``."""
    return f"proxiqa-lab data fetch {name} --root {data_root(root).resolve()}"


# ----------------------------------------------------------------------------- manifest


def _read_manifest(folder: Path) -> dict[str, list]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        return manifest if isinstance(manifest, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: Path, manifest: dict[str, list]) -> None:
    with atomic_open(folder / MANIFEST, "w") as f:
        json.dump(manifest, f, indent=0, sort_keys=True)


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _is_verified(path: Path, rel: str, sha256: str, manifest: dict[str, list], rehash: bool = False) -> bool:
    """True when ``path`` has digest ``sha256``; without ``rehash``, hashes only if size/mtime changed."""
    if not path.is_file():
        return False
    key = _stat_key(path)
    cached = manifest.get(rel)
    if not rehash and cached is not None and cached[:2] == key:
        return cached[2] == sha256
    digest = _hash_file(path)
    manifest[rel] = key + [digest]
    return digest == sha256


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- transfers


def _copy_verified(read: Callable[[], object], dest: Path, sha256: str, source: str) -> None:
    """Stream a readable into a temp file next to ``dest``; rename only if sha256 matches."""
    with atomic_open(dest, "wb") as out:  # raising inside discards the temp file
        digest = hashlib.sha256()
        with read() as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ChecksumError(
                f"{source} has sha256 {digest.hexdigest()}, expected {sha256}: the source is "
                "corrupt or a different version; nothing was written. Refresh the mirror or "
                "download from the public URL (omit --mirror)."
            )


def _open_url(url: str):
    request = urllib.request.Request(url, headers={"User-Agent": "proxiqa-lab"})
    try:
        return urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise DataNotFoundError(
            f"could not download {url}: {err}. Check the internet connection, or copy from a "
            "local mirror with --mirror DIR (or $PROXIQA_LAB_MIRROR)."
        ) from err


def _fetch_one(ds: Dataset, rel: str, sha256: str, dest: Path, mirror: str | None) -> None:
    if mirror is None:
        url = ds.urls[rel]
        _copy_verified(lambda: _open_url(url), dest, sha256, url)
    elif "://" in mirror:
        url = f"{mirror}/{ds.name}/{rel}"
        _copy_verified(lambda: _open_url(url), dest, sha256, url)
    else:
        src = Path(mirror) / ds.name / rel
        if not src.is_file():
            raise DataNotFoundError(
                f"mirror {mirror} has no file {ds.name}/{rel}; point --mirror (or "
                "$PROXIQA_LAB_MIRROR) at a folder holding one sub-folder per dataset"
                + ("" if not ds.downloadable else ", or omit it to download from the public URLs")
            )
        _copy_verified(lambda: open(src, "rb"), dest, sha256, str(src))


def _fetch_from_archive(ds: Dataset, url: str, rels: list[str], folder: Path) -> None:
    """Download the archive at ``url`` once and extract only the registered ``rels``."""
    downloads = folder / ".download"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name
    try:
        # The archive itself has no registered digest: every extracted member is verified.
        with atomic_open(archive, "wb") as out, _open_url(url) as src:
            shutil.copyfileobj(src, out, _CHUNK)
        try:
            tar = tarfile.open(archive)
        except tarfile.TarError as err:
            raise ChecksumError(f"{url} is not a readable tar archive: {err}") from err
        with tar:
            names = set(tar.getnames())
            for rel in rels:
                member = ds.archive_members[rel]
                if member not in names:
                    raise DataNotFoundError(f"archive {url} has no member {member} (for {ds.name}/{rel})")
                _copy_verified(
                    lambda: tar.extractfile(member), folder / rel, ds.files[rel], f"{url}:{member}"
                )
    finally:
        shutil.rmtree(downloads, ignore_errors=True)


def _mirror_only_error(ds: Dataset) -> DataNotFoundError:
    return DataNotFoundError(
        f"{ds.mirror_only_note}, so {ds.name} can only be copied from a mirror: run "
        f"`proxiqa-lab data fetch {ds.name} --mirror DIR` (or set $PROXIQA_LAB_MIRROR) with DIR "
        f"holding {ds.name}/."
    )


# ----------------------------------------------------------------------------- public API


def fetch(
    name: str | Dataset,
    root: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
    rehash: bool = True,
) -> list[Path]:
    """Make sure every file of a dataset is under the data root, verified against sha256.

    Files already present are hashed again and kept when they match; missing, partial or
    corrupt ones are (re)fetched from the mirror or, without one, downloaded from the public URLs.

    Args:
        name: registered dataset name (see ``DATASETS``) or a :class:`Dataset`.
        root: data root (default :func:`data_root`).
        mirror: folder or URL laid out like the data root (default ``$PROXIQA_LAB_MIRROR``;
            None downloads from the public URLs).
        log: called with one summary line when given.
        rehash: read every present file again (``False``: trust files whose size and mtime
            match the manifest, the fast path of :func:`status`).

    Returns:
        Sorted paths of the dataset's data files.

    Raises:
        DataNotFoundError: a file is missing from the mirror, a download failed, or the
            dataset has no public URL and no mirror was given.
        ChecksumError: a fetched file does not match its registered sha256.
    """
    ds = get_dataset(name)
    folder = data_root(root) / ds.name
    mirror = mirror_root(mirror)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(folder)
    todo = [rel for rel in sorted(ds.files)
            if not _is_verified(folder / rel, rel, ds.files[rel], manifest, rehash)]
    if todo and mirror is None and not ds.downloadable:
        _write_manifest(folder, manifest)
        raise _mirror_only_error(ds)
    try:
        archives: dict[str, list[str]] = {}
        for rel in todo:
            if mirror is None and rel in ds.archive_members:
                archives.setdefault(ds.urls[rel], []).append(rel)
            else:
                _fetch_one(ds, rel, ds.files[rel], folder / rel, mirror)
                manifest[rel] = _stat_key(folder / rel) + [ds.files[rel]]
        for url, rels in archives.items():
            if log is not None:
                log(f"{ds.name}: downloading {url} to extract {len(rels)} files ...")
            _fetch_from_archive(ds, url, rels, folder)
            for rel in rels:
                manifest[rel] = _stat_key(folder / rel) + [ds.files[rel]]
        extras = _fetch_extras(ds, folder, mirror, manifest, rehash)
    finally:
        _write_manifest(folder, manifest)
    if log is not None:
        done = f"{len(todo)} fetched from {mirror or 'the public URLs'}" if todo else "all already present"
        credits = f"; credits: {', '.join(extras)}" if extras else ""
        log(f"{ds.name}: {len(ds.files)} files verified in {folder} ({done}{credits})")
    return [folder / rel for rel in ds.images()]


def _fetch_extras(ds: Dataset, folder: Path, mirror: str | None, manifest: dict, rehash: bool = True) -> list[str]:
    """Copy credit/licence files when the source has them; problems only warn."""
    kept = []
    for rel, sha256 in sorted(ds.extras.items()):
        dest = folder / rel
        if _is_verified(dest, rel, sha256, manifest, rehash):
            kept.append(rel)
            continue
        if mirror is None and rel not in ds.urls:
            continue
        if mirror is not None and "://" not in mirror and not (Path(mirror) / ds.name / rel).is_file():
            continue
        try:
            _fetch_one(ds, rel, sha256, dest, mirror)
        except (DataNotFoundError, ChecksumError) as err:
            warnings.warn(f"credit file {ds.name}/{rel} not fetched: {err}", stacklevel=3)
            continue
        manifest[rel] = _stat_key(dest) + [sha256]
        kept.append(rel)
    return kept


def status(name: str | Dataset, root: str | os.PathLike | None = None, rehash: bool = False) -> DatasetStatus:
    """Count the dataset's files present and verified under the data root.

    Without ``rehash`` a file whose size and mtime match the manifest counts as verified
    unread (see the module docstring); with it, every file is hashed.
    """
    ds = get_dataset(name)
    folder = data_root(root) / ds.name
    manifest = _read_manifest(folder)
    before = dict(manifest)
    present = verified = 0
    for rel, sha256 in ds.files.items():
        path = folder / rel
        if path.is_file():
            present += 1
            verified += _is_verified(path, rel, sha256, manifest, rehash)
    if manifest != before and folder.is_dir():
        try:
            _write_manifest(folder, manifest)
        except OSError:
            pass  # a read-only data root is fine: verification just is not cached
    return DatasetStatus(ds.name, len(ds.files), present, verified)


def dataset_files(
    name: str, root: str | os.PathLike | None = None, split: str | None = None
) -> list[Path]:
    """Sorted paths of a dataset's images (bsds500: ``split`` "train", "val" or "test").

    Checks that every file exists with its registered size (a cheap check; ``proxiqa-lab
    data fetch`` verifies sha256).

    Args:
        name: registered dataset name.
        root: data root (default :func:`data_root`).
        split: one split of the dataset, or None for all files.

    Raises:
        DataNotFoundError: files are missing or truncated; the message gives the command
            that fetches them.
    """
    ds = get_dataset(name)
    folder = data_root(root) / ds.name
    rels = ds.images(split)
    bad = []
    for rel in rels:
        path = folder / rel
        try:
            if path.stat().st_size != ds.sizes.get(rel, path.stat().st_size):
                bad.append(rel)
        except OSError:
            bad.append(rel)
    if bad:
        what = f"{len(bad)} of {len(rels)} files" if len(bad) < len(rels) else "all files"
        hint = (
            "add --mirror DIR to copy from a local mirror"
            if ds.downloadable
            else f"{ds.name} comes only from a mirror, so add --mirror DIR"
        )
        raise DataNotFoundError(
            f"dataset {ds.name!r} is missing or incomplete in {folder} ({what}, e.g. {bad[0]}); "
            f"fetch it with `{fetch_command(ds.name, root)}` ({hint}; or set $PROXIQA_LAB_DATA "
            "to the data root that holds it)."
        )
    return [folder / rel for rel in rels]


def training_files(root: str | os.PathLike | None = None) -> list[Path]:
    """Training sources of the paper-style pipeline: bsds500 train+val and unsplash_x4.

    Raises:
        DataNotFoundError: when any of them is missing (the message gives the command).
    """
    return (
        dataset_files("bsds500", root, "train")
        + dataset_files("bsds500", root, "val")
        + dataset_files("unsplash_x4", root)
    )
