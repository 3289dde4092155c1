"""The quality metrics the kit measures, by name (Sec. IV-A.2 of the paper).

Each :class:`MetricInfo` says what the number is, where it comes from (the ffmpeg ``psnr``
filter or a libvmaf feature/model), its upper bound ``m_bar`` (the M̄ of eq. (10)) and the
smallest image side on which the bundled ffmpeg/libvmaf computes it and the value means something
(found by trying sizes down to 1 px; ``score`` refuses smaller inputs before ffmpeg starts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: PSNR of identical planes is infinite; each plane's PSNR is capped at this value (dB).
PSNR_CAP_DB = 100.0

#: libvmaf's MS-SSIM uses 5 scales and an 11-tap window: 176 / 2**4 = 11.
MS_SSIM_MIN_SIZE = 176

#: Below 33 px a side libvmaf's VMAF is not a measurement: an undistorted Kodak crop of 17 to 32 px
#: scores anywhere in 87.7-100 (VMAF-NEG 87.7-97.6) against 97.37-97.43 from 33 px up (72 crops
#: per side length, square and 200 px long; reports/benchmarks/vmaf_min_size.md).
VMAF_MIN_SIZE = 33


@dataclass(frozen=True)
class MetricInfo:
    """What one quality metric is and how the kit computes it.

    Attributes:
        name: key used by ``score`` and in every table (``"vmaf"``).
        label: how plots and tables print it (``"VMAF"``).
        m_bar: upper bound M̄ of the metric, used by the proxy loss of eq. (9)/(10).
        source: the ffmpeg filter / libvmaf feature or model that computes it.
        min_size: smallest height and width (px) the engine accepts.
        description: one or two sentences on what the number means here.
        min_size_reason: why smaller images are refused, for the error message.
        value_range: (lowest, highest) value the engine can return; anything else is not a score.
    """

    name: str
    label: str
    m_bar: float
    source: str
    min_size: int
    description: str
    higher_is_better: bool = True
    min_size_reason: str = ""
    value_range: tuple[float, float] = (-math.inf, math.inf)


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            name="psnr_avg",
            label="PSNR",
            m_bar=PSNR_CAP_DB,
            source="ffmpeg psnr filter (per-plane psnr_y/u/v on yuv444p)",
            min_size=1,
            value_range=(0.0, PSNR_CAP_DB),
            description=(
                "PSNR_avg = (4 PSNR_Y + PSNR_U + PSNR_V) / 6 (eq. 12) in dB on the yuv444p planes. "
                f"Each plane's PSNR is capped at {PSNR_CAP_DB:g} dB, so identical images score "
                f"exactly {PSNR_CAP_DB:g} (ffmpeg itself prints 'inf')."
            ),
        ),
        MetricInfo(
            name="ssim",
            label="SSIM",
            m_bar=1.0,
            source="libvmaf feature float_ssim (luma)",
            min_size=11,
            min_size_reason="its window is 11x11 px; below it libvmaf returns 0 or nothing",
            value_range=(-1.0, 1.0),
            description=(
                "SSIM [Wang et al. 2004] of the Y plane, libvmaf's float_ssim with its default "
                "automatic down-scaling by max(1, round(min(H, W) / 256)) first (Wang's "
                "recommendation: 1 for 128 px patches, 2 for Kodak's 768x512)."
            ),
        ),
        MetricInfo(
            name="ms_ssim",
            label="MS-SSIM",
            m_bar=1.0,
            source="libvmaf feature float_ms_ssim (luma, 5 scales)",
            min_size=MS_SSIM_MIN_SIZE,
            min_size_reason="5 scales of an 11 px window; libvmaf scores no smaller frame",
            value_range=(-1.0, 1.0),
            description=(
                "MS-SSIM [Wang et al. 2003] of the Y plane, libvmaf's float_ms_ssim. It needs at "
                f"least {MS_SSIM_MIN_SIZE} px a side; smaller images raise MetricError unless "
                "score(..., ms_ssim_pad=True) is asked for, which scores the images reflect-padded "
                f"to {MS_SSIM_MIN_SIZE} px (a different quantity; see proxiqa_lab.metrics)."
            ),
        ),
        MetricInfo(
            name="vif",
            label="VIF",
            m_bar=1.0,
            source="libvmaf feature float_vif (debug=true: 'vif')",
            min_size=16,
            min_size_reason="below it libvmaf's float_vif crashes or gives values that change from run to run",
            value_range=(0.0, math.inf),  # above 1 for contrast enhancement
            description=(
                "Full VIF [Sheikh & Bovik 2006] of the Y plane: the sum over the 4 scales of the "
                "information numerators over the sum of the denominators (libvmaf float_vif's "
                "'vif' output), not one scale's ratio nor the VMAF model's per-scale features."
            ),
        ),
        MetricInfo(
            name="vmaf",
            label="VMAF",
            m_bar=100.0,
            source="libvmaf model version=vmaf_v0.6.1 (built in), motion forced to 0",
            min_size=VMAF_MIN_SIZE,
            value_range=(0.0, 100.0),  # clipped by the model
            min_size_reason=(
                "below it libvmaf's VMAF is not meaningful: an undistorted image scores anywhere in "
                "88-100 instead of 97.4"
            ),
            description=(
                "VMAF v0.6.1 of a still picture: a one-frame video, so the motion feature is 0 "
                "(the paper, Sec. II). Values are clipped to [0, 100] by the model. Images need "
                f"{VMAF_MIN_SIZE} px a side."
            ),
        ),
        MetricInfo(
            name="vmaf_neg",
            label="VMAF-NEG",
            m_bar=100.0,
            source="libvmaf model version=vmaf_v0.6.1neg (built in), motion forced to 0",
            min_size=VMAF_MIN_SIZE,
            value_range=(0.0, 100.0),  # clipped by the model
            min_size_reason=(
                "below it libvmaf's VMAF-NEG is not meaningful: an undistorted image scores anywhere "
                "in 88-98 instead of 97.4"
            ),
            description=(
                "VMAF v0.6.1 'no enhancement gain' variant, still picture (motion 0). Images need "
                f"{VMAF_MIN_SIZE} px a side."
            ),
        ),
    )
}


def check_metric_names(metrics) -> tuple[str, ...]:
    """Return ``metrics`` as a tuple of known names, or raise MetricError listing the allowed ones."""
    from proxiqa_lab.errors import MetricError

    if isinstance(metrics, str):
        metrics = (metrics,)
    names = tuple(dict.fromkeys(metrics))
    if not names:
        raise MetricError(f"no metric asked for; choose from {', '.join(METRICS)}")
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(METRICS)}")
    return names
