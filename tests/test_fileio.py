"""Atomic writes: complete files or none, the usual mode, and no change to the process umask."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from proxiqa_lab.fileio import atomic_open, atomic_write_bytes, atomic_write_text, current_umask


def test_write_bytes_and_text(tmp_path):
    target = tmp_path / "sub" / "deeper" / "a.bin"  # parent folders are created
    assert atomic_write_bytes(target, b"\x00\x01data") == target
    assert target.read_bytes() == b"\x00\x01data"
    text = tmp_path / "t.txt"
    assert atomic_write_text(text, "héllo\nwörld\n") == text
    assert text.read_bytes() == "héllo\nwörld\n".encode("utf-8")
    atomic_write_text(text, "replaced")
    assert text.read_text(encoding="utf-8") == "replaced"
    with atomic_open(tmp_path / "t.csv", "w", newline="") as f:
        f.write("a,b\r\n1,2\r\n")
    assert (tmp_path / "t.csv").read_bytes() == b"a,b\r\n1,2\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "t.csv", "t.txt"]


def test_atomic_open_renames_only_on_exit(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_open(target) as f:
        f.write(b"new")
        assert not target.exists()
        (tmp,) = [p for p in tmp_path.iterdir()]
        assert tmp.name.startswith(".out.bin.") and tmp.name.endswith(".tmp")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("error", [ValueError("bad checksum"), KeyboardInterrupt()])
@pytest.mark.parametrize("mode", ["wb", "w"])
def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path, error, mode):
    target = tmp_path / "keep.dat"
    target.write_bytes(b"old contents")
    with pytest.raises(type(error)):
        with atomic_open(target, mode) as f:
            f.write(b"partial" if mode == "wb" else "partial")
            raise error
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.dat"]


def test_failed_replace_leaves_no_temp(tmp_path):
    target = tmp_path / "a_folder"
    target.mkdir()
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"x")  # os.replace cannot put a file over a folder
    assert target.is_dir() and [p.name for p in tmp_path.iterdir()] == ["a_folder"]


def test_unsupported_mode(tmp_path):
    with pytest.raises(ValueError, match="modes"):
        with atomic_open(tmp_path / "x", "a"):
            pass
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_file_mode_follows_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert current_umask() == mask
        path = atomic_write_bytes(tmp_path / "m.bin", b"x")
        assert current_umask() == mask  # reading it changed nothing
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_importing_the_package_keeps_the_umask():
    code = (
        "import os\n"
        "os.umask(0o077)\n"
        "import proxiqa_lab.data, proxiqa_lab.fileio\n"
        "mask = os.umask(0o077)\n"
        "print(oct(mask))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0o77"
