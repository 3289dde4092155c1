"""Bad input to the command line: one line, ``proxiqa-lab <command>: error: ...``, a non-zero exit,
and every file the user had left as it was. Each test here failed (a traceback, or a wrong answer)
before its fix."""

from __future__ import annotations

import errno
import json
import os
import struct
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, features

from proxiqa_lab.cli import main as cli_main
from proxiqa_lab.data import ImageConversionWarning, load_image
from proxiqa_lab.errors import ImageError, describe_os_error, disk_full
from proxiqa_lab.fileio import atomic_open
from proxiqa_lab.models import build_model, save_checkpoint

FAST = ["--profile", "smoke", "--data", "samples", "--device", "cpu", "--no-progress"]
ENOSPC = os.strerror(errno.ENOSPC)
linux_fds = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names open files through /proc")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("bls", N=8).eval()
    model.update(force=True)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "m.pt", model)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """An image, a plain file, a folder and a symlink loop."""
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "plain").write_text("keep me")
    (tmp_path / "folder").mkdir()
    os.symlink("loop", tmp_path / "loop")
    return {name: tmp_path / name for name in ("a.png", "plain", "folder", "loop")}


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    """Run the command; check it failed with one error line holding ``needles``; return that line."""
    code = cli_main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code != 0, err
    assert len(lines) == 1 and lines[0].startswith(f"proxiqa-lab {argv[0]}: error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def full_disk(monkeypatch):
    """``fsync`` fails with ENOSPC for the files that ``when(path)`` picks: a disk that fills up while
    writing them (the kit writes files whole: temporary file, fsync, rename)."""
    real = os.fsync
    rules = []

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if any(when(target) for when in rules):
            raise OSError(errno.ENOSPC, ENOSPC)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return rules


def tiny_png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none (a few dozen bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# ------------------------------------------------------------------ 1. decompression bombs
def test_decompression_bomb_is_an_image_error(tmp_path, ckpt, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(tiny_png_header(100_000, 100_000))
    with pytest.raises(ImageError, match=r"too large \(10,000,000,000 pixels\).*at most [\d,]+ pixels"):
        load_image(bomb)
    one_line_error(capsys, ["encode", ckpt, bomb, tmp_path / "out.bin"], "too large")
    assert not (tmp_path / "out.bin").exists()


# ------------------------------------------------------------------ 2. symlink loops, paths through files, folders
def _path_commands(ckpt: Path, files: dict, bad: Path) -> list[list]:
    """The commands that read files, given ``bad`` as one of them."""
    tmp = files["a.png"].parent
    bits = tmp / "a.bin"
    bits.write_bytes(b"not used")
    rd = tmp / "rd.json"
    rd.write_text(json.dumps({"name": "a", "results": {"bpp": [0.1, 0.2, 0.4], "vmaf": [30, 40, 50]}}))
    return [
        ["encode", ckpt, bad, tmp / "x.bin"],
        ["encode", bad, files["a.png"], tmp / "x.bin"],
        ["decode", ckpt, bad, tmp / "x.png"],
        ["decode", bad, bits, tmp / "x.png"],
        ["bdrate", bad, rd],
        ["bdrate", rd, bad],
    ]


@pytest.mark.parametrize("case, needle", [
    ("loop", "is a symlink loop"),
    ("through_file", "'{plain}' is a file, not a folder"),
    ("folder", "is a folder, not a file"),
])
def test_bad_input_paths(ckpt, files, case, needle, capsys):
    bad = {"loop": files["loop"], "through_file": files["plain"] / "x", "folder": files["folder"]}[case]
    for argv in _path_commands(ckpt, files, bad):
        one_line_error(capsys, argv, needle.format(plain=files["plain"]))
    assert files["plain"].read_text() == "keep me"


@pytest.mark.parametrize("case, needle", [
    ("loop", "is a symlink loop"),
    ("through_file", "'{plain}' is a file, not a folder"),
])
def test_bad_output_paths(tmp_path, ckpt, files, case, needle, capsys):
    bad = {"loop": files["loop"], "through_file": files["plain"] / "x"}[case]
    bits = tmp_path / "a.bin"
    assert cli_main(["encode", str(ckpt), str(files["a.png"]), str(bits)]) == 0
    capsys.readouterr()
    for argv in (["encode", ckpt, files["a.png"], bad, "--force"], ["decode", ckpt, bits, bad, "--force"],
                 ["evaluate", "--codec", "jpeg", "--dataset", "samples", "--out", bad],
                 ["train", *FAST, "--steps", "1", "--out", bad],
                 ["data", "list", "--root", bad],
                 ["data", "fetch", "vmaf_models", "--root", bad, "--mirror", tmp_path / "no_mirror"],
                 ["run-notebooks", "--only", "00", "--out", bad]):
        one_line_error(capsys, argv, needle.format(plain=files["plain"]))
    assert os.path.islink(files["loop"]) and files["plain"].read_text() == "keep me"


def test_symlink_loop_as_image_is_an_image_error(files):
    with pytest.raises(ImageError, match="symlink loop"):
        load_image(files["loop"])


# ------------------------------------------------------------------ 3. a file where a folder is expected
@pytest.mark.parametrize("argv, work", [
    (["train", *FAST, "--steps", "1", "--out", "{file}"], "proxiqa_lab.training.train"),
    (["evaluate", "--codec", "jpeg", "--dataset", "samples", "--out", "{file}"], "proxiqa_lab.evaluation.evaluate"),
    (["data", "fetch", "vmaf_models", "--root", "{file}"], "proxiqa_lab.data.fetch"),
])
def test_file_given_as_folder_is_refused_before_any_work(files, argv, work, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("the command started working")

    monkeypatch.setattr(work, no_work)
    line = one_line_error(capsys, [a.format(file=files["plain"]) for a in argv])
    assert line.endswith(f"error: '{files['plain']}' is a file, not a folder")
    assert files["plain"].read_text() == "keep me"


# ------------------------------------------------------------------ 4. a full disk
@linux_fds
def test_full_disk_in_encode_keeps_the_old_output(tmp_path, ckpt, files, full_disk, capsys):
    out = tmp_path / "a.bin"
    assert cli_main(["encode", str(ckpt), str(files["a.png"]), str(out)]) == 0
    before = out.read_bytes()
    big = tmp_path / "big.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(big)
    full_disk.append(lambda target: target.startswith(str(tmp_path)))
    capsys.readouterr()
    one_line_error(capsys, ["encode", ckpt, big, out, "--force"],
                   f"disk full ({ENOSPC}) while writing {out}: {out} was left as it was; free space and rerun")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.bin", "big.png", *files])  # no temporary file


@linux_fds
def test_full_disk_in_evaluate_keeps_the_old_results(tmp_path, full_disk, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "jpeg.csv").write_text("an earlier table")
    full_disk.append(lambda target: target.startswith(str(out)))
    one_line_error(capsys, ["evaluate", "--codec", "jpeg", "--dataset", "samples", "--images", "1", "--metrics",
                            "psnr_avg", "--no-progress", "--out", out], f"disk full ({ENOSPC}) while writing {out}")
    assert (out / "jpeg.csv").read_text() == "an earlier table"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A runs folder with one complete smoke run."""
    from proxiqa_lab.training import train

    runs = tmp_path_factory.mktemp("runs") / "smoke"
    train("smoke", out=runs / "r1", steps=1, progress=False, data="samples", device="cpu")
    return runs


def test_full_disk_in_zoo_export(tmp_path, runs, monkeypatch, capsys):
    import tarfile

    def addfile(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, ENOSPC)  # a write of the archive, which names no file

    monkeypatch.setattr(tarfile.TarFile, "addfile", addfile)
    out = tmp_path / "runs.tar"
    one_line_error(capsys, ["zoo", "export", runs, out],
                   f"disk full ({ENOSPC}) while writing {out}: nothing was written; free space and rerun")
    assert not out.exists()


@linux_fds
def test_full_disk_in_train_keeps_the_last_checkpoint(tmp_path, full_disk, capsys):
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.pt"
    kept = []

    def second_checkpoint(target: str) -> bool:
        if Path(target).parent != last.parent or not Path(target).name.startswith(".last.pt."):
            return False
        if not last.exists():
            return False  # the first one is written
        kept.append(last.read_bytes())
        return True

    full_disk.append(second_checkpoint)
    one_line_error(capsys, ["train", *FAST, "--steps", "2", "--set", "checkpoint_every=1", "--out", out],
                   f"disk full ({ENOSPC}) while writing {last}: training stopped",
                   f"rerun the same command to resume {out} from step 1")
    assert kept and last.read_bytes() == kept[0]


def test_full_disk_behind_torch_save_names_the_file(tmp_path):
    """``torch.save`` into a file turns a failed write into a RuntimeError; the OSError behind it is found."""
    target = tmp_path / "last.pt"
    with pytest.raises(RuntimeError) as caught:
        with atomic_open(target, "wb"):
            try:
                raise OSError(errno.ENOSPC, ENOSPC)
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None
    full = disk_full(caught.value)
    assert full is not None and full.filename == str(target)
    assert describe_os_error(full).startswith(f"disk full ({ENOSPC}) while writing {target}: nothing was written")


def test_tensorboard_writer_failure_stops_the_events_not_the_training(tmp_path, monkeypatch, capsys, recwarn):
    """A write failing in TensorBoard's own thread gives one warning, no thread traceback; training goes on."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    from proxiqa_lab.training.tensorboard import TensorBoardWarning

    real_write, calls, unhandled = RecordWriter.write, [], []

    def write(self, data):
        calls.append(1)
        if len(calls) > 1:  # the file's first event goes through
            raise OSError(errno.ENOSPC, ENOSPC)
        return real_write(self, data)

    monkeypatch.setattr(RecordWriter, "write", write)
    monkeypatch.setattr(threading, "excepthook", unhandled.append)
    out = tmp_path / "run"
    assert cli_main(["train", *FAST, "--steps", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert (out / "model.pt").is_file() and len(calls) > 1
    assert not unhandled and not err.strip(), err
    stopped = [str(w.message) for w in recwarn if issubclass(w.category, TensorBoardWarning)]
    assert len(stopped) == 1 and "TensorBoard events stopped" in stopped[0] and ENOSPC in stopped[0], stopped


# ------------------------------------------------------------------ 5. hostile RD files
@pytest.mark.parametrize("bpp, needle", [
    ("[0.1, 0.2, 0.4, 1" + "0" * 400 + "]", "integer of 401 digits"),
    ("[true, 0.2, 0.4, 0.8]", "results['bpp'][0] is true, not a number"),
    ("[0.1, 0.2, false, 0.8]", "results['bpp'][2] is false, not a number"),
    ("[0.1, NaN, 0.4, Infinity]", "results['bpp'] holds NaN or Infinity at point(s) 1, 3"),
    ("[0.1, 0.2, 0.4, 0.8], \"x\": " + "[" * 100_000 + "]" * 100_000, "nests JSON arrays or objects too deeply"),
])
def test_hostile_rd_files(tmp_path, bpp, needle, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"name": "a", "results": {"bpp": [0.1, 0.2, 0.4, 0.8], "vmaf": [30, 40, 50, 60]}}))
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "b", "results": {"vmaf": [30, 41, 52, 63], "bpp": ' + bpp + "}}")
    one_line_error(capsys, ["bdrate", good, bad], str(bad), needle)


def test_deep_json_alone(tmp_path, capsys):
    bad = tmp_path / "deep.json"
    bad.write_text("[" * 100_000)
    one_line_error(capsys, ["bdrate", bad, bad], "nests JSON arrays or objects too deeply")


# ------------------------------------------------------------------ 6, 7. run-notebooks
@pytest.mark.parametrize("only", [",", "", " , "])
def test_empty_only_is_refused(tmp_path, only, monkeypatch, capsys):
    def no_run(*args, **kwargs):
        raise AssertionError("a notebook ran")

    monkeypatch.setattr("proxiqa_lab.notebooks.runner.run_notebook", no_run)
    one_line_error(capsys, ["run-notebooks", "--only", only, "--out", tmp_path / "out"], "names no notebook")
    one_line_error(capsys, ["run-notebooks", "--only", "99", "--out", tmp_path / "out"], "matches no notebook")
    assert not (tmp_path / "out").exists()


def test_notebooks_are_found_from_any_folder(tmp_path, monkeypatch):
    from proxiqa_lab.notebooks.runner import discover_notebooks

    monkeypatch.delenv("PROXIQA_LAB_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    found = discover_notebooks()
    assert len(found) == 9 and found[0].name == "00_quickstart.ipynb"


# ------------------------------------------------------------------ 8. animations
@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animation_warns_that_only_the_first_frame_is_used(tmp_path, suffix):
    if suffix == ".webp" and not features.check("webp"):
        pytest.skip("Pillow without WebP")
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "blue")]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = load_image(path)
    assert tuple(img[0, 0]) == pytest.approx((255, 0, 0), abs=2)  # the first frame
    notices = [str(w.message) for w in caught if issubclass(w.category, ImageConversionWarning)]
    assert any("has 2 frames" in n and "only the first is used" in n for n in notices), notices


# ------------------------------------------------------------------ bugs keep their traceback
@pytest.mark.parametrize("error", [RuntimeError("a bug"), OSError("no errno: a bug"), KeyError("a bug")])
def test_bugs_still_show_a_traceback(tmp_path, error, monkeypatch):
    def handler(args):
        raise error

    monkeypatch.setattr("proxiqa_lab.cli.bdrate.run", handler)
    with pytest.raises(type(error)):
        cli_main(["bdrate", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
