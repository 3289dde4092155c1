"""TensorBoard events beside log.csv: scalars of every logged row, reconstructions, clean resume."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from proxiqa_lab.training import train

FAST = dict(steps=6, checkpoint_every=3, log_every=1, progress=False, data="samples", device="cpu")


def events(run) -> EventAccumulator:
    acc = EventAccumulator(str(run.out / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_scalars_and_reconstructions(tmp_path):
    run = train("smoke", out=tmp_path / "run", objective="proxy:vmaf", **FAST)
    acc = events(run)
    tags = set(acc.Tags()["scalars"])
    assert {"loss/total", "rate/bpp", "distortion/psnr_rgb_db", "metric/true", "metric/proxy"} <= tags
    bpp = [(e.step, e.value) for e in acc.Scalars("rate/bpp")]
    assert [s for s, _ in bpp] == list(range(1, 7))
    assert [round(v, 5) for _, v in bpp] == [round(v, 5) for v in run.log["bpp"]]
    assert [e.step for e in acc.Images("reconstructions (top: source)")] == [3, 6]


def test_resume_leaves_one_event_per_step(tmp_path):
    """A run stopped at step 5 resumes from its step-3 checkpoint: step 4 is logged again, once."""
    import pytest
    import torch

    calls = []

    def psnr(x, x_hat):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("stopped")
        return 10 * torch.log10(1 / (x - x_hat).pow(2).flatten(1).mean(1).clamp_min(1e-10))

    kw = dict(objective=psnr, m_bar=60.0, overlap_metric=False, **FAST)
    with pytest.raises(RuntimeError, match="stopped"):
        train("smoke", out=tmp_path / "run", **kw)
    calls.extend([1] * 10)  # no more stops
    run = train("smoke", out=tmp_path / "run", **kw)
    steps = [e.step for e in events(run).Scalars("loss/total")]
    assert steps == list(range(1, 7))
