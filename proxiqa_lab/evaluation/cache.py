"""A disk cache of RD points of deterministic codecs, so that reruns skip their encodes.

A classical codec's RD point on an image depends only on the codec's settings, the encoder
build, the image's pixels, the target rate and the metric engine. :class:`RDCache` keeps the
rows :func:`~proxiqa_lab.evaluation.evaluate` computes for such codecs, one JSON file per
(codec key, image), and gives them back when every point and metric asked for is there. The
HEVC rate search alone costs minutes per Kodak image on a laptop, so the lab profile's
notebook 04 reruns in a fraction of its first run.

Keys are :meth:`~proxiqa_lab.classical.ClassicalCodec.cache_key` (class, settings, encoder
libraries' versions) plus the kit's version, which covers the metric engine's options; a change
to any of them starts a new folder. Learned codecs are never cached: their checkpoints change
as training goes on. Cached rows keep the ``encode_s``/``decode_s`` of the run that measured
them (notebook 08 measures speed on its own).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path

from proxiqa_lab.fileio import atomic_write_text


class RDCache:
    """RD points of deterministic codecs under ``root``, one folder per codec key.

    Args:
        root: cache folder, created on first write (default: ``runs/rd_cache``, see
            :meth:`default`).

    >>> cache = RDCache.default()
    >>> df = evaluate(get_codec("hevc444"), images, cache=cache)  # encodes once; reruns read the cache
    """

    def __init__(self, root: str | os.PathLike, shipped: bool = False) -> None:
        self.root = Path(root)
        self.shipped = shipped

    @classmethod
    def default(cls) -> RDCache:
        """``$PROXIQA_LAB_RUNS/rd_cache`` (``./runs/rd_cache`` by default), falling back on the points
        shipped with the zoo (:func:`proxiqa_lab.zoo.registry.shipped_rd_file`, checked against sha256)."""
        from proxiqa_lab.paths import runs_root

        return cls(runs_root() / "rd_cache", shipped=True)

    def __repr__(self) -> str:
        return f"RDCache({str(self.root)!r})"

    @staticmethod
    def key_of(codec) -> dict | None:
        """The codec's full cache key, or None for a codec that cannot be cached."""
        key = getattr(codec, "cache_key", None)
        if key is None:
            return None
        from proxiqa_lab import __version__

        return {**key(), "kit": __version__}

    @staticmethod
    def _canonical(key: dict) -> str:
        return json.dumps(key, sort_keys=True, default=str)

    def _path(self, key: dict, image_key: str) -> Path:
        digest = hashlib.sha256(self._canonical(key).encode()).hexdigest()[:16]
        return self.root / f"{key.get('name', 'codec')}-{digest}" / f"{image_key}.json"

    def _read(self, path: Path, key: dict) -> list[dict]:
        if not path.is_file():
            return []
        try:
            doc = json.loads(path.read_text())
            if self._canonical(doc["key"]) != self._canonical(key):
                raise ValueError("its key differs from the codec's")
            rows = doc["rows"]
            if not all(isinstance(r, dict) and "point" in r and "bpp" in r for r in rows):
                raise ValueError("rows without point or bpp")
            return rows
        except (OSError, ValueError, KeyError, TypeError) as err:
            warnings.warn(f"ignoring the unreadable RD cache file {path} ({err}); its points are measured again",
                          stacklevel=3)
            return []

    def get(self, key: dict, image_key: str, points, metrics) -> list[dict] | None:
        """The cached rows of ``points`` (in that order) with every metric, or None if any is missing."""
        rows = self._get(self._path(key, image_key), key, points, metrics)
        if rows is None and self.shipped:
            from proxiqa_lab.zoo.registry import shipped_rd_file

            path = self._path(key, image_key)
            shipped = shipped_rd_file(path.relative_to(self.root).as_posix())
            rows = self._get(shipped, key, points, metrics) if shipped is not None else None
        return rows

    def _get(self, path: Path, key: dict, points, metrics) -> list[dict] | None:
        by_point = {float(r["point"]): r for r in self._read(path, key)}
        rows = []
        for point in points:
            row = by_point.get(float(point))
            if row is None or not all(isinstance(row.get(m), (int, float)) and math.isfinite(row[m])
                                      for m in metrics):
                return None
            rows.append(row)
        return rows

    def put(self, key: dict, image_key: str, rows: list[dict]) -> Path:
        """Store ``rows`` (one per point), merged with the rows already cached for other points."""
        path = self._path(key, image_key)
        merged = {float(r["point"]): r for r in self._read(path, key)}
        for row in rows:
            old = merged.get(float(row["point"]), {})
            if old.get("bpp") != row["bpp"]:  # another bitstream: its scores do not apply
                old = {}
            merged[float(row["point"])] = {**old, **row}
        doc = {"key": key, "rows": [merged[p] for p in sorted(merged)]}
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, json.dumps(doc, sort_keys=True, default=str, indent=1))
