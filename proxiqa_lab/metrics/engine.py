"""The reference engine: one ffmpeg process scores a batch of same-size pairs.

The paper computed PSNR with ffmpeg's ``psnr`` filter and SSIM, MS-SSIM, VIF and VMAF with
libvmaf (Sec. IV-A.2). This module does the same with the ffmpeg that ``imageio-ffmpeg``
ships (libvmaf built in):

* the N pairs of a batch are the N frames of two raw ``rgb24`` videos, the distorted one on
  ffmpeg's stdin and the reference one on a second pipe (``pipe:FD``) fed by a thread; no
  image touches the disk (benchmarks/metrics_speed.py compares this with a temporary raw file);
* each video goes through ``format=yuv444p`` inside the filter graph, i.e. exactly ffmpeg's
  default RGB -> YUV 4:4:4 conversion (swscale: BT.601, limited range; white -> Y 235);
* libvmaf writes per-frame values to a JSON log and ``psnr`` per-frame plane PSNRs as frame
  metadata (6 decimals), both read back here.

Every image is a still picture, so its score must not depend on its neighbours in the batch.
Only VMAF's motion feature looks at the previous frame; the models are loaded with libvmaf's
``motion.motion_force_zero=true`` option, which makes motion 0 for every frame, i.e. what a
one-frame video gives. All other features are computed frame by frame, so a pair scored in a
batch gets the very same printed values as the pair scored alone (tested).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from proxiqa_lab.errors import MetricError
from proxiqa_lab.metrics.registry import PSNR_CAP_DB

#: libvmaf feature options for the metrics that are plain features.
LIBVMAF_FEATURES = {
    "ssim": ("name=float_ssim", "float_ssim"),
    "ms_ssim": ("name=float_ms_ssim", "float_ms_ssim"),
    "vif": (r"name=float_vif\:debug=true", "vif"),
}

#: libvmaf model options for the VMAF models (built-in versions, motion forced to 0).
LIBVMAF_MODELS = {
    "vmaf": r"version=vmaf_v0.6.1\:name=vmaf\:motion.motion_force_zero=true",
    "vmaf_neg": r"version=vmaf_v0.6.1neg\:name=vmaf_neg\:motion.motion_force_zero=true",
}

_VMAF_LOG = "vmaf.json"
_PSNR_LOG = "psnr.txt"


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (built with libvmaf)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _temp_root() -> str | None:
    """A RAM-backed folder for the per-call logs where there is one."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def filter_graph(metrics: tuple[str, ...], n_threads: int) -> str:
    """The ``-filter_complex`` graph scoring input 0 (distorted) against input 1 (reference)."""
    vmaf_metrics = [m for m in metrics if m in LIBVMAF_FEATURES or m in LIBVMAF_MODELS]
    want_psnr = "psnr_avg" in metrics
    chains = ["[0:v]format=yuv444p[dist]"]
    if vmaf_metrics and want_psnr:
        chains.append("[1:v]format=yuv444p,split=2[ref0][ref1]")
    else:
        chains.append("[1:v]format=yuv444p[ref0]")
    main = "[dist]"
    if vmaf_metrics:
        models = "|".join(LIBVMAF_MODELS[m] for m in vmaf_metrics if m in LIBVMAF_MODELS)
        features = "|".join(LIBVMAF_FEATURES[m][0] for m in vmaf_metrics if m in LIBVMAF_FEATURES)
        options = [f"log_fmt=json:log_path={_VMAF_LOG}:n_threads={n_threads}", f"model='{models}'"]
        if features:
            options.append(f"feature='{features}'")
        chains.append(f"{main}[ref0]libvmaf={':'.join(options)}" + ("[scored]" if want_psnr else ""))
        main, ref = "[scored]", "[ref1]"
    else:
        ref = "[ref0]"
    if want_psnr:
        chains.append(f"{main}{ref}psnr,metadata=mode=print:file={_PSNR_LOG}")
    return ";".join(chains)


def _parse_vmaf_log(path: Path, metrics: tuple[str, ...], n: int) -> dict[str, np.ndarray]:
    frames = sorted(json.loads(path.read_text())["frames"], key=lambda f: f["frameNum"])
    if len(frames) != n:
        raise MetricError(f"libvmaf scored {len(frames)} frames, expected {n}")
    out = {}
    for m in metrics:
        key = m if m in LIBVMAF_MODELS else LIBVMAF_FEATURES[m][1] if m in LIBVMAF_FEATURES else None
        if key is not None:
            out[m] = np.array([float(f["metrics"][key]) for f in frames], dtype=np.float64)
    return out


def parse_psnr_metadata(text: str) -> np.ndarray:
    """Per-frame (psnr_y, psnr_u, psnr_v) from ``psnr,metadata=mode=print`` output, shape (N, 3)."""
    rows: list[dict[str, float]] = []
    for line in text.splitlines():
        if line.startswith("frame:"):
            rows.append({})
        elif line.startswith("lavfi.psnr.psnr.") and rows:
            key, value = line[len("lavfi.psnr.psnr.") :].split("=", 1)
            rows[-1][key] = float(value)  # float("inf") for identical planes
    return np.array([[r["y"], r["u"], r["v"]] for r in rows], dtype=np.float64).reshape(-1, 3)


def psnr_avg(plane_psnr: np.ndarray) -> np.ndarray:
    """Eq. (12): (4 PSNR_Y + PSNR_U + PSNR_V) / 6, each plane capped at ``PSNR_CAP_DB``."""
    capped = np.minimum(plane_psnr, PSNR_CAP_DB)
    return (4 * capped[:, 0] + capped[:, 1] + capped[:, 2]) / 6


def _feed(fd: int, frames: np.ndarray) -> None:
    """Write raw frames to a pipe ffmpeg reads (run in a thread: ffmpeg reads both inputs in turn)."""
    try:
        with open(fd, "wb", closefd=True) as pipe:
            pipe.write(frames.data)
    except BrokenPipeError:  # ffmpeg stopped early; its exit status tells why
        pass


def run_batch(
    refs: np.ndarray, dists: np.ndarray, metrics: tuple[str, ...], n_threads: int | None = None
) -> dict[str, np.ndarray]:
    """Score N same-size pairs in one ffmpeg call.

    Args:
        refs: uint8 array (N, H, W, 3), RGB, C-contiguous.
        dists: uint8 array of the same shape.
        metrics: names from ``METRICS`` (already validated).
        n_threads: libvmaf threads; default: all CPU cores.

    Returns:
        ``{metric: float64 array (N,)}``.
    """
    n, h, w, _ = refs.shape
    n_threads = n_threads or os.cpu_count() or 1
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", "25"]
    with tempfile.TemporaryDirectory(prefix="proxiqa-metrics-", dir=_temp_root()) as tmp:
        tmp = Path(tmp)
        ref_read, ref_write = os.pipe()
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error",
            "-filter_threads", "1", "-filter_complex_threads", "1",  # libvmaf has its own threads
            *raw, "-i", "pipe:0", *raw, "-i", f"pipe:{ref_read}",
            "-filter_complex", filter_graph(metrics, n_threads), "-f", "null", "-",
        ]  # fmt: skip
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                cwd=tmp, pass_fds=(ref_read,),
            )  # fmt: skip
        except OSError:
            os.close(ref_write)
            raise
        finally:
            os.close(ref_read)
        feeder = threading.Thread(target=_feed, args=(ref_write, np.ascontiguousarray(refs)), daemon=True)
        feeder.start()
        _, stderr = proc.communicate(np.ascontiguousarray(dists).data)
        feeder.join()
        if proc.returncode != 0:
            msg = stderr.decode(errors="replace").strip()[-2000:]
            raise MetricError(f"ffmpeg failed (exit {proc.returncode}) scoring {n} pairs of {w}x{h}: {msg}")
        out = {}
        if any(m in LIBVMAF_FEATURES or m in LIBVMAF_MODELS for m in metrics):
            out.update(_parse_vmaf_log(tmp / _VMAF_LOG, metrics, n))
        if "psnr_avg" in metrics:
            planes = parse_psnr_metadata((tmp / _PSNR_LOG).read_text())
            if len(planes) != n:
                raise MetricError(f"ffmpeg psnr scored {len(planes)} frames, expected {n}")
            out["psnr_avg"] = psnr_avg(planes)
    return {m: out[m] for m in metrics}
