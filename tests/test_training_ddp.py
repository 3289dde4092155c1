"""DistributedDataParallel training with two gloo processes on the CPU (torchrun)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import torch

from proxiqa_lab.training.checkpointing import load_state


def test_torchrun_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "proxiqa_lab", "train", "--profile", "smoke", "--objective", "proxy:vmaf", "--steps", "4",
           "--data", "samples", "--device", "cpu", "--set", "checkpoint_every=2", "--no-progress", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    log = pd.read_csv(out / "log.csv")
    assert log["step"].tolist() == [1, 2, 3, 4]  # one log, written by rank 0 only
    assert list(out.glob("log*.csv")) == [out / "log.csv"]
    state = load_state(out / "checkpoints" / "last.pt")
    ranks = state["ranks"]
    assert len(ranks) == 2
    assert ranks[0]["codec_sha256"] == ranks[1]["codec_sha256"]  # identical weights on both ranks
    assert ranks[0]["loader"]["seed"] != ranks[1]["loader"]["seed"]  # each rank draws its own patches
    assert not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
    assert (out / "model.pt").is_file() and (out / "proxy.pt").is_file()
    assert (out / "run.json").read_text().count('"world_size": 2') == 1
