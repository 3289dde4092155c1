"""Tests of proxiqa_lab.training: objectives, checkpoints and exact resume, NaN handling, CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from proxiqa_lab.errors import TrainingError
from proxiqa_lab.training import LOG_COLUMNS, PROFILES, TrainConfig, load_run, make_config, train
from proxiqa_lab.training.checkpointing import load_state

#: Small and fast: the smoke profile with a handful of steps, samples as data.
FAST = dict(steps=4, checkpoint_every=2, log_every=1, progress=False, data="samples")
LOSS_COLUMNS = ["loss", "bpp", "mse", "proxy_loss", "metric_loss", "metric_true", "metric_proxy", "aux_loss"]


def torch_psnr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """A cheap deterministic stand-in metric (per-pair PSNR in dB) for the callable-metric path."""
    mse = (x - x_hat).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


# --------------------------------------------------------------------------- config and validation
def test_profiles_are_valid_and_documented():
    assert set(PROFILES) == {"smoke", "lab", "paper"}
    for name, cfg in PROFILES.items():
        make_config(name)  # validates
        assert cfg.profile == name
    paper = PROFILES["paper"]
    assert (paper.N, paper.lr, paper.lr_drop_step, paper.steps, paper.batch_size, paper.patch_size) == (
        192, 1e-4, 2_000_000, 2_100_000, 8, 128)
    assert paper.proxy_lr == 1e-3 and paper.aux_lr == 1e-3
    assert PROFILES["smoke"].N <= 16 and PROFILES["smoke"].batch_size == 4


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"alpha": 1.5}, "alpha must be in [0, 1], got 1.5"),
        ({"lmbda": -0.01}, "lmbda must be > 0"),
        ({"objective": "proxy:lpips"}, "unknown metric 'lpips'"),
        ({"objective": "mae"}, "allowed"),
        ({"patch_size": 100}, "patch_size must be a multiple of 16"),
        ({"colour": 3}, "unknown training option"),
        ({"lmbda": "big"}, "lmbda must be a number, got 'big'"),
        ({"batch_size": 2.5}, "batch_size must be an integer"),
        ({"objective": "proxy:custom", "m_bar": 1.0}, "metric callable"),
        ({"objective": "proxy:custom"}, "m_bar"),
    ],
)
def test_bad_values_raise_before_any_work(tmp_path, overrides, needle):
    out = tmp_path / "run"
    with pytest.raises(ValueError) as err:
        train("smoke", out=out, **FAST, **overrides)
    assert needle in str(err.value)
    assert not out.exists()


def test_unknown_objective_lists_allowed():
    with pytest.raises(ValueError, match="proxy:vmaf") as err:
        make_config("smoke", objective="perceptual")
    assert "pretrained-proxy:ssim" in str(err.value)
    with pytest.raises(ValueError, match="profile must be one of"):
        make_config("huge")


def test_cli_rejects_bad_values(tmp_path, capsys):
    from proxiqa_lab.cli import main

    for argv, needle in [
        (["--profile", "nope"], "profile must be one of"),
        (["--profile", "smoke", "--alpha", "1.5"], "alpha must be in [0, 1]"),
        (["--profile", "smoke", "--lmbda", "-1"], "lmbda must be > 0"),
        (["--profile", "smoke", "--objective", "proxy:foo"], "unknown metric"),
        (["--profile", "smoke", "--set", "patch_size=72"], "patch_size"),
    ]:
        assert main(["train", *argv, "--out", str(tmp_path / "x")]) == 1
        assert needle in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- objectives
@pytest.mark.parametrize("objective", ["mse", "ssim", "ssim+ld", "ms-ssim", "proxy:vmaf", "proxy:ms_ssim"])
def test_each_objective_trains_in_smoke(tmp_path, objective):
    from proxiqa_lab.models import BLS, ProxIQANet, load_checkpoint

    steps = 2 if objective.startswith("proxy") else 3
    run = train("smoke", out=tmp_path / "run", objective=objective, **{**FAST, "steps": steps})
    log = run.log
    assert list(log.columns) == list(LOG_COLUMNS)
    assert log["step"].tolist() == list(range(1, steps + 1))
    assert np.isfinite(log[["loss", "bpp", "mse", "psnr", "aux_loss", "lr", "seconds"]].to_numpy()).all()
    model, extra = load_checkpoint(run.model_path, device="cpu")
    assert isinstance(model, BLS) and extra["objective"] == objective and extra["step"] == steps
    assert extra["lmbda"] == PROFILES["smoke"].lmbda
    if objective.startswith("proxy"):
        assert np.isfinite(log[["proxy_loss", "metric_loss", "metric_true", "metric_proxy"]].to_numpy()).all()
        proxy, pextra = load_checkpoint(run.proxy_path, device="cpu")
        assert isinstance(proxy, ProxIQANet) and pextra["metric"] == objective.split(":")[1]
    else:
        assert run.proxy_path is None and log["metric_true"].isna().all()


def test_pretrained_proxy_stays_frozen_and_logs_true_metric(tmp_path):
    from proxiqa_lab.models import ProxIQANet, load_checkpoint
    from proxiqa_lab.training.pretrain import save_pretrained_proxy

    torch.manual_seed(0)
    net = ProxIQANet(patch_size=64)
    path = save_pretrained_proxy(tmp_path / "proxy.pt", net, {"metric": "vmaf", "patch_size": 64})
    run = train("smoke", out=tmp_path / "run", objective="pretrained-proxy:vmaf", proxy_init=str(path),
                **{**FAST, "steps": 3, "log_every": 2})
    proxy, _ = load_checkpoint(run.proxy_path, device="cpu")
    for a, b in zip(net.state_dict().values(), proxy.state_dict().values()):
        assert torch.equal(a, b)  # never updated
    log = run.log
    assert log["step"].tolist() == [2, 3]
    assert np.isfinite(log["metric_true"]).all() and np.isfinite(log["metric_proxy"]).all()
    assert log["metric_loss"].isna().all()
    assert "frozen" in " ".join(run.metadata["notes"])


def test_callable_metric_needs_m_bar_and_trains(tmp_path):
    with pytest.raises(ValueError, match="m_bar"):
        train("smoke", out=tmp_path / "a", objective=torch_psnr, **FAST)
    run = train("smoke", out=tmp_path / "b", objective=torch_psnr, m_bar=60.0, **FAST)
    log = run.log
    assert np.isfinite(log["metric_true"]).all() and np.isfinite(log["metric_loss"]).all()
    # The proxy regresses the callable's scores (eq. 11): its loss is the squared error of M-hat against M.
    assert (log["metric_true"] > 0).all()


# --------------------------------------------------------------------------- resume
# Exact equality is the CPU's guarantee (``deterministic``); tests/test_cuda.py checks CUDA to float rounding.
@pytest.mark.parametrize("overlap", [False, True])
def test_resume_is_exact(tmp_path, overlap):
    kw = dict(objective=torch_psnr, m_bar=60.0, overlap_metric=overlap, device="cpu", **{**FAST, "steps": 6})
    straight = train("smoke", out=tmp_path / "straight", **kw).log
    train("smoke", out=tmp_path / "split", **{**kw, "steps": 3})
    resumed = train("smoke", out=tmp_path / "split", **kw).log
    assert resumed["step"].tolist() == list(range(1, 7))
    pd.testing.assert_frame_equal(straight[LOSS_COLUMNS], resumed[LOSS_COLUMNS], check_exact=True)
    a = load_state(tmp_path / "straight" / "checkpoints" / "last.pt")["codec"]
    b = load_state(tmp_path / "split" / "checkpoints" / "last.pt")["codec"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_overlap_lags_proxy_by_one_step(tmp_path):
    kw = dict(objective=torch_psnr, m_bar=60.0, **{**FAST, "steps": 4, "checkpoint_every": 4})
    seq = train("smoke", out=tmp_path / "seq", overlap_metric=False, **kw).log
    ovl = train("smoke", out=tmp_path / "ovl", overlap_metric=True, **kw).log
    # Step 1 and 2 see the same proxy (not yet updated in either mode at step 1; at step 2 the
    # overlapped run has not applied batch 1's proxy step yet).
    assert seq["loss"][0] == ovl["loss"][0]
    assert seq["metric_proxy"][1] != ovl["metric_proxy"][1]


def test_fused_step_equals_separate_proxy_step(tmp_path):
    """The default CPU path (one proxy forward, metric during the backward) is the sequential update."""
    from proxiqa_lab.training.trainer import Trainer

    cfg = make_config("smoke", objective="proxy:custom", m_bar=60.0, overlap_metric=False, device="cpu", **FAST)
    logs = []
    for fuse in (True, False):
        out = tmp_path / f"fuse{fuse}"
        out.mkdir()
        (out / "config.json").write_text(json.dumps(cfg.to_dict()))
        trainer = Trainer(cfg, out, metric=torch_psnr)
        trainer.fuse = fuse
        logs.append(trainer.run().log)
    pd.testing.assert_frame_equal(logs[0][LOSS_COLUMNS], logs[1][LOSS_COLUMNS], check_exact=True)


def test_rerun_prints_resuming_and_completed_run_is_kept(tmp_path, capsys):
    out = tmp_path / "run"
    train("smoke", out=out, **FAST)
    mtime = (out / "model.pt").stat().st_mtime_ns
    capsys.readouterr()
    run = train("smoke", out=out, **FAST)
    assert "resuming from step 4" in capsys.readouterr().err
    assert run.log["step"].tolist() == [1, 2, 3, 4]
    assert (out / "model.pt").stat().st_mtime_ns >= mtime


def test_is_complete_needs_model_status_and_steps(tmp_path):
    from proxiqa_lab.training.runs import is_complete

    out = tmp_path / "run"
    assert not is_complete(out)  # missing
    train("smoke", out=out, **FAST)
    assert is_complete(out) and is_complete(out, steps=4)
    assert not is_complete(out, steps=5)  # asked for more steps than it ran
    meta = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    assert not is_complete(out)
    (out / "run.json").write_text("{not json")
    assert not is_complete(out)  # damaged metadata is not a complete run, and no crash
    (out / "run.json").write_text(json.dumps(meta))
    (out / "model.pt").unlink()
    assert not is_complete(out)


def test_config_conflicts_and_new_run_rules(tmp_path):
    out = tmp_path / "run"
    train("smoke", out=out, **{**FAST, "steps": 2})
    with pytest.raises(ValueError) as err:
        train("smoke", out=out, **{**FAST, "steps": 2}, lmbda=0.05, alpha=0.3)
    assert "lmbda" in str(err.value) and "alpha" in str(err.value)
    with pytest.raises(ValueError, match="not empty"):
        train("smoke", out=out, resume=False, **FAST)
    assert (out / "checkpoints" / "last.pt").is_file()  # nothing deleted
    stranger = tmp_path / "other"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no training run"):
        train("smoke", out=stranger, **FAST)
    run = train("smoke", out=out, **{**FAST, "steps": 4})  # more steps: resumes
    assert run.log["step"].tolist() == [1, 2, 3, 4]
    assert load_run(out).config.steps == 4


def test_checkpoint_contents_load_weights_only(tmp_path):
    out = tmp_path / "run"
    train("smoke", out=out, objective=torch_psnr, m_bar=60.0, keep_checkpoints_at=[2], **FAST)
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    for key in ("codec", "proxy", "optimizer", "aux_optimizer", "proxy_optimizer", "scheduler", "ranks", "step"):
        assert key in state, key
    assert state["step"] == 4 and len(state["ranks"]) == 1
    assert set(state["ranks"][0]) >= {"rng", "loader", "codec_sha256"}
    from proxiqa_lab.models import load_checkpoint

    kept, extra = load_checkpoint(out / "checkpoints" / "step_2.pt", device="cpu")
    assert extra["step"] == 2 and extra["training"]["step"] == 2
    final, _ = load_checkpoint(out / "model.pt", device="cpu")
    x = torch.rand(1, 3, 64, 64)
    assert kept.compress(x)["strings"] and final.compress(x)["strings"]


def test_model_loads_in_learned_codec(tmp_path):
    codec_mod = pytest.importorskip("proxiqa_lab.codec")
    run = train("smoke", out=tmp_path / "run", **FAST)
    codec = codec_mod.LearnedCodec([run.model_path], name="smoke")
    img = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    data = codec.encode(img, codec.points[0])
    assert codec.decode(data, codec.points[0]).shape == img.shape


def test_init_checkpoint_fine_tunes_and_is_recorded(tmp_path):
    base = train("smoke", out=tmp_path / "mse", **FAST)
    run = train("smoke", out=tmp_path / "ft", init_checkpoint=str(base.out), objective="ssim", **FAST)
    assert "fine-tuned" in " ".join(run.metadata["notes"])
    with pytest.raises(ValueError, match="N"):
        train("smoke", out=tmp_path / "bad", init_checkpoint=str(base.model_path), N=12, **FAST)


# --------------------------------------------------------------------------- determinism, NaN
def test_same_seed_same_losses(tmp_path):
    a = train("smoke", out=tmp_path / "a", **{**FAST, "steps": 3}).log
    b = train("smoke", out=tmp_path / "b", **{**FAST, "steps": 3}).log
    c = train("smoke", out=tmp_path / "c", seed=1, **{**FAST, "steps": 3}).log
    assert a["loss"].tolist() == b["loss"].tolist()
    assert a["loss"].tolist() != c["loss"].tolist()


def test_nan_metric_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def flaky(x, x_hat):
        calls["n"] += 1
        scores = torch_psnr(x, x_hat)
        return scores * float("nan") if calls["n"] >= 3 else scores

    out = tmp_path / "run"
    with pytest.raises(TrainingError) as err:
        train("smoke", out=out, objective=flaky, m_bar=60.0, **{**FAST, "steps": 6})
    assert "step 3" in str(err.value) and "metric_true" in str(err.value)
    state = load_state(out / "checkpoints" / "last.pt")
    assert state["step"] == 2
    assert all(np.isfinite(v.numpy()).all() for v in state["codec"].values() if v.is_floating_point())
    assert not (out / "model.pt").exists()


def test_nan_loss_names_the_term(tmp_path, monkeypatch):
    from proxiqa_lab.training import trainer

    real = trainer.codec_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            terms["bpp"] = terms["bpp"] * float("inf")
            terms["loss"] = terms["loss"] + terms["bpp"]
        return terms

    monkeypatch.setattr(trainer, "codec_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"step 3 \(loss=inf, bpp=inf\)"):
        train("smoke", out=out, **FAST)
    assert load_state(out / "checkpoints" / "last.pt")["step"] == 2
    assert pd.read_csv(out / "log.csv")["step"].tolist() == [1, 2]


# --------------------------------------------------------------------------- kill -9
def _cli(out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "proxiqa_lab", "train", "--profile", "smoke", "--objective", "mse",
            "--steps", str(steps), "--data", "samples", "--set", "checkpoint_every=3", "--no-progress",
            "--device", "cpu", "--out", str(out)]


def test_sigkill_then_resume_loses_at_most_one_interval(tmp_path):
    steps = 40
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(out, steps), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = out / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.is_file() and len(log.read_text().splitlines()) > 8 and (out / "checkpoints" / "last.pt").is_file():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    logged = len(log.read_text().splitlines()) - 1
    killed = load_state(out / "checkpoints" / "last.pt")
    saved, killed_seconds = killed["step"], killed["elapsed"]
    assert saved < steps, "the run finished before it was killed; lower the wait"
    assert logged - saved <= 3 + 1  # at most one checkpoint interval (and the row being written)
    done = subprocess.run(_cli(out, steps), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming from step {saved}" in done.stderr
    straight = tmp_path / "straight"
    assert subprocess.run(_cli(straight, steps), capture_output=True, timeout=300).returncode == 0
    a, b = pd.read_csv(out / "log.csv"), pd.read_csv(straight / "log.csv")
    assert a["step"].tolist() == list(range(1, steps + 1))
    pd.testing.assert_frame_equal(a[["loss", "bpp", "mse"]], b[["loss", "bpp", "mse"]], check_exact=True)
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "complete"
    # training time adds up over the resume: at least the step times of the log, both sessions
    assert meta["train_seconds"] >= round(0.95 * a["seconds"].sum(), 1) > 0
    assert load_run(out).train_seconds == meta["train_seconds"] > killed_seconds > 0


def test_train_config_roundtrip():
    cfg = make_config("lab", objective="proxy:vmaf", keep_checkpoints_at=[500, 100])
    assert cfg.keep_checkpoints_at == [100, 500]
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    from proxiqa_lab.training.config import parse_set

    assert parse_set(["lr=1e-4", "grad_clip=null", "keep_checkpoints_at=[10,20]", "data=samples"]) == {
        "lr": 1e-4, "grad_clip": None, "keep_checkpoints_at": [10, 20], "data": "samples"}
    with pytest.raises(ValueError, match="unknown training option"):
        parse_set(["learning_rate=1"])


def test_run_folder_is_locked_while_training(tmp_path):
    """Two processes never train into one run folder: the second gets a clear error naming the first."""
    import os
    import subprocess
    import sys

    from proxiqa_lab.training.checkpointing import run_lock

    code = (
        "import sys\n"
        "from proxiqa_lab.training.checkpointing import run_lock\n"
        "from proxiqa_lab.errors import TrainingError\n"
        f"try:\n    with run_lock({str(tmp_path)!r}): sys.exit(0)\n"
        "except TrainingError as e:\n    print(e); sys.exit(3)\n"
    )
    with run_lock(tmp_path):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "in use by another training process" in proc.stdout
    assert f"pid {os.getpid()}" in proc.stdout
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # released: it can be taken again


def test_unreadable_training_checkpoints_say_why(tmp_path):
    from proxiqa_lab.errors import CheckpointError

    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 60)  # a zip header, then nothing: a cut copy
    with pytest.raises(CheckpointError, match="not a readable training checkpoint: it is not a PyTorch checkpoint"):
        load_state(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a training checkpoint of this kit"):
        load_state(tmp_path / "foreign.pt")
