"""Dataset registry: every file the kit uses, with its sha256 and where it comes from.

Each dataset maps relative paths to sha256 digests (``registry.json``, shipped with the
package). Files are found under a data root, copied from a local mirror, or downloaded
from their public homes:

- ``kodak``: one URL per image on r0k.us.
- ``bsds500``: the BSDS500 tarball; only the registered images are extracted.
- ``vmaf_models``: the ``model/`` folder of the Netflix ``vmaf`` GitHub repository.
- ``unsplash_x4`` and ``wikipedia24`` are processed derivatives (resized copies) with no
  public home of their own: they come only from a mirror.

Credit and licence files (``RIGHTS.USE.txt``, ``LICENSE``, ``SOURCES.md``) are registered
as ``extras``: copied along when the source has them, never required.

Rebuild ``registry.json`` from a mirror with ``python -m proxiqa_lab.data.registry MIRROR``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DATASETS",
    "Dataset",
    "IMAGE_SUFFIXES",
    "build_registry",
    "data_root",
    "mirror_root",
    "sha256_file",
]

#: File suffixes counted as images by :meth:`Dataset.images`.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm")
#: Credit and licence files kept next to the data when the source has them.
CREDIT_FILES = ("RIGHTS.USE.txt", "LICENSE", "SOURCES.md")

REGISTRY_JSON = Path(__file__).with_name("registry.json")
BSDS500_URL = (
    "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"
)
BSDS500_MEMBER_PREFIX = "BSR/BSDS500/data/images/"
KODAK_URL = "http://r0k.us/graphics/kodak/kodak/{file}"
VMAF_URL = "https://raw.githubusercontent.com/Netflix/vmaf/master/{file}"


@dataclass(frozen=True)
class Dataset:
    """One registered dataset.

    Attributes:
        name: registry key, also the folder name under the data root.
        files: relative path -> sha256 of every data file (images or model files).
        urls: relative path -> public URL; empty when the data comes only from a mirror.
        description: one line on what the data is and what it is for.
        licence: terms of use, with where the credit file lives.
        sizes: relative path -> size in bytes (a cheap presence check).
        extras: relative path -> sha256 of credit/licence files (optional to fetch).
        archive_members: relative path -> member name inside the archive its URL points to.
        splits: named subsets (folder prefixes), e.g. bsds500's train/val/test.
        mirror_only_note: why the data has no public URL (empty when it has one).
    """

    name: str
    files: dict[str, str]
    urls: dict[str, str]
    description: str
    licence: str
    sizes: dict[str, int] = field(default_factory=dict)
    extras: dict[str, str] = field(default_factory=dict)
    archive_members: dict[str, str] = field(default_factory=dict)
    splits: tuple[str, ...] = ()
    mirror_only_note: str = ""

    @property
    def downloadable(self) -> bool:
        """True when every data file has a public URL."""
        return bool(self.files) and all(rel in self.urls for rel in self.files)

    @property
    def num_bytes(self) -> int:
        return sum(self.sizes.values())

    def images(self, split: str | None = None) -> list[str]:
        """Sorted relative paths of the data files, optionally of one split."""
        if split is not None:
            if split not in self.splits:
                allowed = ", ".join(self.splits) if self.splits else "none (this dataset has no splits)"
                raise ValueError(
                    f"dataset {self.name!r} has no split {split!r}; allowed splits: {allowed}"
                )
            return sorted(rel for rel in self.files if rel.startswith(f"{split}/"))
        return sorted(self.files)


# Metadata that is not a checksum: descriptions, licences and URL rules.
_METADATA: dict[str, dict] = {
    "kodak": {
        "description": "Kodak Lossless True Color Image Suite: 24 RGB images, 768x512 or 512x768 "
        "(evaluation set of the paper: Tables I, II, IV; Figs. 6, 8-11).",
        "licence": "Free use for any purpose associated with electronic imaging; credit the "
        "photographers (kodak/RIGHTS.USE.txt).",
    },
    "bsds500": {
        "description": "Berkeley Segmentation Dataset BSDS500: 200 train / 100 val / 200 test "
        "JPEGs, 481x321 or 321x481 (train+val are training sources; test is a third test set).",
        "licence": "Research and education use (Berkeley Segmentation Data Set and Benchmarks 500).",
        "splits": ("train", "val", "test"),
    },
    "unsplash_x4": {
        "description": "30 high-resolution Unsplash photos reduced 4x with a box filter (removes "
        "JPEG noise), PNG: training sources.",
        "licence": "Unsplash licence (free use).",
        "mirror_only_note": "unsplash_x4 holds processed derivatives (Unsplash photos reduced 4x) "
        "that have no public home of their own",
    },
    "wikipedia24": {
        "description": "24 clean photographs of about 1-1.4 megapixels, downsampled from very high "
        "resolution Wikimedia Commons JPEGs: a second evaluation set with larger images.",
        "licence": "Mostly Creative Commons; attribution per wikipedia24/SOURCES.md.",
        "mirror_only_note": "wikipedia24 holds processed derivatives (downsampled Wikimedia Commons "
        "photos) that have no public home of their own; wikipedia24/SOURCES.md lists each original, "
        "in file order",
    },
    "vmaf_models": {
        "description": "Netflix VMAF model files vmaf_v0.6.1, vmaf_v0.6.1neg and vmaf_4k_v0.6.1 "
        "(JSON); libvmaf also has v0.6.1 and v0.6.1neg built in.",
        "licence": "BSD-2-Clause-Patent (vmaf_models/LICENSE).",
    },
}


def _urls(name: str, rel_paths: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Public URLs (and archive member names) of a dataset's files."""
    if name == "kodak":
        return {rel: KODAK_URL.format(file=rel) for rel in rel_paths if rel.startswith("kodim")}, {}
    if name == "bsds500":
        images = [rel for rel in rel_paths if rel.lower().endswith(IMAGE_SUFFIXES)]
        return (
            {rel: BSDS500_URL for rel in images},
            {rel: BSDS500_MEMBER_PREFIX + rel for rel in images},
        )
    if name == "vmaf_models":
        return {
            rel: VMAF_URL.format(file=rel if rel == "LICENSE" else f"model/{rel}")
            for rel in rel_paths
        }, {}
    return {}, {}


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _read_sha256sums(path: Path) -> dict[str, str]:
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            rel = rel.lstrip("*")
            sums[rel[2:] if rel.startswith("./") else rel] = digest.lower()
    return sums


def build_registry(mirror: str | os.PathLike) -> dict:
    """Checksums and sizes of every registered dataset found in a mirror folder.

    Where the mirror has a ``SHA256SUMS`` file, the files it lists must be exactly the data
    files found, with matching digests.

    Args:
        mirror: folder holding one sub-folder per dataset.

    Returns:
        ``{name: {"files": {rel: {"sha256", "size"}}, "extras": {rel: {...}}}}``, the content
        of ``registry.json``.
    """
    mirror = Path(mirror)
    registry = {}
    for name in _METADATA:
        folder = mirror / name
        if not folder.is_dir():
            raise FileNotFoundError(f"mirror {mirror} has no folder {name!r}")
        entry: dict[str, dict] = {"files": {}, "extras": {}}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            if rel == "SHA256SUMS" or rel.startswith("."):
                continue
            kind = "extras" if rel in CREDIT_FILES else "files"
            entry[kind][rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
        sums_file = folder / "SHA256SUMS"
        if sums_file.exists():
            sums = _read_sha256sums(sums_file)
            found = {rel: info["sha256"] for rel, info in entry["files"].items()}
            if sums != found:
                raise ValueError(f"{sums_file} does not match the files in {folder}")
        registry[name] = entry
    return registry


def _load_datasets() -> dict[str, Dataset]:
    raw = json.loads(REGISTRY_JSON.read_text())
    datasets = {}
    for name, meta in _METADATA.items():
        entry = raw[name]
        rels = list(entry["files"]) + list(entry["extras"])
        urls, members = _urls(name, rels)
        datasets[name] = Dataset(
            name=name,
            files={rel: info["sha256"] for rel, info in entry["files"].items()},
            urls=urls,
            description=meta["description"],
            licence=meta["licence"],
            sizes={rel: info["size"] for rel, info in entry["files"].items()},
            extras={rel: info["sha256"] for rel, info in entry["extras"].items()},
            archive_members=members,
            splits=meta.get("splits", ()),
            mirror_only_note=meta.get("mirror_only_note", ""),
        )
    return datasets


#: Registry name -> :class:`Dataset`.
DATASETS: dict[str, Dataset] = _load_datasets() if REGISTRY_JSON.exists() else {}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Folder holding the datasets: ``root``, else ``$PROXIQA_LAB_DATA``, else ``<project root>/data``
    (:func:`proxiqa_lab.paths.project_root`)."""
    if root is None:
        from proxiqa_lab.paths import project_root

        root = os.environ.get("PROXIQA_LAB_DATA") or project_root() / "data"
    return Path(root).expanduser()


def mirror_root(mirror: str | os.PathLike | None = None) -> str | None:
    """Mirror to copy from: ``mirror``, else ``$PROXIQA_LAB_MIRROR``, else None (download).

    A mirror is a folder (or an ``http(s)://`` / ``file://`` URL) with one sub-folder per
    dataset, laid out like the data root.
    """
    if mirror is None:
        mirror = os.environ.get("PROXIQA_LAB_MIRROR") or None
    if mirror is None:
        return None
    mirror = os.fspath(mirror)
    if "://" in mirror:
        return mirror.rstrip("/")
    return str(Path(mirror).expanduser())


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m proxiqa_lab.data.registry MIRROR")
    REGISTRY_JSON.write_text(json.dumps(build_registry(sys.argv[1]), indent=1, sort_keys=True) + "\n")
    print(f"wrote {REGISTRY_JSON}")
