"""``proxiqa-lab encode`` / ``proxiqa-lab decode``: real bitstream files from a trained learned codec."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "encode",
        help="compress an image into a bitstream with a trained learned codec",
        description="Compress IMAGE with the model in CKPT (a BLS or BMSHJ checkpoint) and write the "
        "entropy-coded bitstream to OUT. Prints the stream size and its rate in bits per pixel.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint of a trained BLS or BMSHJ model")
    p.add_argument("image", metavar="IMAGE", help="image file (PNG, JPEG, ...; gray/RGBA/16-bit are converted)")
    p.add_argument("out", metavar="OUT", help="bitstream file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=encode_handler)

    p = subparsers.add_parser(
        "decode",
        help="decompress a bitstream into a PNG with the learned codec that wrote it",
        description="Decompress the bitstream IN with the model in CKPT (the one that encoded it) and write OUT.png.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint of the model that encoded IN")
    p.add_argument("inp", metavar="IN", help="bitstream file written by 'proxiqa-lab encode'")
    p.add_argument("out", metavar="OUT.png", help="PNG file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUT.png if it exists")
    p.set_defaults(func=decode_handler)


def encode_handler(args: argparse.Namespace) -> int:
    from proxiqa_lab.codec import encode_file

    bpp = _run(args, encode_file)
    if bpp is None:
        return 1
    print(f"{args.out}: {Path(args.out).stat().st_size} bytes, {bpp:.4f} bpp")
    return 0


def decode_handler(args: argparse.Namespace) -> int:
    from proxiqa_lab.codec import decode_file

    bpp = _run(args, decode_file)
    if bpp is None:
        return 1
    print(f"{args.out}: decoded from {Path(args.inp).stat().st_size} bytes ({bpp:.4f} bpp)")
    return 0


def _run(args: argparse.Namespace, func) -> float | None:
    """Call ``func``, printing image-conversion notices plainly; None when the output exists."""
    from proxiqa_lab.cli import check_file, check_output
    from proxiqa_lab.data import ImageConversionWarning

    source = args.image if args.command == "encode" else args.inp
    check_file(args.checkpoint)
    check_file(source)
    check_output(args.out)
    bpp, caught = None, []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ImageConversionWarning)
            bpp = func(args.checkpoint, source, args.out, force=args.force)
    except FileExistsError as err:
        print(f"proxiqa-lab {args.command}: error: {err}", file=sys.stderr)
    finally:
        for w in caught:
            if issubclass(w.category, ImageConversionWarning):
                print(f"proxiqa-lab {args.command}: notice: {w.message}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return bpp
