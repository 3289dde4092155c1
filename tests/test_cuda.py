"""The CUDA path: training, resuming and coding on a GPU, and bitstreams that cross devices.

Skipped where torch sees no CUDA device (CI runs on CPUs); run on a GPU machine with
``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from proxiqa_lab.codec import LearnedCodec
from proxiqa_lab.device import default_device
from proxiqa_lab.training import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FAST = dict(checkpoint_every=2, log_every=1, progress=False, data="samples")


def test_auto_picks_cuda():
    assert default_device("auto").type == "cuda" and default_device(None).type == "cuda"


@pytest.mark.parametrize("objective", ["mse", "proxy:vmaf"])
def test_trains_and_resumes_on_cuda(tmp_path, capfd, objective):
    run = train("smoke", out=tmp_path / "run", objective=objective, steps=4, device="auto", **FAST)
    assert run.metadata["device"].startswith("cuda")
    log = run.log
    assert len(log) == 4 and np.isfinite(log[["loss", "bpp", "mse"]].to_numpy()).all()
    if objective == "proxy:vmaf":  # the true metric is measured and the proxy regresses it
        assert ((log["metric_true"] >= 0) & (log["metric_true"] <= 100)).all()
        assert np.isfinite(log["metric_proxy"]).all()
    resumed = train("smoke", out=tmp_path / "run", objective=objective, steps=6, device="auto", **FAST)
    assert "resuming from step 4" in capfd.readouterr().err
    assert resumed.log["step"].tolist() == list(range(1, 7))
    # CUDA runs are seeded but use the fast, non-deterministic kernels: a straight run matches the
    # resumed one to float rounding, not bit for bit (the CPU's guarantee, tests/test_training.py).
    straight = train("smoke", out=tmp_path / "straight", objective=objective, steps=6, device="auto", **FAST).log
    cols = ["loss", "bpp", "mse"]
    np.testing.assert_allclose(resumed.log[cols].to_numpy(), straight[cols].to_numpy(), rtol=1e-3)


def test_bitstreams_decode_on_either_device(tmp_path, photo):
    run = train("smoke", out=tmp_path / "run", objective="mse", steps=4, device="cuda", **FAST)
    img = np.ascontiguousarray(photo[:96, :128])
    gpu, cpu = LearnedCodec([run.model_path], device="cuda"), LearnedCodec([run.model_path], device="cpu")
    point = gpu.points[0]
    from_gpu, from_cpu = gpu.encode(img, point), cpu.encode(img, point)
    assert from_gpu == from_cpu, "the same model writes the same bitstream on CUDA and on the CPU"
    decoded = {(enc, dec): codec.decode(data, point)
               for enc, data in (("gpu", from_gpu), ("cpu", from_cpu)) for dec, codec in (("gpu", gpu), ("cpu", cpu))}
    reference = decoded[("cpu", "cpu")]
    assert reference.shape == img.shape and reference.dtype == np.uint8
    for key, value in decoded.items():
        # Synthesis transforms differ in float rounding between devices: at most one grey level.
        assert np.abs(value.astype(int) - reference).max() <= 1, key
