"""True image-quality metrics, computed as in the paper (Sec. IV-A.2), and differentiable SSIM.

``score(refs, dists, metrics)`` runs the ffmpeg shipped by imageio-ffmpeg: PSNR_avg (eq. 12)
from the ``psnr`` filter; SSIM, MS-SSIM, VIF, VMAF and VMAF-NEG from libvmaf. RGB is turned
into YUV 4:4:4 by ``format=yuv444p`` inside the filter graph (ffmpeg's default conversion),
and all same-size pairs go through one ffmpeg process as the frames of a raw video.

Choices, each tested in ``tests/test_metrics.py``:

* **Still pictures.** VMAF's motion feature is forced to 0 (libvmaf's ``motion_force_zero``),
  so a pair scored inside a batch gets exactly the value it gets alone as a one-frame video.
* **PSNR of identical images.** ffmpeg prints ``inf``; each plane's PSNR is capped at
  ``PSNR_CAP_DB`` = 100 dB before eq. (12), so identical images score 100 dB.
* **SSIM** is libvmaf's float_ssim with its default automatic down-scaling by
  max(1, round(min(H, W) / 256)) (Wang et al.'s recommendation; 1 for 128 px, 2 for Kodak).
* **VIF** is the full, 4-scale VIF of Sheikh & Bovik (sum of numerators over sum of
  denominators; libvmaf ``float_vif`` with ``debug=true``, output ``vif``), on luma.
* **Undistorted images** score PSNR 100, SSIM and MS-SSIM 1, VIF 1 to within 1e-6 (float
  sums), and VMAF / VMAF-NEG about 97.43: the v0.6.1 models' value for a perfect still
  picture (motion 0), not 100; ``m_bar`` stays 100, the paper's M̄.
* **Tensors** are rounded to uint8 first (``proxiqa_lab.data.to_uint8``), as saving the
  reconstruction to PNG would; metrics are always of 8-bit images.
* **Size limits** (found by trying every size with this build; ``METRICS[m].min_size``):
  VMAF/VMAF-NEG need 33 px a side (16 px makes ffmpeg segfault, and from 17 to 32 px an
  undistorted image scores anywhere in 88-100 instead of 97.4: ``benchmarks/vmaf_min_size.py``),
  VIF 16 px (smaller sizes crash or give values that change from run to run), SSIM 11 px,
  MS-SSIM 176 px (5 scales of an 11-tap window: libvmaf scores no frame below). ``score``
  raises MetricError before ffmpeg starts.
* **MS-SSIM of 128x128 training patches.** There is no libvmaf MS-SSIM of a 128 px image, so
  ``score(..., metrics=("ms_ssim",))`` raises for it. ``score(..., ms_ssim_pad=True)`` is the
  explicit stand-in for proxy training: each image is reflect-padded (centred) to 176 px and
  libvmaf's MS-SSIM of the padded image is returned. The padding repeats content near the
  borders, which moves the value. ``benchmarks/metrics_speed.py`` measures by how much, padding
  Kodak crops of 176, 224 and 256 px (where the true value exists) by the same factor 176/128:
  over 48 pairs per size, mean absolute change 0.0009-0.0014, at most 0.014, Spearman
  rank correlation with the true values 0.994-0.998 (reports/benchmarks/metrics_speed.md).
  Other metrics always see the unpadded images.
"""

from proxiqa_lab.metrics.registry import METRICS, MS_SSIM_MIN_SIZE, PSNR_CAP_DB, MetricInfo
from proxiqa_lab.metrics.scoring import reflect_pad, score

__all__ = ["METRICS", "MS_SSIM_MIN_SIZE", "PSNR_CAP_DB", "MetricInfo", "reflect_pad", "score"]
