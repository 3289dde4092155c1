"""Archives, compact checkpoints and checkpoints from someone else, built hostile in the tests themselves.

Every case ends with a clear error and changes nothing: no file outside the destination, no file
that existed, and a destination left as it was.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import lzma
import shutil
import subprocess
import tarfile
import tracemalloc

import pytest
import torch

from proxiqa_lab.cli import main
from proxiqa_lab.errors import CheckpointError, ZooError
from proxiqa_lab.models import build_model, load_checkpoint, save_checkpoint
from proxiqa_lab.models import compact
from proxiqa_lab.zoo import export_runs, import_archive
from proxiqa_lab.zoo import importing

RUN = "bls8-mse-lmbda0.01"


def _run_folder(folder, model=None, **config):
    """A complete run folder as training leaves it, without training (a BLS with N = 8)."""
    folder.mkdir(parents=True)
    model = model if model is not None else build_model("bls", N=8)
    model.update(force=True)
    save_checkpoint(folder / "model.pt", model, step=1)
    (folder / "config.json").write_text(json.dumps({"architecture": "bls", "objective": "mse", "lmbda": 0.01,
                                                    "alpha": 0.5, "steps": 1, **config}))
    (folder / "run.json").write_text(json.dumps({"status": "complete", "step": 1}))
    (folder / "log.csv").write_text("step,loss\n1,0.5\n")
    return folder


@pytest.fixture
def archive(tmp_path):
    _run_folder(tmp_path / "runs/smoke" / RUN)
    out = tmp_path / "class.tar"
    export_runs(tmp_path / "runs/smoke", out)
    return out


def _members(archive):
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def _manifest(members):
    return json.loads(dict((m.name, d) for m, d in members)["manifest.json"])


def _write_tar(path, members, manifest=None):
    """A tar of ``members`` ((TarInfo, bytes) pairs), with ``manifest`` as its manifest.json when given."""
    with tarfile.open(path, "w") as tar:
        for member, data in members:
            if member.name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest).encode()
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return path


def _entry(data):
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _snapshot(root):
    """Every file and folder under ``root`` with its content's hash: what 'nothing changed' compares."""
    if not root.exists():
        return None
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def dest(tmp_path):
    """A runs folder holding a run of the student's own, which no import may change."""
    own = tmp_path / "student/smoke/mine"
    own.mkdir(parents=True)
    (own / "log.csv").write_text("mine\n")
    return tmp_path / "student"


def _refused(archive, dest, match, outside=()):
    before, outside_before = _snapshot(dest), [(p, p.read_bytes() if p.exists() else None) for p in outside]
    with pytest.raises(ZooError, match=match):
        import_archive(archive, dest)
    assert _snapshot(dest) == before, "a refused archive leaves the destination as it was"
    for path, content in outside_before:
        assert (path.read_bytes() if path.exists() else None) == content, f"{path} outside the destination changed"


@pytest.mark.parametrize("key", [
    "x/../../../../victim.txt", "../victim.txt", "checkpoints/../../../victim.txt", "/tmp/victim.txt",
    "checkpoints/step_1.pt/../../../victim.txt", "model.pt/..", "./model.pt", "checkpoints//step_1.pt",
    "checkpoints\\..\\..\\victim.txt", "notes.py", "",
])
@pytest.mark.parametrize("right_hash", [True, False])
def test_manifest_keys_cannot_write_outside_the_destination(archive, dest, tmp_path, key, right_hash):
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")
    members = _members(archive)
    manifest = _manifest(members)
    payload = b"overwritten"
    manifest["models"][0]["files"][key] = _entry(payload if right_hash else b"other")
    member = tarfile.TarInfo(f"smoke/{RUN}/{key}")
    evil = _write_tar(tmp_path / "evil.tar", members + [(member, payload)], manifest)
    _refused(evil, dest, "not a file of a run folder|unsafe member|not match", outside=[victim])
    assert victim.read_text() == "the user's file"
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("field,name", [("profile", ".."), ("profile", "a/b"), ("profile", "/abs"), ("profile", ""),
                                        ("profile", 7), ("name", "../escape"), ("name", "..\\escape"),
                                        ("name", ".hidden"), ("name", "a\x00b"), ("name", None)])
def test_profile_and_run_names_must_be_folder_names(archive, dest, tmp_path, field, name):
    members = _members(archive)
    manifest = _manifest(members)
    if field == "profile":
        manifest["profile"] = name
    else:
        manifest["models"][0]["name"] = name
    _refused(_write_tar(tmp_path / "evil.tar", members, manifest), dest, "not folder names|malformed|not match")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE])
def test_links_folders_and_devices_are_refused(archive, dest, tmp_path, kind):
    members = _members(archive)
    member = tarfile.TarInfo(f"smoke/{RUN}/log.csv")
    member.type, member.linkname = kind, "/etc/passwd"
    swapped = [(member, b"") if m.name == member.name else (m, d) for m, d in members]
    _refused(_write_tar(tmp_path / "evil.tar", swapped), dest, "link, a folder or a special file")


def test_a_member_twice_is_refused(archive, dest, tmp_path):
    members = _members(archive)
    again = [(m, d) for m, d in members if m.name.endswith("log.csv")]
    _refused(_write_tar(tmp_path / "twice.tar", members + again), dest, "twice")


def test_declared_sizes_are_enforced_before_and_while_reading(archive, dest, tmp_path, monkeypatch):
    members = _members(archive)
    manifest = _manifest(members)
    # a member longer than the manifest says: refused from the tar headers, before a byte is copied
    longer = [(m, d + b"x" * 1000 if m.name.endswith("log.csv") else d) for m, d in members]
    _refused(_write_tar(tmp_path / "longer.tar", longer), dest, "its manifest says")
    # a manifest that declares more than the bound for one file
    manifest["models"][0]["files"]["log.csv"]["size"] = importing.MAX_FILE_BYTES + 1
    _refused(_write_tar(tmp_path / "big.tar", members, manifest), dest, "size over")
    # sizes that are not sizes
    for size in (-1, True, 1.5, "12", None):
        manifest["models"][0]["files"]["log.csv"]["size"] = size
        _refused(_write_tar(tmp_path / "odd.tar", members, manifest), dest, "not valid")
    # the copy itself stops at the declared size, whatever the member turns out to hold
    monkeypatch.setattr(importing, "_match", lambda *a: None)
    manifest = _manifest(members)
    manifest["models"][0]["files"]["log.csv"] = _entry(b"step")
    written = {}

    class Counting(io.FileIO):
        def write(self, data):
            written[self.name] = written.get(self.name, 0) + len(data)
            return super().write(data)

    monkeypatch.setattr(importing, "open", lambda path, mode: Counting(path, mode), raising=False)
    _refused(_write_tar(tmp_path / "lying.tar", members, manifest), dest, "cut short")
    assert any(str(n).endswith("config.json") for n in written), "the copies were counted"
    assert all(v <= 4 for n, v in written.items() if str(n).endswith("log.csv")), f"past the declared size: {written}"


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar makes the sparse member")
def test_a_sparse_member_of_gigabytes_writes_nothing(archive, dest, tmp_path):
    """A 2 GB sparse file packs into a few kilobytes; importing it must not write those gigabytes."""
    members = _members(archive)
    manifest = _manifest(members)
    work = tmp_path / "sparse"
    for member, data in members:
        (work / member.name).parent.mkdir(parents=True, exist_ok=True)
        (work / member.name).write_bytes(data)
    big = work / f"smoke/{RUN}/checkpoints/step_1.pt"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate(2 * 2**30)
    for declared in (2 * 2**30, 1000):
        manifest["models"][0]["files"]["checkpoints/step_1.pt"] = {"sha256": "0" * 64, "size": declared}
        (work / "manifest.json").write_text(json.dumps(manifest))
        evil = tmp_path / f"sparse{declared}.tar"
        subprocess.run(["tar", "--sparse", "-cf", str(evil), "-C", str(work), "manifest.json", "smoke"], check=True)
        assert evil.stat().st_size < 1 << 20
        _refused(evil, dest, "link, a folder or a special file|size over|manifest says|declares more")


def test_an_archive_declaring_more_than_the_bound_is_refused_from_its_headers(archive, dest, tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "MAX_ARCHIVE_BYTES", archive.stat().st_size // 4)
    _refused(archive, dest, "declares more than")


def _with_model(archive, tmp_path, data, name="evil.tar"):
    """``archive`` with its model.pt replaced by ``data``, the manifest's sha256 and size made to match."""
    members = _members(archive)
    manifest = _manifest(members)
    manifest["models"][0]["files"]["model.pt"] = _entry(data)
    swapped = [(m, data if m.name.endswith("/model.pt") else d) for m, d in members]
    return _write_tar(tmp_path / name, swapped, manifest)


def _checkpoint_bytes(tmp_path, **overrides):
    model = build_model("bls", N=8)
    model.update(force=True)
    checkpoint = {"architecture": "bls", "config": {"N": 8},
                  "state_dict": {k: v.clone() for k, v in model.state_dict().items()}, **overrides}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("overrides,match", [
    ({"state_dict": {}}, "not those of a 'bls' model"),
    ({"config": {"N": 60000}}, "out of range"),
    ({"config": {"N": 300}}, "weights are those of"),
    ({"config": {"N": True}}, "out of range"),
    ({"config": {"N": 8, "depth": 3}}, "does not take"),
    ({"architecture": "resnet"}, "unknown architecture"),
])
def test_checkpoints_that_cannot_load_are_refused_before_anything_moves(archive, dest, tmp_path, overrides, match):
    data = _checkpoint_bytes(tmp_path, **overrides)
    (tmp_path / "bad.pt").write_bytes(data)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "bad.pt", device="cpu")
    _refused(_with_model(archive, tmp_path, data), dest, "does not load")


def test_a_small_checkpoint_declaring_a_huge_model_is_refused_before_it_is_built(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr("proxiqa_lab.models.checkpoint.build_model", lambda *a, **k: built.append(a))
    (tmp_path / "huge.pt").write_bytes(_checkpoint_bytes(tmp_path, config={"N": 60000}))
    assert (tmp_path / "huge.pt").stat().st_size < 1 << 20
    with pytest.raises(CheckpointError, match="N=60000 is out of range"):
        load_checkpoint(tmp_path / "huge.pt", device="cpu")
    assert not built, "nothing is built before the config is checked"
    with pytest.raises(ValueError, match="out of range"):
        build_model("bmshj", N=128, M=60000)


@pytest.mark.parametrize("table,edit", [
    ("entropy_bottleneck._cdf_length", lambda t: t.fill_(10**6)),
    ("entropy_bottleneck._cdf_length", lambda t: t.fill_(0)),
    ("entropy_bottleneck._quantized_cdf", lambda t: t[:, 1].fill_(-5)),
    ("entropy_bottleneck._quantized_cdf", lambda t: t.fill_(0)),
    ("entropy_bottleneck._offset", lambda t: t.fill_(-(2**30))),
])
def test_altered_entropy_tables_are_refused(tmp_path, table, edit):
    model = build_model("bls", N=8)
    model.update(force=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    edit(state[table])
    path = tmp_path / "tables.pt"
    torch.save({"architecture": "bls", "config": {"N": 8}, "state_dict": state}, path)
    with pytest.raises(CheckpointError, match="not valid CDF tables"):
        load_checkpoint(path, device="cpu")


def test_a_compact_checkpoint_that_inflates_without_bound_is_stopped(tmp_path, monkeypatch):
    """A few kilobytes of xz that inflate to 64 MiB of zeros, read with a 4 MiB bound: refused, never inflated whole."""
    monkeypatch.setattr(compact, "MAX_PAYLOAD", 4 * 2**20)
    packer = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=1)
    bomb = b"".join(packer.compress(bytes(2**20)) for _ in range(64)) + packer.flush()
    path = tmp_path / "bomb.pt"
    path.write_bytes(bomb)
    assert path.stat().st_size < 64 * 2**10
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="inflates to more than 4 MiB"):
            load_checkpoint(path, device="cpu")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB: the payload was inflated past its bound"
    trailing = tmp_path / "trailing.pt"
    good = tmp_path / "good.pt"
    compact.write_compact(save_checkpoint(tmp_path / "full.pt", build_model("bls", N=8)), good)
    trailing.write_bytes(good.read_bytes() + b"extra")
    with pytest.raises(CheckpointError, match="bytes after its compressed data"):
        load_checkpoint(trailing, device="cpu")
    load_checkpoint(good, device="cpu")


def test_an_incomplete_run_or_a_stray_proxy_folder_is_refused(archive, dest, tmp_path):
    members = _members(archive)
    manifest = _manifest(members)
    run_json = json.dumps({"status": "running", "step": 1}).encode()
    manifest["models"][0]["files"]["run.json"] = _entry(run_json)
    swapped = [(m, run_json if m.name.endswith("run.json") else d) for m, d in members]
    _refused(_write_tar(tmp_path / "partial.tar", swapped, manifest), dest, "not a complete run")
    manifest = _manifest(members)
    files = manifest["models"][0]["files"]
    manifest["models"][0]["files"] = {"model.pt": files["model.pt"]}
    only_model = [(m, d) for m, d in members if m.name == "manifest.json" or m.name.endswith("model.pt")]
    _refused(_write_tar(tmp_path / "stray.tar", only_model, manifest), dest, "neither a run folder")


def test_a_refused_archive_leaves_a_new_destination_uncreated(archive, tmp_path):
    data = _checkpoint_bytes(tmp_path, state_dict={})
    fresh = tmp_path / "fresh/runs"
    with pytest.raises(ZooError, match="does not load"):
        import_archive(_with_model(archive, tmp_path, data), fresh)
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").rglob("*"))
    assert not fresh.exists()


def test_runs_given_as_a_file_and_a_profile_linked_outside_are_refused(archive, dest, tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.write_text("a file")
    assert main(["zoo", "import", str(archive), "--runs", str(plain)]) == 1
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and err.count("\n") == 1
    assert plain.read_text() == "a file"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dest / "smoke").rename(tmp_path / "moved")
    (dest / "smoke").symlink_to(elsewhere)
    _refused(archive, dest, "outside")
    assert not any(elsewhere.iterdir())


def test_a_full_disk_while_importing_or_exporting_changes_nothing(archive, dest, tmp_path, monkeypatch, capsys):
    real_copy = importing._copy

    def full_disk(*args):
        real_copy(*args)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(importing, "_copy", full_disk)
    _refused(archive, dest, "disk full")
    assert main(["zoo", "import", str(archive), "--runs", str(dest)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    monkeypatch.undo()

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "add", no_room)
    out = tmp_path / "again.tar"
    with pytest.raises(OSError):
        export_runs(tmp_path / "runs/smoke", out)
    assert not out.exists() and not list(tmp_path.glob(".again.tar*")), "no partial archive is left"


def test_the_checks_still_import_a_good_archive(archive, dest, tmp_path):
    assert import_archive(archive, dest) == {"imported": [RUN], "kept": []}
    load_checkpoint(dest / "smoke" / RUN / "model.pt", device="cpu")
    assert (dest / "smoke/mine/log.csv").read_text() == "mine\n"
    assert not list((dest / "smoke").glob(".import-*"))
    assert import_archive(archive, dest) == {"imported": [], "kept": [RUN]}
