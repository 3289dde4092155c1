"""The shipped models: ``registry.json`` lists every file of the zoo with its sha256, as the datasets are.

The zoo holds trained runs in the layout of a run folder (``config.json``, ``run.json``,
``log.csv``, ``model.pt``, ``proxy.pt``, kept ``checkpoints/step_<K>.pt``), with compact
checkpoints (:mod:`proxiqa_lab.models.compact`), under ``proxiqa_lab/zoo/<profile>/<run>/``. A
notebook that needs a run it does not find complete in ``runs/`` uses the shipped one, after
:func:`shipped_run` has checked every file of it against the registry: a file that does not
match is refused with :class:`~proxiqa_lab.errors.ZooError`, and never used.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from proxiqa_lab.errors import ZooError

__all__ = ["REGISTRY_JSON", "ZOO_ROOT", "ZooModel", "find_model", "load_registry", "rd_cache_files",
           "shipped_rd_file", "shipped_run", "verify", "write_registry", "zoo_root"]

#: ``registry.json``'s ``format``.
REGISTRY_FORMAT = "proxiqa-lab zoo 1"

ZOO_ROOT = Path(__file__).parent
REGISTRY_JSON = ZOO_ROOT / "registry.json"


def zoo_root() -> Path:
    """Where the shipped runs live: ``$PROXIQA_LAB_ZOO``, else the package's ``zoo/`` folder."""
    return Path(os.environ.get("PROXIQA_LAB_ZOO") or ZOO_ROOT)


def registry_path() -> Path:
    return zoo_root() / "registry.json"


@dataclass(frozen=True)
class ZooModel:
    """One shipped run.

    Attributes:
        name: its folder name, as the notebooks name the run (``bls64-proxy_vmaf-lmbda0.025-alpha0.5-ft``).
        profile: the profile it was trained in (its folder under the zoo and under ``runs/``).
        architecture: ``bls``, ``bmshj``, or ``proxiqa`` for a pretrained proxy.
        objective: its training objective (``pretrain:vmaf`` for a pretrained proxy).
        lmbda, alpha: λ and α of eq. (10); α is ``None`` for objectives without a metric term.
        steps: training steps.
        init: the ``name`` of the zoo model it was fine-tuned from, or ``None``.
        notebooks: the notebooks that use it.
        train_seconds: training time it records (single-threaded, on the machine that trained it).
        files: path in the run folder -> ``{"sha256", "size"}``.
    """

    name: str
    profile: str
    architecture: str
    objective: str
    lmbda: float | None
    alpha: float | None
    steps: int
    init: str | None
    notebooks: tuple[str, ...] = ()
    train_seconds: float | None = None
    files: dict = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """The run folder (a pretrained proxy's folder holds its one file)."""
        return zoo_root() / self.profile / self.name

    @property
    def path(self) -> Path:
        """The checkpoint that ``encode``, ``decode`` and ``evaluate --learned`` take (a proxy's file for a proxy)."""
        return self.folder / ("model.pt" if "model.pt" in self.files else "proxy.pt")

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.files.values())

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(notebooks=list(self.notebooks), path=str(self.path), sha256=self.files[self.path.name]["sha256"],
                   size=self.size)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ZooModel:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: (tuple(v) if k == "notebooks" else v) for k, v in data.items() if k in names})


def _read_registry(path: Path) -> dict:
    if not path.is_file():
        return {"models": [], "rd_cache": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data.get("models"), list):
            raise ValueError("no list of models")
        return data
    except (ValueError, AttributeError) as err:
        raise ZooError(f"the zoo registry {str(path)!r} is unreadable ({err}); restore it from the repository "
                       f"(git checkout -- proxiqa_lab/zoo/registry.json)") from None


def load_registry(path: str | os.PathLike | None = None) -> list[ZooModel]:
    """The shipped models, in the order the registry lists them (an empty list when there is no registry)."""
    path = Path(path) if path else registry_path()
    try:
        return [ZooModel.from_dict(m) for m in _read_registry(path)["models"]]
    except (KeyError, TypeError) as err:
        raise ZooError(f"the zoo registry {str(path)!r} has a malformed model entry ({err}); restore it from the "
                       f"repository (git checkout -- proxiqa_lab/zoo/registry.json)") from None


def rd_cache_files(path: str | os.PathLike | None = None) -> dict:
    """The shipped RD points of classical codecs: path under ``rd_cache/`` -> ``{"sha256", "size"}``."""
    return dict(_read_registry(Path(path) if path else registry_path()).get("rd_cache", {}))


def write_registry(models: list[ZooModel], rd_cache: dict, path: str | os.PathLike | None = None) -> Path:
    """Write ``registry.json``: the models (their files with sha256) and the shipped RD points."""
    from proxiqa_lab.fileio import atomic_write_text

    entries = []
    for m in models:
        entry = m.to_dict()
        for derived in ("path", "sha256", "size"):  # computed from the files when read
            entry.pop(derived)
        entries.append(entry)
    data = {"format": REGISTRY_FORMAT,
            "about": "Trained runs shipped with the kit, and classical codecs' RD points; every file with its "
                     "sha256 (proxiqa-lab zoo verify).",
            "models": entries, "rd_cache": dict(sorted(rd_cache.items()))}
    return atomic_write_text(Path(path) if path else registry_path(), json.dumps(data, indent=1) + "\n")


def shipped_rd_file(rel: str) -> Path | None:
    """The shipped RD cache file ``rel`` (``<codec key>/<image>.json``) when it is registered and matches its
    sha256; ``None`` otherwise (the points are then measured)."""
    import warnings

    from proxiqa_lab.data.registry import sha256_file

    expected = rd_cache_files().get(rel)
    path = zoo_root() / "rd_cache" / rel
    if expected is None or not path.is_file():
        return None
    if path.stat().st_size != int(expected["size"]) or sha256_file(path) != expected["sha256"]:
        warnings.warn(f"the shipped RD points {path} do not match their sha256 (altered or damaged); they are "
                      f"not used, the codec runs instead", stacklevel=3)
        return None
    return path


def find_model(name: str, profile: str | None = None) -> ZooModel | None:
    """The shipped model called ``name`` (in ``profile``, when given), or ``None``."""
    for model in load_registry():
        if model.name == name and (profile is None or model.profile == profile):
            return model
    return None


def verify(models: list[ZooModel] | None = None) -> list[str]:
    """Check every file of ``models`` (default: the whole zoo) against its sha256.

    Returns:
        One line per problem (a missing file, a size or sha256 that does not match); empty when
        every file matches.
    """
    from proxiqa_lab.data.registry import sha256_file

    problems = []
    if models is None:
        for rel, expected in rd_cache_files().items():
            path = zoo_root() / "rd_cache" / rel
            if not path.is_file() or path.stat().st_size != int(expected["size"]) or \
                    sha256_file(path) != expected["sha256"]:
                problems.append(f"rd_cache: {rel} is missing or does not match its sha256 ({path})")
    for model in load_registry() if models is None else models:
        for rel, expected in model.files.items():
            path = model.folder / rel
            if not path.is_file():
                problems.append(f"{model.name}: {rel} is missing ({path})")
            elif path.stat().st_size != int(expected["size"]):
                problems.append(f"{model.name}: {rel} has {path.stat().st_size:,} bytes, the registry says "
                                f"{int(expected['size']):,} ({path})")
            elif sha256_file(path) != expected["sha256"]:
                problems.append(f"{model.name}: {rel} does not match its sha256 ({path})")
    return problems


def shipped_run(name: str, profile: str) -> Path | None:
    """The shipped run folder called ``name``, every file checked against the registry; ``None`` when the
    zoo has no such run.

    Raises:
        ZooError: when a file of that run is missing or does not match its sha256; the run is not used.
    """
    model = find_model(name, profile)
    if model is None:
        return None
    problems = verify([model])
    if problems:
        raise ZooError("the shipped run " + repr(name) + " is refused, a file of it is not the one the zoo "
                       "registered (altered or damaged): " + "; ".join(problems) + ". Restore it with "
                       "`git checkout -- proxiqa_lab/zoo`, or train the run yourself (TRAIN = \"retrain\")")
    return model.folder
