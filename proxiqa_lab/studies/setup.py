"""What a notebook checks and sets first: the machine, the tools, the data, threads and seeds."""

from __future__ import annotations

import platform
import random
import re
import subprocess

import numpy as np
import pandas as pd
import torch

from proxiqa_lab.studies.settings import StudySettings


def start_session(settings: StudySettings, seed: int = 0, device: str = "auto") -> dict:
    """Seed torch/numpy/random, set torch's CPU threads from ``settings.torch_threads``, resolve the device.

    Tiny smoke-profile models run faster on one thread than on two when the cores are busy,
    so the smoke settings pin one thread; the other profiles keep torch's default.

    Returns:
        ``{"profile", "device", "torch_threads", "seed"}``.
    """
    from proxiqa_lab.device import default_device

    resolved = default_device(device)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return {"profile": settings.profile, "device": str(resolved), "torch_threads": torch.get_num_threads(),
            "seed": seed}


def ffmpeg_info() -> dict:
    """The reference ffmpeg: path, version, whether it has libvmaf, and the libvmaf version."""
    from proxiqa_lab.metrics.engine import ffmpeg_exe

    exe = ffmpeg_exe()
    text = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, check=False).stdout
    version = re.search(r"ffmpeg version (\S+)", text)
    libvmaf = "--enable-libvmaf" in text
    vmaf_version = _libvmaf_version(exe) if libvmaf else None
    return {"ffmpeg": exe, "ffmpeg_version": version.group(1) if version else "unknown",
            "libvmaf": libvmaf, "libvmaf_version": vmaf_version}


def _libvmaf_version(exe: str) -> str:
    """libvmaf's version as it writes it into its JSON log (a release or a git hash)."""
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "vmaf.json"
        src = "testsrc=size=64x64:rate=1:duration=1"
        subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", src, "-f", "lavfi", "-i", src,
                        "-lavfi", f"libvmaf=log_path={log}:log_fmt=json", "-f", "null", "-"],
                       capture_output=True, check=False)
        try:
            return str(json.loads(log.read_text())["version"])
        except (OSError, ValueError, KeyError):
            return "unknown"


def environment() -> pd.DataFrame:
    """One table of what the kit runs on: Python, torch, CompressAI, device, ffmpeg and libvmaf."""
    import compressai

    from proxiqa_lab.device import default_device

    info = {"python": platform.python_version(), "torch": torch.__version__, "compressai": compressai.__version__,
            "device (auto)": str(default_device("auto")), "cuda available": torch.cuda.is_available(),
            "cpu threads": torch.get_num_threads(), **ffmpeg_info()}
    return pd.DataFrame({"value": [str(v) for v in info.values()]}, index=list(info))


def data_status(names=("kodak", "wikipedia24", "bsds500", "unsplash_x4"), root: str | None = None) -> pd.DataFrame:
    """Files present and verified per dataset, and the command that fetches a missing one."""
    from proxiqa_lab.data import data_root, fetch_command, status

    rows = []
    for name in names:
        s = status(name, root)
        rows.append({"dataset": name, "files": s.total, "present": s.present, "verified": s.verified,
                     "fetch": "" if s.complete else fetch_command(name, root)})
    table = pd.DataFrame(rows).set_index("dataset")
    table.attrs["root"] = str(data_root(root))
    return table
