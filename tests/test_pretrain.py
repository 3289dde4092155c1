"""Proxy pretraining on a synthetic-distortion database (Sec. III-C)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from proxiqa_lab.errors import CheckpointError
from proxiqa_lab.training.pretrain import (
    KINDS,
    PRETRAIN_PROFILES,
    REFERENCE_KIND,
    DistortionDatabase,
    build_distortion_database,
    distort,
    evaluate_proxy,
    load_pretrained_proxy,
    pretrain_proxy,
    save_pretrained_proxy,
    severity_levels,
)


@pytest.fixture(scope="module")
def sources() -> dict[str, np.ndarray]:
    """Four natural photos, cropped to 160x160 to keep the tests fast."""
    from proxiqa_lab.data import sample_images

    return {name: img[:160, :160].copy() for name, img in sample_images().items()}


@pytest.fixture(scope="module")
def database(sources) -> DistortionDatabase:
    """64x64 patches: VMAF scores every identity pair alike (97.43; from 33 px up)."""
    return build_distortion_database(sources, "vmaf", patch_size=64, patches_per_image=3, seed=0)


@pytest.fixture(scope="module")
def small(sources) -> DistortionDatabase:
    """40x40 patches (VMAF needs 33 px), white noise at 8 levels: cheap to train on, learnable from 3 images."""
    return build_distortion_database(sources, "vmaf", patch_size=40, patches_per_image=8, kinds=("noise",), levels=8,
                                     seed=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- distortions


def test_severity_levels_are_ordered_mild_to_severe():
    quality = severity_levels("jpeg")
    assert len(quality) == 5 and list(quality) == sorted(quality, reverse=True)
    for kind in ("jpeg2000", "blur", "noise"):
        values = severity_levels(kind, 7)
        assert len(values) == 7 and list(values) == sorted(values)


def test_distort_keeps_shape_and_dtype(photo):
    img = photo[:64, :64]
    for kind in KINDS:
        out = distort(img, kind, severity_levels(kind)[2], np.random.default_rng(0))
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - img).mean() > 0.5, kind


# ----------------------------------------------------------------------------- database


def test_database_shapes_and_bookkeeping(database, sources):
    n_refs = len(sources) * 3
    pairs_per_ref = 1 + len(KINDS) * 5
    assert database.refs.shape == (n_refs, 64, 64, 3) and database.refs.dtype == np.uint8
    assert database.dists.shape == (n_refs * pairs_per_ref, 64, 64, 3) and database.dists.dtype == np.uint8
    assert len(database) == n_refs * pairs_per_ref
    for name in ("ref_index", "scores", "kind", "level", "param", "source"):
        assert getattr(database, name).shape == (len(database),), name
    assert database.pair_refs().shape == database.dists.shape
    assert database.source_names == list(sources)
    assert set(database.kinds) == {REFERENCE_KIND, *KINDS}
    identity = database.kind == REFERENCE_KIND
    assert np.array_equal(database.dists[identity], database.pair_refs()[identity])
    # every pair comes from the same source as its reference
    assert np.array_equal(database.source, np.repeat(np.arange(len(sources)), 3 * pairs_per_ref))


def test_identity_pairs_score_at_the_top(database):
    identity = database.kind == REFERENCE_KIND
    for r in range(len(database.refs)):
        mine = database.ref_index == r
        assert database.scores[mine & identity].item() == pytest.approx(database.scores[mine].max())
    assert database.scores[identity].min() > database.scores[~identity].mean()


def test_scores_fall_with_severity_for_each_kind(database):
    for kind in KINDS:
        means = [database.scores[(database.kind == kind) & (database.level == lv)].mean() for lv in range(1, 6)]
        assert means[0] > means[-1] + 20, (kind, means)
        assert np.all(np.diff(means) < 1.0), (kind, means)  # non-increasing up to sampling noise


def test_split_is_by_source_image(database):
    train, test = database.split(0.25, seed=0)
    assert len(train) + len(test) == len(database)
    assert not set(database.source[train]) & set(database.source[test])
    assert len(np.unique(database.source[test])) == 1
    again, _ = database.split(0.25, seed=0)
    assert np.array_equal(train, again)


def test_save_load_round_trip(database, tmp_path):
    path = database.save(tmp_path / "db.npz")
    loaded = DistortionDatabase.load(path)
    for name in ("refs", "dists", "ref_index", "scores", "kind", "level", "param", "source"):
        assert np.array_equal(getattr(loaded, name), getattr(database, name)), name
    assert loaded.source_names == database.source_names and loaded.info == database.info
    assert not list(tmp_path.glob("*.tmp"))


def test_cache_is_reused_and_rebuilt_on_mismatch(sources, tmp_path):
    two = dict(list(sources.items())[:2])
    cache = tmp_path / "cache.npz"
    first = build_distortion_database(two, "vmaf", patch_size=40, kinds=("blur",), levels=2, cache=cache)
    stamp = cache.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a matching cache is reused silently
        again = build_distortion_database(two, "vmaf", patch_size=40, kinds=("blur",), levels=2, cache=cache)
    assert cache.stat().st_mtime_ns == stamp
    assert np.array_equal(again.dists, first.dists) and np.array_equal(again.scores, first.scores)
    with pytest.warns(UserWarning, match="levels"):
        other = build_distortion_database(two, "vmaf", patch_size=40, kinds=("blur",), levels=3, cache=cache)
    assert len(other) == 2 * (1 + 3) and DistortionDatabase.load(cache).info["levels"] == 3
    changed = {**two, "astronaut": two["astronaut"][::-1].copy()}
    with pytest.warns(UserWarning, match="sources"):
        build_distortion_database(changed, "vmaf", patch_size=40, kinds=("blur",), levels=3, cache=cache)


def test_cache_refuses_a_foreign_file(sources, tmp_path):
    foreign = tmp_path / "mine.npz"
    foreign.write_bytes(b"not a database")
    with pytest.raises(ValueError, match="not a distortion database"):
        build_distortion_database(sources, "vmaf", patch_size=40, kinds=("blur",), levels=1, cache=foreign)
    assert foreign.read_bytes() == b"not a database"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kinds": ("jpeg", "gif")}, "kinds"),
        ({"kinds": ()}, "kinds"),
        ({"levels": 0}, "levels"),
        ({"levels": 2.5}, "levels"),
        ({"levels": 11}, "levels"),
        ({"patch_size": 36}, "multiple of 8"),
        ({"patch_size": 16}, "vmaf needs images of at least"),
        ({"patch_size": 32}, "vmaf needs images of at least 33 px"),
        ({"metric": "ms_ssim", "patch_size": 128}, "ms_ssim needs images of at least 176"),
        ({"patches_per_image": 0}, "patches_per_image"),
        ({"margin": 8}, "margin"),
        ({"metric": "lpips"}, "metric"),
    ],
)
def test_bad_build_arguments(sources, kwargs, match):
    kwargs = {"metric": "vmaf", "patch_size": 40, **kwargs}
    metric = kwargs.pop("metric")
    with pytest.raises(ValueError, match=match):
        build_distortion_database(sources, metric, **kwargs)


def test_sources_too_small_or_wrong_type(sources):
    with pytest.raises(ValueError, match="smaller than"):
        build_distortion_database(sources, "vmaf", patch_size=160)
    with pytest.raises(ValueError, match="uint8"):
        build_distortion_database([np.zeros((100, 100, 3), np.float32)] * 2, "vmaf", patch_size=40)
    with pytest.raises(ValueError, match="empty"):
        build_distortion_database([], "vmaf", patch_size=40)


def test_too_few_sources_for_a_split(sources):
    one = build_distortion_database({"a": sources["astronaut"]}, "vmaf", patch_size=40, kinds=("noise",), levels=2)
    with pytest.raises(ValueError, match="at least 2 source images"):
        pretrain_proxy(one, epochs=1, progress=False)
    with pytest.raises(ValueError, match="holdout"):
        one.split(1.0)


# ----------------------------------------------------------------------------- pretraining


EPOCHS = 6


@pytest.fixture(scope="module")
def trained(small):
    return pretrain_proxy(small, epochs=EPOCHS, batch_size=8, lr=1e-3, holdout=0.25, seed=0, device="cpu",
                          progress=False)


def test_pretraining_beats_the_untrained_net_and_the_mean(trained, small):
    net, report = trained
    train, test = small.split(0.25, seed=0)
    constant = np.sqrt(np.mean((small.scores[test] - small.scores[train].mean()) ** 2))
    assert report.rmse < report.untrained_rmse
    assert report.rmse < 0.75 * constant  # better than predicting the mean training score
    assert report.plcc > 0.5
    again = evaluate_proxy(net, small, test, device="cpu")
    assert again["rmse"] == pytest.approx(report.rmse)
    assert set(report.per_kind) == set(small.kinds)
    assert report.n_train == len(train) and report.n_test == len(test)
    assert len(report.history) == EPOCHS
    json.dumps(report.to_dict())  # JSON-ready


def test_pretraining_is_deterministic(small):
    runs = [pretrain_proxy(small, epochs=1, batch_size=32, seed=seed, device="cpu", progress=False) for seed in (0, 0, 1)]
    (net, report), (net2, report2), (net3, _) = runs
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        assert torch.equal(a, b), k
    assert report2.rmse == report.rmse
    assert not torch.equal(net.fc.weight, net3.fc.weight)


def test_bad_training_arguments(small):
    for kwargs, match in (({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": -1.0}, "lr"),
                          ({"holdout": 0.0}, "holdout")):
        with pytest.raises(ValueError, match=match):
            pretrain_proxy(small, progress=False, **kwargs)
    with pytest.raises(ValueError, match="DistortionDatabase"):
        pretrain_proxy({"scores": [1.0]}, progress=False)


def test_save_load_pretrained_proxy(trained, small, tmp_path):
    net, report = trained
    path = save_pretrained_proxy(tmp_path / "proxy.pt", net, report, small.info)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["metric"] == "vmaf" and raw["patch_size"] == 40
    loaded, info = load_pretrained_proxy(path, device="cpu")
    assert info["metric"] == "vmaf" and info["patch_size"] == 40
    assert info["report"]["rmse"] == pytest.approx(report.rmse)
    assert info["database"]["sources_sha256"] == small.info["sources_sha256"]
    x, x_hat = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    assert torch.equal(loaded(x, x_hat), net(x, x_hat))


def test_load_refuses_other_checkpoints(tmp_path):
    from proxiqa_lab.models import ProxIQANet, save_checkpoint

    path = save_checkpoint(tmp_path / "plain.pt", ProxIQANet(patch_size=32))
    with pytest.raises(CheckpointError, match="not a pretrained proxy"):
        load_pretrained_proxy(path)


def test_profiles_name_valid_settings():
    assert set(PRETRAIN_PROFILES) == {"smoke", "lab", "paper"}
    for preset in PRETRAIN_PROFILES.values():
        assert preset["patch_size"] % 8 == 0 and preset["epochs"] >= 1 and preset["patches_per_image"] >= 1


# ----------------------------------------------------------------------------- CLI


def test_cli_json(tmp_path, capsys, monkeypatch):
    from proxiqa_lab.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "proxy.pt"
    argv = ["pretrain", "--metric", "vmaf", "--dataset", "samples", "--patch-size", "40", "--patches-per-image", "1",
            "--kinds", "blur,noise", "--levels", "2", "--epochs", "1", "--device", "cpu", "--out", str(out), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metric"] == "vmaf" and result["database"]["dataset"] == "samples"
    assert {"plcc", "srocc", "rmse", "per_kind", "untrained_rmse"} <= set(result)
    assert result["n_train"] + result["n_test"] == result["database"]["pairs"]
    net, info = load_pretrained_proxy(out, device="cpu")
    assert info["report"]["rmse"] == pytest.approx(result["rmse"])
    # refuses to overwrite without --force
    assert main(argv) == 1
    assert "exists" in capsys.readouterr().err
