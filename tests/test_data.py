"""Data layer: registry, fetch (mirror and URL), dataset lookup, image I/O."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tarfile
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import proxiqa_lab.data.datasets as datasets_module
from proxiqa_lab.cli import main as cli_main
from proxiqa_lab.data import (
    DATASETS,
    SAMPLE_IMAGES_LABEL,
    ChecksumError,
    Dataset,
    ImageConversionWarning,
    data_root,
    dataset_files,
    fetch,
    load_image,
    mirror_root,
    sample_images,
    save_image,
    sha256_file,
    status,
    to_tensor,
    to_uint8,
    training_files,
)
from proxiqa_lab.data.registry import REGISTRY_JSON, build_registry
from proxiqa_lab.errors import DataNotFoundError, ImageError


def _find_mirror() -> Path | None:
    candidates = [os.environ.get("PROXIQA_LAB_MIRROR"), Path(__file__).resolve().parents[1] / ".." / "shared" / "data"]
    for candidate in candidates:
        if candidate and "://" not in str(candidate) and (Path(candidate) / "kodak").is_dir():
            return Path(candidate).resolve()
    return None


MIRROR = _find_mirror()
needs_mirror = pytest.mark.skipif(MIRROR is None, reason="no local data mirror (set PROXIQA_LAB_MIRROR)")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    """Tests choose root and mirror explicitly."""
    monkeypatch.delenv("PROXIQA_LAB_DATA", raising=False)
    monkeypatch.delenv("PROXIQA_LAB_MIRROR", raising=False)


@pytest.fixture(scope="module")
def kodak_root(tmp_path_factory) -> Path:
    """Kodak and the VMAF models fetched once from the mirror, through the CLI (two names, one call)."""
    if MIRROR is None:
        pytest.skip("no local data mirror (set PROXIQA_LAB_MIRROR)")
    root = tmp_path_factory.mktemp("data")
    assert cli_main(["data", "fetch", "kodak", "vmaf_models", "--mirror", str(MIRROR), "--root", str(root)]) == 0
    return root


def _small_mirror(tmp_path: Path) -> Path:
    """A private copy of the mirror's vmaf_models folder (small) that tests may damage."""
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR / "vmaf_models", mirror / "vmaf_models")
    for path in (mirror / "vmaf_models").iterdir():
        path.chmod(0o644)
    return mirror


# ----------------------------------------------------------------------------- registry


def test_registry_names_and_counts():
    assert list(DATASETS) == ["kodak", "bsds500", "unsplash_x4", "wikipedia24", "vmaf_models"]
    counts = {name: len(ds.files) for name, ds in DATASETS.items()}
    assert counts == {"kodak": 24, "bsds500": 500, "unsplash_x4": 30, "wikipedia24": 24, "vmaf_models": 3}
    bsds = DATASETS["bsds500"]
    assert [len(bsds.images(s)) for s in ("train", "val", "test")] == [200, 100, 200]
    with pytest.raises(ValueError, match="allowed splits: train, val, test"):
        bsds.images("training")
    with pytest.raises(ValueError, match="no splits"):
        DATASETS["kodak"].images("train")


def test_registry_urls():
    assert DATASETS["kodak"].urls["kodim07.png"] == "http://r0k.us/graphics/kodak/kodak/kodim07.png"
    assert DATASETS["vmaf_models"].urls["vmaf_v0.6.1neg.json"] == (
        "https://raw.githubusercontent.com/Netflix/vmaf/master/model/vmaf_v0.6.1neg.json"
    )
    bsds = DATASETS["bsds500"]
    rel = bsds.images("val")[0]
    assert bsds.urls[rel].endswith("BSR_bsds500.tgz")
    assert bsds.archive_members[rel] == f"BSR/BSDS500/data/images/{rel}"
    assert all(DATASETS[n].downloadable for n in ("kodak", "bsds500", "vmaf_models"))
    for name in ("unsplash_x4", "wikipedia24"):
        assert not DATASETS[name].downloadable and DATASETS[name].urls == {}
        assert "no public home" in DATASETS[name].mirror_only_note


@needs_mirror
def test_registry_matches_mirror_sha256sums():
    """The shipped registry equals the mirror's SHA256SUMS, and hashing the mirror rebuilds it."""
    for name, ds in DATASETS.items():
        sums_file = MIRROR / name / "SHA256SUMS"
        if sums_file.exists():
            sums = {}
            for line in sums_file.read_text().splitlines():
                digest, rel = line.split(maxsplit=1)
                sums[rel.removeprefix("./")] = digest
            assert sums == ds.files, name
    assert build_registry(MIRROR) == json.loads(REGISTRY_JSON.read_text())


def test_data_root_and_mirror_precedence(monkeypatch, tmp_path):
    from proxiqa_lab.paths import project_root

    assert data_root() == project_root() / "data"
    monkeypatch.setenv("PROXIQA_LAB_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert mirror_root() is None
    monkeypatch.setenv("PROXIQA_LAB_MIRROR", str(tmp_path / "m"))
    assert mirror_root() == str(tmp_path / "m")
    assert mirror_root("https://example.org/data/") == "https://example.org/data"


# ----------------------------------------------------------------------------- fetch


def test_fetch_kodak_from_mirror(kodak_root):
    paths = dataset_files("kodak", kodak_root)
    assert [p.name for p in paths] == [f"kodim{i:02d}.png" for i in range(1, 25)]
    assert (kodak_root / "kodak" / "RIGHTS.USE.txt").is_file()
    assert (kodak_root / "vmaf_models" / "LICENSE").is_file()
    assert status("kodak", kodak_root).complete
    assert sha256_file(paths[6]) == DATASETS["kodak"].files["kodim07.png"]
    assert not list((kodak_root / "kodak").glob("*.tmp"))
    assert oct((paths[0]).stat().st_mode & 0o777) != "0o600"


def test_refetch_rehashes_but_never_fetches_good_files(kodak_root, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a verified file was hashed or fetched again")

    hashed = []
    real_hash = datasets_module._hash_file
    monkeypatch.setattr(datasets_module, "_fetch_one", fail)
    monkeypatch.setattr(datasets_module, "_hash_file", lambda p: hashed.append(p) or real_hash(p))
    assert len(fetch("kodak", kodak_root, mirror=MIRROR)) == 24
    assert len(hashed) >= 24  # what fetch reports as verified, it has read
    monkeypatch.setattr(datasets_module, "_hash_file", fail)
    assert len(fetch("kodak", kodak_root, mirror=MIRROR, rehash=False)) == 24  # the fast path
    assert status("kodak", kodak_root).complete


def test_cli_list(kodak_root, capsys):
    assert cli_main(["data", "list", "--root", str(kodak_root)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "verified" in lines["kodak"] and " 24 " in lines["kodak"]
    assert "missing" in lines["bsds500"] and "mirror only" in lines["wikipedia24"]


@needs_mirror
def test_corrupt_and_partial_files_are_replaced(tmp_path):
    root = tmp_path / "data"
    fetch("vmaf_models", root, mirror=MIRROR)
    target = root / "vmaf_models" / "vmaf_v0.6.1.json"
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])  # partial
    other = root / "vmaf_models" / "vmaf_4k_v0.6.1.json"
    size = other.stat().st_size
    other.write_bytes(b"x" * size)  # same size, wrong content
    assert status("vmaf_models", root).verified == 1
    with pytest.raises(DataNotFoundError, match="missing or incomplete"):
        dataset_files("vmaf_models", root)
    fetch("vmaf_models", root, mirror=MIRROR)
    assert target.read_bytes() == good
    assert sha256_file(other) == DATASETS["vmaf_models"].files["vmaf_4k_v0.6.1.json"]
    assert status("vmaf_models", root).complete


@needs_mirror
def test_mirror_missing_file_and_checksum_mismatch(tmp_path):
    mirror = _small_mirror(tmp_path)
    (mirror / "vmaf_models" / "vmaf_v0.6.1neg.json").unlink()
    with pytest.raises(DataNotFoundError, match="has no file vmaf_models/vmaf_v0.6.1neg.json"):
        fetch("vmaf_models", tmp_path / "a", mirror=mirror)

    mirror = _small_mirror(tmp_path / "b")
    bad = mirror / "vmaf_models" / "vmaf_v0.6.1neg.json"
    bad.write_bytes(bad.read_bytes() + b" ")
    with pytest.raises(ChecksumError, match="expected " + DATASETS["vmaf_models"].files["vmaf_v0.6.1neg.json"]):
        fetch("vmaf_models", tmp_path / "c", mirror=mirror)
    assert not (tmp_path / "c" / "vmaf_models" / "vmaf_v0.6.1neg.json").exists()
    assert not list((tmp_path / "c" / "vmaf_models").glob(".*.tmp"))


def test_mirror_only_datasets_need_a_mirror(tmp_path):
    with pytest.raises(DataNotFoundError, match="only be copied from a mirror") as err:
        fetch("wikipedia24", tmp_path)
    assert "SOURCES.md" in str(err.value) and "--mirror DIR" in str(err.value)
    with pytest.raises(DataNotFoundError, match="no public home"):
        fetch("unsplash_x4", tmp_path)


def test_missing_data_error_names_the_command(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        dataset_files("kodak", tmp_path / "nowhere")
    message = str(err.value)
    assert f"proxiqa-lab data fetch kodak --root {(tmp_path / 'nowhere').resolve()}" in message
    assert "--mirror DIR" in message
    with pytest.raises(DataNotFoundError, match="proxiqa-lab data fetch bsds500 --root"):
        training_files(tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        dataset_files("imagenet", tmp_path)


@needs_mirror
def test_download_from_registered_urls(tmp_path, monkeypatch):
    """The URL path, with urlopen served from the mirror: every file comes from its registered URL."""
    served = {}
    for rel, url in DATASETS["vmaf_models"].urls.items():
        served[url] = (MIRROR / "vmaf_models" / rel).read_bytes()
    requested = []

    def fake_urlopen(request, timeout=None):
        url = request.full_url
        requested.append(url)
        if url not in served:
            raise urllib.error.URLError("no route to host")
        return io.BytesIO(served[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    paths = fetch("vmaf_models", tmp_path)
    assert sorted(requested) == sorted(DATASETS["vmaf_models"].urls.values())
    assert [sha256_file(p) for p in paths] == [DATASETS["vmaf_models"].files[p.name] for p in paths]
    assert (tmp_path / "vmaf_models" / "LICENSE").is_file()

    served[DATASETS["vmaf_models"].urls["vmaf_v0.6.1.json"]] += b"\n"  # upstream changed
    (tmp_path / "vmaf_models" / "vmaf_v0.6.1.json").unlink()
    with pytest.raises(ChecksumError, match="raw.githubusercontent.com"):
        fetch("vmaf_models", tmp_path)
    assert not (tmp_path / "vmaf_models" / "vmaf_v0.6.1.json").exists()

    served.clear()
    with pytest.raises(DataNotFoundError, match="could not download .* --mirror DIR"):
        fetch("vmaf_models", tmp_path)


def _dataset(tmp_path: Path, files: dict[str, bytes], urls: dict[str, str], members=None) -> Dataset:
    return Dataset(
        name="toy",
        files={rel: __import__("hashlib").sha256(data).hexdigest() for rel, data in files.items()},
        urls=urls,
        description="toy",
        licence="none",
        sizes={rel: len(data) for rel, data in files.items()},
        archive_members=members or {},
    )


def test_download_file_urls_and_checksum_mismatch(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"alpha")
    (src / "b.bin").write_bytes(b"beta")
    ds = _dataset(tmp_path, {"a.bin": b"alpha", "b.bin": b"beta"},
                  {rel: (src / rel).as_uri() for rel in ("a.bin", "b.bin")})
    paths = fetch(ds, tmp_path / "root")
    assert [p.read_bytes() for p in paths] == [b"alpha", b"beta"]

    bad = _dataset(tmp_path, {"a.bin": b"ALPHA"}, {"a.bin": (src / "a.bin").as_uri()})
    with pytest.raises(ChecksumError, match="a.bin"):
        fetch(bad, tmp_path / "root2")
    assert not (tmp_path / "root2" / "toy" / "a.bin").exists()


def test_download_archive_extracts_only_registered_members(tmp_path):
    members = {"train/1.jpg": b"one", "val/2.jpg": b"two", "groundTruth/x.mat": b"unused"}
    archive = tmp_path / "BSR_toy.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for rel, data in members.items():
            info = tarfile.TarInfo(f"BSR/BSDS500/data/images/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    rels = ["train/1.jpg", "val/2.jpg"]
    ds = _dataset(tmp_path, {rel: members[rel] for rel in rels}, {rel: archive.as_uri() for rel in rels},
                  {rel: f"BSR/BSDS500/data/images/{rel}" for rel in rels})
    paths = fetch(ds, tmp_path / "root")
    assert [p.read_bytes() for p in paths] == [b"one", b"two"]
    folder = tmp_path / "root" / "toy"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        ".verified.json", "train/1.jpg", "val/2.jpg"]

    (folder / "val" / "2.jpg").write_bytes(b"tw")  # truncated: fetched again from the archive
    fetch(ds, tmp_path / "root")
    assert (folder / "val" / "2.jpg").read_bytes() == b"two"


# ----------------------------------------------------------------------------- images


def _png16(path: Path, array: np.ndarray) -> Path:
    """Write a 16-bit RGB (3 channels) or RGBA (4) PNG; Pillow cannot write these."""
    h, w, c = array.shape
    color_type = {3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_load_rgb_png_without_warning(tmp_path, photo):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = load_image(path)
    assert img.dtype == np.uint8 and img.shape == (512, 512, 3) and img.flags.c_contiguous
    np.testing.assert_array_equal(img, photo)


def test_gray_is_repeated_to_rgb(tmp_path, rng):
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    with pytest.warns(ImageConversionWarning, match="gray"):
        img = load_image(tmp_path / "g.png")
    assert img.shape == (9, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.array([[[100, 50, 0, 0], [100, 50, 0, 255], [100, 50, 0, 128]]], dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with pytest.warns(ImageConversionWarning, match="white"):
        img = load_image(tmp_path / "a.png")
    a = 128 / 255
    half = np.rint(np.array([100, 50, 0]) * a + 255 * (1 - a))
    np.testing.assert_array_equal(img[0], [[255, 255, 255], [100, 50, 0], half])


def test_16bit_rgb_is_rounded_not_truncated(tmp_path):
    values = np.array([[[0, 385, 386], [65535, 257 * 200 + 129, 257 * 200 + 128]]], dtype=np.uint16)
    _png16(tmp_path / "d.png", values)
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        img = load_image(tmp_path / "d.png")
    # v / 257 rounded: 385 -> 1.498 -> 1, 386 -> 1.502 -> 2 (truncating to the high byte gives 1, 1)
    np.testing.assert_array_equal(img, [[[0, 1, 2], [255, 201, 200]]])

    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "d.tif", values, photometric="rgb")
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        np.testing.assert_array_equal(load_image(tmp_path / "d.tif"), img)


def test_16bit_rgba_and_gray(tmp_path):
    rgba = np.array([[[65535, 0, 25700, 0], [65535, 0, 25700, 65535]]], dtype=np.uint16)
    _png16(tmp_path / "e.png", rgba)
    with pytest.warns(ImageConversionWarning, match="16-bit RGBA"):
        img = load_image(tmp_path / "e.png")
    np.testing.assert_array_equal(img, [[[255, 255, 255], [255, 0, 100]]])

    gray = np.array([[0, 386, 65535]], dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    with pytest.warns(ImageConversionWarning, match="16-bit gray"):
        img = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(img[..., 1], [[0, 2, 255]])


def test_palette_is_expanded(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([10, 20, 30, 200, 150, 100] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "p.png")
    with pytest.warns(ImageConversionWarning, match="palette"):
        img = load_image(tmp_path / "p.png")
    np.testing.assert_array_equal(img, [[[10, 20, 30], [200, 150, 100]]])


def test_bad_image_files_raise_image_error(tmp_path, photo):
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageError, match="missing.png"):
        load_image(missing)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageError, match="notes.png"):
        load_image(tmp_path / "notes.png")
    Image.fromarray(photo).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png.*truncated"):
        load_image(tmp_path / "cut.png")
    Image.fromarray(photo).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_save_image_is_atomic_and_refuses_to_overwrite(tmp_path, photo):
    path = save_image(photo, tmp_path / "out" / "x.png")
    np.testing.assert_array_equal(load_image(path), photo)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_image(photo[::-1].copy(), path)
    np.testing.assert_array_equal(load_image(path), photo)
    save_image(photo[::-1].copy(), path, overwrite=True)
    np.testing.assert_array_equal(load_image(path), photo[::-1])
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.png"]
    with pytest.raises(ImageError, match=".png"):
        save_image(photo, tmp_path / "x.jpg")
    with pytest.raises(ImageError, match="uint8"):
        save_image(photo.astype(np.float32), tmp_path / "y.png")


def test_to_tensor_and_to_uint8(photo):
    x = to_tensor(photo)
    assert x.shape == (1, 3, 512, 512) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert to_tensor(np.stack([photo, photo])).shape == (2, 3, 512, 512)
    np.testing.assert_array_equal(to_uint8(x)[0], photo)
    y = torch.tensor([-0.2, 0.4 / 255, 0.6 / 255, 1.7]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    np.testing.assert_array_equal(to_uint8(y)[0, 0, :, 0], [0, 0, 1, 255])
    with pytest.raises(ImageError, match="uint8"):
        to_tensor(photo.astype(np.float32))
    with pytest.raises(ImageError, match="N, 3, H, W"):
        to_uint8(torch.zeros(1, 1, 4, 4))


def test_sample_images_are_labelled_fallback():
    images = sample_images()
    assert set(images) == {"astronaut", "coffee", "chelsea", "rocket"}
    assert all(img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 for img in images.values())
    assert "not Kodak" in SAMPLE_IMAGES_LABEL and "scikit-image" in SAMPLE_IMAGES_LABEL


def test_kodak_images_load_as_rgb(kodak_root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shapes = {load_image(p).shape for p in dataset_files("kodak", kodak_root)[:4]}
    assert shapes == {(512, 768, 3), (768, 512, 3)}


@needs_mirror
def test_bsds500_from_its_registered_tarball(tmp_path, monkeypatch):
    """The real BSDS500 layout: one archive URL, images under BSR/BSDS500/data/images/<split>/."""
    archive = tmp_path / "BSR_bsds500.tar"  # uncompressed, to keep the test fast
    with tarfile.open(archive, "w") as tar:
        for rel in DATASETS["bsds500"].files:
            tar.add(MIRROR / "bsds500" / rel, arcname=f"BSR/BSDS500/data/images/{rel}")
    url = DATASETS["bsds500"].urls["train/2092.jpg"]
    requested = []

    def fake_urlopen(request, timeout=None):
        requested.append(request.full_url)
        if request.full_url != url:
            raise urllib.error.URLError("no route to host")
        return open(archive, "rb")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    root = tmp_path / "data"
    paths = fetch("bsds500", root)
    assert requested == [url] and len(paths) == 500
    assert [len(dataset_files("bsds500", root, s)) for s in ("train", "val", "test")] == [200, 100, 200]
    assert status("bsds500", root).complete
    assert not (root / "bsds500" / ".download").exists()
