"""How far the differentiable VMAF (``metrics.differentiable.vmaf``) is from libvmaf on codec outputs.

    python benchmarks/differentiable_vmaf.py [--images 24] [--out reports/lab_science]

Kodak images decoded by JPEG and JPEG 2000 (at 0.25, 0.5 and 1 bpp) and by the lab MSE models
(real bitstreams, runs/lab/), scored by libvmaf (the kit's ``metrics.score``) and by vmaf-torch on
the same luma, both VMAF and VMAF-NEG, on the full images and on 128² crops (the training patch
size). Reports the mean and largest absolute difference, with the rounding to 8-bit luma that
libvmaf sees (the default) and without it. Writes ``differentiable_vmaf.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from proxiqa_lab.data import dataset_files, load_image, to_tensor
from proxiqa_lab.metrics import differentiable as D
from proxiqa_lab.metrics import score
from proxiqa_lab.paths import runs_root
from proxiqa_lab.studies.rd import classical_codecs

POINTS = (0.25, 0.5, 1.0)


def decodes(images: dict, lab_models: list[Path]) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(codec, image, source, decoded) for every codec and image."""
    from proxiqa_lab.codec import LearnedCodec

    out = []
    for codec in classical_codecs(["jpeg", "jpeg2000"], POINTS):
        for name, img in images.items():
            codec.prepare(img, POINTS)
            out += [(f"{codec.name}@{p}", name, img, codec.decode(codec.encode(img, p), p)) for p in POINTS]
    if lab_models:
        learned = LearnedCodec(lab_models, name="lab MSE", device="cpu")
        for name, img in images.items():
            out += [(f"lab MSE {Path(p).parent.name}", name, img, learned.decode(learned.encode(img, p), p))
                    for p in learned.points]
    return out


def compare(pairs, crop: int | None) -> dict:
    refs, dists = [], []
    for _, _, ref, dist in pairs:
        if crop:
            h, w = ref.shape[:2]
            y, x = (h - crop) // 2, (w - crop) // 2
            ref, dist = ref[y : y + crop, x : x + crop], dist[y : y + crop, x : x + crop]
        refs.append(ref)
        dists.append(dist)
    result = {"pairs": len(refs)}
    by_shape: dict[tuple, list[int]] = {}
    for i, r in enumerate(refs):
        by_shape.setdefault(r.shape, []).append(i)
    for neg, key in ((False, "vmaf"), (True, "vmaf_neg")):
        lib = np.zeros(len(refs))
        ours = {True: np.zeros(len(refs)), False: np.zeros(len(refs))}
        seconds = 0.0
        for idx in by_shape.values():
            r, d = np.stack([refs[i] for i in idx]), np.stack([dists[i] for i in idx])
            lib[idx] = score(r, d, metrics=(key,))[key]
            for quantize in (True, False):
                with torch.no_grad():
                    t0 = time.perf_counter()
                    values = torch.cat([D.vmaf(to_tensor(r[j : j + 8]), to_tensor(d[j : j + 8]), neg=neg,
                                               quantize=quantize) for j in range(0, len(idx), 8)])
                    seconds += time.perf_counter() - t0
                ours[quantize][idx] = np.clip(values.numpy(), 0, 100)  # libvmaf clips; compare like with like
        for quantize, name in ((True, "8-bit luma"), (False, "float luma")):
            diff = np.abs(ours[quantize] - lib)
            result[f"{key}, {name}"] = {"mean_abs": float(diff.mean()), "max_abs": float(diff.max()),
                                        "median_abs": float(np.median(diff))}
        result[f"{key} seconds (both lumas)"] = round(seconds, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--out", default="reports/lab_science")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = {p.stem: load_image(p) for p in dataset_files("kodak")[: args.images]}
    lab = sorted((runs_root() / "lab").glob("bls64-mse-lmbda*/model.pt"))
    lab = [p for p in lab if "-ft" not in p.parent.name]
    pairs = decodes(images, lab)
    result = {"command": "python " + shlex.join(sys.argv), "images": len(images), "codecs": sorted({p[0] for p in pairs}),
              "full_images": compare(pairs, None), "crops_128": compare(pairs, 128)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "differentiable_vmaf.json").write_text(json.dumps(result, indent=2))
    lines = ["# Differentiable VMAF (vmaf-torch on libvmaf's luma) against libvmaf", "",
             f"Kodak, {len(images)} images, decoded by {', '.join(result['codecs'])}; scores clipped to [0, 100] "
             f"as libvmaf's are. Command: `{result['command']}`.", "",
             "| inputs | pairs | score | luma | mean abs diff | median | max abs diff |", "|---|---:|---|---|---:|---:|---:|"]
    for where in ("full_images", "crops_128"):
        r = result[where]
        for key in ("vmaf", "vmaf_neg"):
            for luma in ("8-bit luma", "float luma"):
                v = r[f"{key}, {luma}"]
                lines.append(f"| {where.replace('_', ' ')} | {r['pairs']} | {key} | {luma} | {v['mean_abs']:.3f} | "
                             f"{v['median_abs']:.3f} | {v['max_abs']:.3f} |")
    (out / "differentiable_vmaf.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
