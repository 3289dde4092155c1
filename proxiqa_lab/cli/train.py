"""``proxiqa-lab train``: train a codec with one objective into a run folder (resumable).

A full disk stops training with one line that says where rerunning resumes (checkpoints are
written whole, so the last one is intact); a TensorBoard writer that fails only stops the
TensorBoard events, with a warning (see :mod:`proxiqa_lab.training.tensorboard`).
"""

from __future__ import annotations

import argparse
import os
import sys

#: Options with their own flag; every other TrainConfig field goes through ``--set key=value``.
FLAGS = ("objective", "lmbda", "alpha", "steps", "init_checkpoint", "architecture", "N", "lr", "batch_size",
         "patch_size", "seed", "device", "data", "data_root", "m_bar", "proxy_init")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a learned codec (mse, ssim, ssim+ld, ms-ssim, proxy:<metric>, pretrained-proxy:<metric>, direct:vmaf)",
        description=(
            "Train a learned codec into --out. Rerunning the same command resumes from the last checkpoint. "
            "Under `torchrun --nproc_per_node N -m proxiqa_lab train ...` it trains with DistributedDataParallel."
        ),
    )
    p.add_argument("--profile", default="lab", help="smoke, lab or paper (default: lab)")
    p.add_argument("--out", help="run folder (default: runs/<profile>-<arch><N>-<objective>-lmbda<λ>)")
    p.add_argument("--objective", help="mse, ssim, ssim+ld, ms-ssim, proxy:<metric>, pretrained-proxy:<metric>, "
                                        "direct:vmaf or direct:vmaf_neg (the exact gradient, no proxy)")
    p.add_argument("--lmbda", type=float, help="λ on CompressAI's scale (λ·255²·MSE + bpp)")
    p.add_argument("--alpha", type=float, help="α of eq. (10)/(13), in [0, 1] (default 0.5)")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--init-checkpoint", dest="init_checkpoint",
                   help="start the codec from this model.pt or run folder (fine-tune, e.g. from MSE)")
    p.add_argument("--architecture", help="bls or bmshj")
    p.add_argument("--N", type=int, help="channels of every layer")
    p.add_argument("--lr", type=float, help="codec learning rate")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--patch-size", dest="patch_size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu or cuda[:N]")
    p.add_argument("--data", help="auto, training, samples, or dataset names (bsds500:train,unsplash_x4)")
    p.add_argument("--data-root", dest="data_root")
    p.add_argument("--m-bar", dest="m_bar", type=float, help="M̄ of eq. (9) (default: the metric's bound)")
    p.add_argument("--proxy-init", dest="proxy_init",
                   help="proxy to start from: the frozen one of pretrained-proxy:<metric>, or the first weights of proxy:<metric>")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any other option, e.g. --set checkpoint_every=100 --set keep_checkpoints_at=[500,1000]")
    p.add_argument("--new", action="store_true",
                   help="start a new run; --out must then be new or empty (nothing is ever deleted)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=handler)


def resume_point(out) -> str:
    """Where rerunning the same command continues, from the run folder's last checkpoint."""
    from pathlib import Path

    from proxiqa_lab.errors import CheckpointError
    from proxiqa_lab.training.checkpointing import load_state

    last = Path(out) / "checkpoints" / "last.pt"
    try:
        step = int(load_state(last)["step"]) if last.is_file() else 0
    except CheckpointError:
        step = 0
    if step:
        return f"rerun the same command to resume {out} from step {step} (checkpoints/last.pt)"
    return f"no checkpoint was written yet; rerunning the same command starts {out} from step 0"


def handler(args: argparse.Namespace) -> int:
    from proxiqa_lab.cli import check_folder
    from proxiqa_lab.errors import disk_full
    from proxiqa_lab.training import make_config, train
    from proxiqa_lab.training.config import parse_set
    from proxiqa_lab.training.trainer import default_out

    overrides = parse_set(args.sets)
    overrides.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
    if not args.progress:
        overrides["progress"] = False
    config = make_config(args.profile, **overrides)  # every value is checked before any work
    check_folder(args.out or default_out(config))
    try:
        run = train(config, out=args.out, resume=not args.new)
    except KeyboardInterrupt:
        print(f"proxiqa-lab train: interrupted; {resume_point(args.out or default_out(config))}", file=sys.stderr)
        return 130
    except (OSError, RuntimeError) as err:
        full = disk_full(err)
        if full is None:
            raise
        print(f"proxiqa-lab train: error: disk full ({full.strerror}) while writing {full.filename or 'the run'}: "
              f"training stopped. Free space; {resume_point(args.out or default_out(config))}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return 0
    if run.model_path is not None:
        print(f"model: {run.model_path}")
    if run.proxy_path is not None:
        print(f"proxy: {run.proxy_path}")
    return 0
