"""The model zoo: compact checkpoints, the sha256 registry, shipped runs in notebooks, export and import."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import torch

from proxiqa_lab import studies
from proxiqa_lab.cli import main
from proxiqa_lab.errors import CheckpointError, ZooError
from proxiqa_lab.models import load_checkpoint
from proxiqa_lab.studies import RunSpec
from proxiqa_lab.zoo import export_runs, import_archive, load_registry, ship, verify
from proxiqa_lab.models import compact
from proxiqa_lab.models.compact import fits_float16, write_compact
from proxiqa_lab.zoo.registry import REGISTRY_JSON, ZOO_ROOT, rd_cache_files

TRAIN = {"steps": 2, "keep_checkpoints_at": [1, 2]}


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXIQA_LAB_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PROXIQA_LAB_ZOO", str(tmp_path / "zoo"))
    return tmp_path


@pytest.fixture
def smoke_runs(roots, one_torch_thread):
    """Two smoke runs: an MSE model and a proxy:vmaf fine-tune of it (with a proxy.pt)."""
    specs = [RunSpec("mse", 0.0932), RunSpec("proxy:vmaf", 0.0932, finetune=True)]
    grid = studies.train_grid(specs, "smoke", train=TRAIN, finetune_steps=2, progress=False)
    return specs, grid


def test_compact_checkpoint_is_small_and_codes_as_its_weights_say(smoke_runs, tmp_path, photo):
    from proxiqa_lab.codec import LearnedCodec

    _, grid = smoke_runs
    model = tmp_path / "runs/smoke/bls8-proxy_vmaf-lmbda0.0932-alpha0.5-ft/checkpoints/step_2.pt"
    compact = write_compact(model, tmp_path / "compact.pt")
    assert compact.stat().st_size < model.stat().st_size / 4, "no optimiser state, float16, compressed"
    full, extra = load_checkpoint(model, device="cpu")
    small, small_extra = load_checkpoint(compact, device="cpu")
    assert small_extra["step"] == extra["step"] == 2 and "training" not in small_extra
    for (name, a), b in zip(full.state_dict().items(), small.state_dict().values()):
        assert b.dtype == a.dtype, name
        if a.is_floating_point() and fits_float16(a):
            assert torch.equal(b, a.half().float()), f"{name} is the float16 value of the weight"
        else:
            assert torch.equal(a, b), f"{name} (an entropy-coder table, a constant) is kept as it is"
    img = photo[:64, :64]
    codec = LearnedCodec([compact])
    data = codec.encode(img, codec.points[0])
    assert codec.decode(data, codec.points[0]).shape == img.shape


def test_compact_keeps_the_constants_float16_cannot_hold(tmp_path, monkeypatch):
    from proxiqa_lab.models import build_model, save_checkpoint

    model = build_model("bmshj", N=8, M=8)
    path = save_checkpoint(tmp_path / "model.pt", model)
    bound, pedestal = "gaussian_conditional.likelihood_lower_bound.bound", "g_a.1.beta_reparam.pedestal"
    assert model.state_dict()[bound].half() == 0 and model.state_dict()[pedestal].half() == 0, \
        "float16 flushes the likelihood bound 1e-9 and GDN's pedestal 2^-36 to zero"
    loaded, _ = load_checkpoint(write_compact(path, tmp_path / "compact.pt"), device="cpu")
    for name in (bound, pedestal, "entropy_bottleneck.likelihood_lower_bound.bound"):
        assert torch.equal(loaded.state_dict()[name], model.state_dict()[name]), name
    # A format-1 file stored them in float16, as zeros: reading it restores them, and only them.
    with monkeypatch.context() as m:
        m.setattr(compact, "fits_float16", lambda t: True)
        m.setattr(compact, "FORMAT", compact.FORMAT_1)
        old = write_compact(path, tmp_path / "format1.pt")
    stored = torch.load(io.BytesIO(__import__("lzma").decompress(old.read_bytes())), weights_only=True)
    assert stored["format"] == compact.FORMAT_1 and bound in stored["float16"]
    restored, _ = load_checkpoint(old, device="cpu")
    for name, value in model.state_dict().items():
        want = value if not value.is_floating_point() or not fits_float16(value) else value.half().float()
        assert torch.equal(restored.state_dict()[name], want), name
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert all(float(p.min()) >= 1e-9 * (1 - 1e-6) for p in restored(x)["likelihoods"].values()), \
            "the rate estimate is bounded again: a fine-tune from the file cannot see an infinite rate"


def test_damaged_compact_checkpoint_is_refused(smoke_runs, tmp_path):
    compact = write_compact(tmp_path / "runs/smoke/bls8-mse-lmbda0.0932/model.pt", tmp_path / "c.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(compact.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="damaged or cut short"):
        load_checkpoint(cut)


def _ship_smoke(tmp_path):
    sources = [tmp_path / "runs/smoke/bls8-mse-lmbda0.0932", tmp_path / "runs/smoke/bls8-proxy_vmaf-lmbda0.0932-alpha0.5-ft"]
    return ship(sources, "smoke", notebooks={sources[0].name: ["00"]}, steps={sources[1].name: [1]})


def test_shipped_runs_are_registered_used_by_train_grid_and_refused_when_altered(smoke_runs, tmp_path, monkeypatch):
    specs, _ = smoke_runs
    added = _ship_smoke(tmp_path)
    assert [m.name for m in added] == ["bls8-mse-lmbda0.0932", "bls8-proxy_vmaf-lmbda0.0932-alpha0.5-ft"]
    fine = added[1]
    assert (fine.objective, fine.lmbda, fine.alpha, fine.steps, fine.init) == \
        ("proxy:vmaf", 0.0932, 0.5, 2, "bls8-mse-lmbda0.0932")
    assert sorted(fine.files) == ["checkpoints/step_1.pt", "config.json", "log.csv", "model.pt", "proxy.pt", "run.json"]
    assert added[0].alpha is None and added[0].notebooks == ("00",)
    assert verify() == [] and len(load_registry()) == 2
    assert ship([tmp_path / "runs/smoke/bls8-mse-lmbda0.0932"], "smoke") == [], "a shipped run is not shipped twice"
    assert ship([], "smoke", notebooks={"bls8-mse-lmbda0.0932": ["00", "04"]}) == []
    assert [m.notebooks for m in load_registry()] == [("00", "04"), ()], "a notebook that starts using a run is listed"
    assert verify() == [], "its files are as they were"

    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(tmp_path / "fresh_runs"))  # a clone with an empty runs/
    grid = studies.train_grid(specs, "smoke", train=TRAIN, finetune_steps=2, progress=False)
    assert grid["status"].tolist() == ["shipped", "shipped"]
    assert grid["run"].tolist() == [str(m.folder) for m in added]
    assert studies.source_summary(grid).startswith("2 shipped with the kit")
    assert not (tmp_path / "fresh_runs/smoke").exists(), "nothing was trained"
    assert studies.checkpoint_at(grid["run"][1], 1).is_file()
    assert studies.checkpoint_at(grid["run"][1], 2).name == "model.pt", "the last step is the shipped model.pt"
    other = studies.train_grid(specs[:1], "smoke", train={**TRAIN, "lr": 5e-4}, progress=False)
    assert other["status"].tolist() == ["trained"], "a shipped run trained with other settings is not used"
    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(tmp_path / "fresh_runs2"))
    retrained = studies.train_grid(specs[:1], "smoke", train=TRAIN, progress=False, source="retrain")
    assert retrained["status"].tolist() == ["trained"]
    with pytest.raises(ValueError, match="auto"):
        studies.train_grid(specs, "smoke", train=TRAIN, source="zoo")
    only = studies.train_grid(specs, "smoke", train=TRAIN, finetune_steps=2, progress=False, source="shipped")
    assert only["status"].tolist() == ["shipped", "shipped"], "the shipped runs even where runs/ has its own"
    with pytest.raises(ZooError, match="does not ship the run 'bls8-mse-lmbda0.0067'"):
        studies.train_grid([RunSpec("mse", 0.0067)], "smoke", train=TRAIN, source="shipped")

    model = fine.folder / "model.pt"
    model.write_bytes(model.read_bytes()[:-1] + bytes([model.read_bytes()[-1] ^ 1]))
    assert any("model.pt does not match its sha256" in p for p in verify())
    with pytest.raises(ZooError, match="refused.*not the one the zoo registered"):
        studies.train_grid(specs, "smoke", train=TRAIN, finetune_steps=2, progress=False)
    assert main(["zoo", "verify"]) == 1


def test_zoo_list_json_and_verify_commands(smoke_runs, tmp_path, capsys):
    _ship_smoke(tmp_path)
    assert main(["zoo", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    keys = {"name", "architecture", "objective", "lmbda", "alpha", "steps", "init", "path", "sha256"}
    assert all(keys <= set(m) for m in listed)
    fine = listed[1]
    assert fine["architecture"] == "bls" and fine["init"] == listed[0]["name"]
    from proxiqa_lab.data.registry import sha256_file

    assert sha256_file(fine["path"]) == fine["sha256"]
    out = tmp_path / "decoded.png"
    bits = tmp_path / "img.bin"
    from skimage import data

    from proxiqa_lab.data import save_image

    save_image(data.astronaut()[:64, :64], tmp_path / "in.png")
    assert main(["encode", fine["path"], str(tmp_path / "in.png"), str(bits)]) == 0
    assert main(["decode", fine["path"], str(bits), str(out)]) == 0 and out.is_file()
    assert main(["zoo", "verify"]) == 0
    assert "match their sha256" in capsys.readouterr().out


def test_export_then_import_never_overwrites(smoke_runs, tmp_path, capsys):
    archive = tmp_path / "class.tar"
    models = export_runs(tmp_path / "runs/smoke", archive)
    assert [m.name for m in models] == ["bls8-mse-lmbda0.0932", "bls8-proxy_vmaf-lmbda0.0932-alpha0.5-ft"]
    with pytest.raises(ZooError, match="already exists"):
        export_runs(tmp_path / "runs/smoke", archive)
    done = import_archive(archive, tmp_path / "student")
    assert done == {"imported": [m.name for m in models], "kept": []}
    student = tmp_path / "student/smoke/bls8-proxy_vmaf-lmbda0.0932-alpha0.5-ft"
    assert sorted(p.name for p in (student / "checkpoints").iterdir()) == ["step_1.pt", "step_2.pt"]
    load_checkpoint(student / "model.pt", device="cpu")
    (student / "log.csv").write_text("mine\n")
    again = import_archive(archive, tmp_path / "student")
    assert again == {"imported": [], "kept": [m.name for m in models]}
    assert (student / "log.csv").read_text() == "mine\n", "a run that is there is never replaced"
    assert not list((tmp_path / "student/smoke").glob(".import-*")), "no temporary folder is left"
    assert main(["zoo", "import", str(archive), "--runs", str(tmp_path / "student")]) == 0
    assert "0 runs imported, 2 kept" in capsys.readouterr().out
    small = export_runs(tmp_path / "runs/smoke", tmp_path / "small.tar", final_only=True)
    assert not any(rel.startswith("checkpoints/") for m in small for rel in m.files)


def _members(archive):
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def _write_tar(path, members):
    with tarfile.open(path, "w") as tar:
        for member, data in members:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path


def test_import_refuses_corrupt_and_foreign_archives(smoke_runs, tmp_path):
    archive = export_runs(tmp_path / "runs/smoke", tmp_path / "class.tar") and tmp_path / "class.tar"
    dest = tmp_path / "student"
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ZooError, match="damaged or cut short|does not match its manifest"):
        import_archive(cut, dest)
    members = _members(archive)
    flipped = [(m, bytes([d[0] ^ 1]) + d[1:] if m.name.endswith("model.pt") else d) for m, d in members]
    with pytest.raises(ZooError, match="does not match its sha256"):
        import_archive(_write_tar(tmp_path / "flipped.tar", flipped), dest)
    no_manifest = [(m, d) for m, d in members if m.name != "manifest.json"]
    with pytest.raises(ZooError, match="not a runs archive of the kit"):
        import_archive(_write_tar(tmp_path / "foreign.tar", no_manifest), dest)
    extra = tarfile.TarInfo("smoke/bls8-mse-lmbda0.0932/extra.py")
    with pytest.raises(ZooError, match="does not match its manifest"):
        import_archive(_write_tar(tmp_path / "extra.tar", members + [(extra, b"import os")]), dest)
    manifest = json.loads(dict((m.name, d) for m, d in members)["manifest.json"])
    manifest["models"][0]["name"] = "../escape"
    evil = [(m, json.dumps(manifest).encode() if m.name == "manifest.json" else d) for m, d in members]
    with pytest.raises(ZooError, match="not folder names"):
        import_archive(_write_tar(tmp_path / "evil.tar", evil), dest)
    text = tmp_path / "notes.txt"
    text.write_text("not an archive")
    with pytest.raises(ZooError, match="not a readable archive"):
        import_archive(text, dest)
    with pytest.raises(ZooError, match="does not exist"):
        import_archive(tmp_path / "missing.tar", dest)
    assert not (dest / "smoke").exists() or not any((dest / "smoke").iterdir()), "a refused archive changes nothing"


def test_shipped_registry_matches_its_files():
    """The zoo in the repository: every registered file is there and matches, and every file is registered."""
    models = load_registry(REGISTRY_JSON)
    if not models:
        pytest.skip("the zoo has no shipped models yet")
    assert verify(models) == []
    rd_cache = rd_cache_files(REGISTRY_JSON)
    registered = {(ZOO_ROOT / m.profile / m.name / rel).resolve() for m in models for rel in m.files}
    registered |= {(ZOO_ROOT / "rd_cache" / rel).resolve() for rel in rd_cache}
    on_disk = {p.resolve() for p in ZOO_ROOT.glob("*/*/**/*") if p.is_file()}
    assert on_disk == registered, f"unregistered {sorted(on_disk - registered)[:3]}, missing {sorted(registered - on_disk)[:3]}"
    size = sum(m.size for m in models) + sum(f["size"] for f in rd_cache.values())
    assert size <= 50e6, "the zoo stays within 50 MB"


def test_a_shipped_model_codes_an_image(photo):
    """The shipped MSE anchor is a trained codec: the astronaut at well under 2 bpp and above 28 dB."""
    from proxiqa_lab.codec import LearnedCodec
    from proxiqa_lab.metrics import score

    anchor = [m for m in load_registry(REGISTRY_JSON) if m.objective == "mse" and m.init is None and m.architecture == "bls"]
    if not anchor:
        pytest.skip("the zoo has no shipped MSE anchor yet")
    codec = LearnedCodec([anchor[0].path])
    img = photo[:256, :256]
    data = codec.encode(img, codec.points[0])
    decoded = codec.decode(data, codec.points[0])
    bpp = 8 * len(data) / (256 * 256)
    psnr = float(score(img, decoded, metrics=("psnr_avg",))["psnr_avg"][0])
    assert 0.1 < bpp < 2.0 and psnr > 28, (bpp, psnr)


def test_shipped_rd_points_are_read_on_a_fresh_clone_and_refused_when_altered(roots, monkeypatch, photo):
    import pandas as pd

    from proxiqa_lab.classical import get_codec
    from proxiqa_lab.evaluation import RDCache, evaluate
    from proxiqa_lab.zoo.archive import ship_rd_cache

    images = {"crop": photo[:96, :128]}
    codec = get_codec("jpeg", points=(0.5, 1.0))
    first = evaluate(codec, images, metrics=("psnr_avg",), cache=RDCache.default(), progress=False)
    assert ship_rd_cache(roots / "runs/rd_cache") == 1 and verify() == []
    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(roots / "fresh_runs"))
    again = evaluate(codec, images, metrics=("psnr_avg",), cache=RDCache.default(), progress=False)
    pd.testing.assert_frame_equal(again, first)  # encode_s too: the shipped rows, not a new encode
    shipped = next((roots / "zoo/rd_cache").glob("*/*.json"))
    shipped.write_text(shipped.read_text().replace('"bpp"', '"bpp" ', 1))
    assert any("rd_cache" in p for p in verify())
    with pytest.warns(UserWarning, match="do not match their sha256"):
        measured = evaluate(codec, images, metrics=("psnr_avg",), cache=RDCache.default(), progress=False)
    assert (measured["bpp"] == first["bpp"]).all() and not measured["encode_s"].equals(first["encode_s"])


def test_notebook_runs_list_every_run_once_after_what_it_starts_from():
    from proxiqa_lab.zoo.plan import notebook_runs

    runs = notebook_runs("lab")
    names = [r.name for r in runs]
    assert len(names) == len(set(names))
    for i, run in enumerate(runs):
        assert set(run.needs) <= set(names[:i]), f"{run.name} is listed before what it starts from"
    by_name = {r.name: r for r in runs}
    assert by_name["bls64-mse-lmbda0.0932"].needs == () and "00" in by_name["bls64-mse-lmbda0.0932"].notebooks
    frozen = by_name["bls64-pretrained-proxy_vmaf-lmbda0.025-alpha1-ft"]
    assert frozen.needs[-1].startswith("pretrained-proxy-vmaf") and frozen.notebooks == ["02"]
    bmshj = [r for r in runs if r.name.startswith("bmshj48-")]
    assert len(bmshj) == 6 and all(n.startswith("bmshj48-") for r in bmshj for n in r.needs)
    assert {r.name for r in runs if "07" in r.notebooks} >= {f"bls64-direct_vmaf-lmbda{v:g}-alpha{a:g}-ft"
                                                            for v in (0.0067, 0.025, 0.0932) for a in (0.5, 0.8, 0.95)}


def test_train_plan_trains_side_by_side_and_skips_complete_and_shipped_runs(roots, monkeypatch):
    from proxiqa_lab.zoo.plan import PlannedRun, is_complete, train_plan

    base = RunSpec("mse", 0.0932)
    tuned = [RunSpec("mse", 0.0932, finetune=True), RunSpec("ssim", 0.0932, finetune=True)]
    runs = [PlannedRun("bls8-mse-lmbda0.0932", base, (), [base])]
    runs += [PlannedRun(s.name("bls", 8), s, ("bls8-mse-lmbda0.0932",), [base, s]) for s in tuned]
    log = []
    finished = train_plan(runs, "smoke", jobs=2, log=log.append)
    assert finished[0] == "bls8-mse-lmbda0.0932" and sorted(finished[1:]) == sorted(r.name for r in runs[1:])
    started = [m.split()[2] for m in log if " start " in m]
    assert started[0] == "bls8-mse-lmbda0.0932" and len(started) == 3, "the fine-tunes wait for their MSE model"
    assert all(is_complete(r, "smoke") for r in runs)
    assert train_plan(runs, "smoke", jobs=2, log=log.append) == [], "complete runs are not trained again"
    ship([roots / "runs/smoke/bls8-mse-lmbda0.0932"], "smoke")
    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(roots / "fresh_runs"))  # a fresh clone: the base is shipped
    assert sorted(train_plan(runs, "smoke", jobs=2, log=log.append)) == sorted(r.name for r in runs[1:])
    config = json.loads((roots / "fresh_runs/smoke/bls8-mse-lmbda0.0932-ft/config.json").read_text())
    assert config["init_checkpoint"] == str(roots / "zoo/smoke/bls8-mse-lmbda0.0932/model.pt")


def test_evaluate_zoo_names_what_is_missing(roots, capsys):
    assert main(["evaluate", "--zoo", "proxy:vmaf", "--dataset", "samples", "--out", str(roots / "out")]) == 1
    assert "ships no BLS 'proxy:vmaf' models of the lab grid" in capsys.readouterr().err


def test_evaluate_shipped_curves_on_own_images(tmp_path, photo):
    """`evaluate --zoo` codes a folder of one's own pictures with the shipped lab models (one point per λ)."""
    from proxiqa_lab.zoo.plan import grid_models

    try:
        models = grid_models("mse")
    except ZooError:
        pytest.skip("the zoo has no shipped MSE grid yet")
    from PIL import Image

    own = tmp_path / "mine"
    own.mkdir()
    Image.fromarray(photo[:128, :192]).save(own / "astronaut.png")
    out = tmp_path / "eval"
    assert main(["evaluate", "--zoo", "mse", "--dataset", str(own), "--metrics", "psnr_avg", "--no-progress",
                 "--out", str(out)]) == 0
    import pandas as pd

    rows = pd.read_csv(out / "BLS MSE.csv")
    assert len(rows) == len(models) and rows["bpp"].is_monotonic_increasing, "one point per λ, rate rising with λ"
