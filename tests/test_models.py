"""Models: ProxIQA network (Fig. 4), BLS [35], BMSHJ [36], registry and checkpoints."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn as nn
from compressai.layers import GDN

from proxiqa_lab.errors import CheckpointError
from proxiqa_lab.models import (
    BLS,
    BMSHJ,
    MODELS,
    ProxIQANet,
    architecture_of,
    build_model,
    load_checkpoint,
    save_checkpoint,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- ProxIQA network ----------------------------------------------------------------------


@pytest.mark.parametrize("patch_size", [128, 64, 8])
def test_proxiqa_parameter_count_matches_fig4(patch_size):
    # Fig. 4: 5x5 convs 6->16, 16->32, 32->64 (weights + biases), then FC from 64 x P/8 x P/8 to 1.
    convs = (6 * 16 * 25 + 16) + (16 * 32 * 25 + 32) + (32 * 64 * 25 + 64)
    fc = 64 * (patch_size // 8) ** 2 + 1
    assert n_params(ProxIQANet(patch_size)) == convs + fc


def test_proxiqa_layers_follow_fig4():
    net = ProxIQANet()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(6, 16), (16, 32), (32, 64)]
    assert all(c.kernel_size == (5, 5) and c.stride == (1, 1) and c.padding == (2, 2) for c in convs)
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 2 for p in pools)
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 3
    assert net.fc.in_features == 64 * 16 * 16 and net.fc.out_features == 1


def test_proxiqa_forward_scores_each_pair():
    torch.manual_seed(0)
    net = ProxIQANet(patch_size=32)
    x, x_hat = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    scores = net(x, x_hat)
    assert scores.shape == (4,)
    # Each score depends only on its own pair.
    assert torch.allclose(net(x[1:2], x_hat[1:2]), scores[1:2], atol=1e-6)
    # The order of (x, x_hat) matters: the input is the 6-channel concatenation [x, x_hat].
    assert not torch.allclose(net(x_hat, x), scores)


@pytest.mark.parametrize(
    "x_shape, x_hat_shape, message",
    [
        ((2, 1, 32, 32), (2, 1, 32, 32), r"x must be an RGB batch of shape \(N, 3, H, W\), got \(2, 1, 32, 32\)"),
        ((3, 32, 32), (3, 32, 32), r"x must be an RGB batch"),
        ((2, 3, 32, 32), (2, 3, 32, 24), r"same shape, got \(2, 3, 32, 32\) and \(2, 3, 32, 24\)"),
        ((2, 3, 30, 30), (2, 3, 30, 30), r"multiples of 8 .* got 30x30"),
        ((2, 3, 64, 64), (2, 3, 64, 64), r"built for 32x32 patches, got 64x64"),
    ],
)
def test_proxiqa_rejects_bad_inputs(x_shape, x_hat_shape, message):
    net = ProxIQANet(patch_size=32)
    with pytest.raises(ValueError, match=message):
        net(torch.rand(x_shape), torch.rand(x_hat_shape))


@pytest.mark.parametrize("patch_size", [0, 12, 100, 64.0, "128", True])
def test_proxiqa_rejects_bad_patch_size(patch_size):
    with pytest.raises(ValueError, match="patch_size must be a positive multiple of 8"):
        ProxIQANet(patch_size)


# -- BLS and BMSHJ ------------------------------------------------------------------------


def test_bls_layers_follow_the_paper():
    model = BLS(N=16)
    g_a = [(m.kernel_size[0], m.stride[0], m.out_channels) for m in model.g_a if isinstance(m, nn.Conv2d)]
    assert g_a == [(9, 4, 16), (5, 2, 16), (5, 2, 16)]
    g_s = [(m.kernel_size[0], m.stride[0], m.out_channels) for m in model.g_s if isinstance(m, nn.ConvTranspose2d)]
    assert g_s == [(5, 2, 16), (5, 2, 16), (9, 4, 3)]
    assert [type(m) for m in model.g_a] == [nn.Conv2d, GDN, nn.Conv2d, GDN, nn.Conv2d]
    assert [m.inverse for m in model.g_a if isinstance(m, GDN)] == [False, False]
    assert [m.inverse for m in model.g_s if isinstance(m, GDN)] == [True, True]
    assert model.downsampling_factor == 16


def test_bls_transform_parameter_count():
    N = 8
    gdn = N * N + N  # gamma (N x N) and beta (N)
    g_a = (3 * N * 81 + N) + gdn + (N * N * 25 + N) + gdn + (N * N * 25 + N)
    g_s = (N * N * 25 + N) + gdn + (N * N * 25 + N) + gdn + (N * 3 * 81 + 3)
    model = BLS(N=N)
    assert n_params(model.g_a) == g_a
    assert n_params(model.g_s) == g_s


def test_bls_forward_dict_and_shapes():
    torch.manual_seed(0)
    model = BLS(N=8)
    out = model(torch.rand(2, 3, 64, 48))
    assert set(out) == {"x_hat", "likelihoods"} and set(out["likelihoods"]) == {"y"}
    assert out["x_hat"].shape == (2, 3, 64, 48)
    assert out["likelihoods"]["y"].shape == (2, 8, 4, 3)
    assert ((out["likelihoods"]["y"] > 0) & (out["likelihoods"]["y"] <= 1)).all()


def test_bls_compress_decompress_shapes():
    torch.manual_seed(0)
    model = BLS(N=8).eval()
    model.update()
    x = torch.rand(1, 3, 32, 48)
    enc = model.compress(x)
    assert len(enc["strings"]) == 1 and tuple(enc["shape"]) == (2, 3)
    x_hat = model.decompress(enc["strings"], enc["shape"])["x_hat"]
    assert x_hat.shape == x.shape and x_hat.min() >= 0 and x_hat.max() <= 1
    with pytest.raises(ValueError, match="one list of strings"):
        model.decompress(enc["strings"] * 2, enc["shape"])


def test_bmshj_is_compressai_scale_hyperprior():
    from compressai.models import ScaleHyperprior

    model = BMSHJ(N=8, M=12)
    assert isinstance(model, ScaleHyperprior) and model.config == {"N": 8, "M": 12}
    assert model.downsampling_factor == 64
    out = model(torch.rand(1, 3, 64, 64))
    assert out["likelihoods"]["y"].shape == (1, 12, 4, 4)
    assert out["likelihoods"]["z"].shape == (1, 8, 1, 1)
    assert BMSHJ().config == {"N": 128, "M": 192}
    assert BLS().config == {"N": 192}


@pytest.mark.parametrize("cls, kwargs", [(BLS, {"N": 0}), (BLS, {"N": 8.0}), (BMSHJ, {"M": -1})])
def test_codec_models_reject_bad_sizes(cls, kwargs):
    with pytest.raises(ValueError, match="must be a positive integer"):
        cls(**kwargs)


# -- registry -----------------------------------------------------------------------------


def test_registry_builds_each_model():
    assert set(MODELS) == {"bls", "bmshj", "proxiqa"}
    for name, config in [("bls", {"N": 8}), ("bmshj", {"N": 8, "M": 8}), ("proxiqa", {"patch_size": 16})]:
        model = build_model(name, **config)
        assert isinstance(model, MODELS[name]) and model.config == config
        assert architecture_of(model) == name


def test_registry_errors_list_what_is_allowed():
    with pytest.raises(ValueError, match=r"unknown model 'vgg'; known models are \['bls', 'bmshj', 'proxiqa'\]"):
        build_model("vgg")
    with pytest.raises(ValueError, match=r"model 'bls' does not take 'M'; its config keys are \['N'\]"):
        build_model("bls", N=8, M=8)
    with pytest.raises(ValueError, match="not a registered model"):
        architecture_of(nn.Linear(2, 2))


# -- checkpoints --------------------------------------------------------------------------


def test_checkpoint_round_trip_proxiqa(tmp_path):
    torch.manual_seed(0)
    net = ProxIQANet(patch_size=16).eval()
    path = save_checkpoint(tmp_path / "proxy.pt", net, step=7)
    raw = torch.load(path, weights_only=True)
    assert raw["architecture"] == "proxiqa" and raw["config"] == {"patch_size": 16} and raw["step"] == 7
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    loaded, extra = load_checkpoint(path, device="cpu")
    x, x_hat = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    assert torch.equal(loaded(x, x_hat), net(x, x_hat))
    assert extra == {"step": 7}


@pytest.mark.parametrize("updated", [False, True])
@pytest.mark.parametrize("name, config", [("bls", {"N": 8}), ("bmshj", {"N": 8, "M": 8})])
def test_checkpoint_round_trip_codec_before_and_after_update(tmp_path, name, config, updated):
    torch.manual_seed(0)
    model = build_model(name, **config).eval()
    if updated:
        model.update()
    path = save_checkpoint(tmp_path / "codec.pt", model)
    torch.load(path, weights_only=True)  # plain types and tensors only
    loaded, _ = load_checkpoint(path, device="cpu")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x)["x_hat"], model(x)["x_hat"])
    model.update()
    loaded.update()
    with torch.no_grad():
        assert loaded.compress(x)["strings"] == model.compress(x)["strings"]
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_checkpoint_extra_nested_state_round_trips(tmp_path):
    torch.manual_seed(0)
    model = BLS(N=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model(torch.rand(1, 3, 32, 32))["x_hat"].mean().backward()
    opt.step()
    extra = {
        "optimizer": opt.state_dict(),
        "step": 12,
        "rng": {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.arange(5))},
        "history": [{"loss": 1.5, "tag": "a"}, (1, 2.0, None, True)],
    }
    save_checkpoint(tmp_path / "run.pt", model, **extra)
    _, loaded = load_checkpoint(tmp_path / "run.pt", device="cpu")
    assert loaded["step"] == 12 and loaded["history"] == extra["history"]
    assert torch.equal(loaded["rng"]["torch"], extra["rng"]["torch"])
    assert torch.equal(loaded["rng"]["numpy"], extra["rng"]["numpy"])
    opt2 = torch.optim.Adam(BLS(N=8).parameters(), lr=1.0)
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.param_groups[0]["lr"] == 1e-4
    for a, b in zip(opt.state.values(), opt2.state.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_checkpoint_refuses_unloadable_extra(tmp_path):
    with pytest.raises(ValueError, match=r"entry rng\['numpy'\] is a ndarray"):
        save_checkpoint(tmp_path / "a.pt", BLS(N=8), rng={"numpy": np.zeros(3)})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "a.pt", BLS(N=8), config={})
    assert not (tmp_path / "a.pt").exists()


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(path, ProxIQANet(patch_size=8))
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, ProxIQANet(patch_size=16))
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "new.pt", ProxIQANet(patch_size=16))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint: it is not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    good = save_checkpoint(tmp_path / "good.pt", ProxIQANet(patch_size=8))
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a readable checkpoint: it is not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a ProxIQA Lab checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"architecture": "resnet", "config": {}, "state_dict": {}}, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="unknown architecture 'resnet'"):
        load_checkpoint(tmp_path / "unknown.pt")
    bad = torch.load(good, weights_only=True)
    bad["config"] = {"patch_size": 16}
    torch.save(bad, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="its config says {'patch_size': 16} but its weights are those of"):
        load_checkpoint(tmp_path / "mismatch.pt")
    code = {"architecture": "bls", "config": {"N": 8}, "state_dict": {}, "x": nn.Linear(1, 1)}
    torch.save(code, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint: it holds Python objects"):
        load_checkpoint(tmp_path / "code.pt")
