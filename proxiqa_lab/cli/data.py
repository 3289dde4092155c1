"""``proxiqa-lab data``: list and fetch the registered datasets.

    proxiqa-lab data list [--root DIR] [--verify]
    proxiqa-lab data fetch NAME [NAME ...] [--mirror DIR] [--root DIR]
    proxiqa-lab data fetch all --mirror ../shared/data
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="list and fetch datasets (Kodak, BSDS500, ...)",
        description="List the registered datasets and fetch them into the data root "
        "(--root, else $PROXIQA_LAB_DATA, else ./data), verified against sha256.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    listing = actions.add_parser("list", help="show each dataset, its file count and whether it is verified")
    listing.add_argument("--root", metavar="DIR", help="data root (default: $PROXIQA_LAB_DATA or ./data)")
    listing.add_argument("--verify", action="store_true",
                         help="hash every file again (default: trust files whose size and mtime match the last "
                              "verification, which misses bytes edited in place with the mtime restored)")
    listing.set_defaults(func=_list)

    fetch = actions.add_parser(
        "fetch",
        help="copy from a mirror or download datasets, verifying sha256",
        description="Fetch datasets into the data root. Files already present are hashed again and kept "
        "when they match their sha256; missing, partial or corrupt ones are fetched again.",
    )
    fetch.add_argument("names", nargs="+", metavar="NAME", help="dataset names, or 'all'")
    fetch.add_argument(
        "--mirror",
        metavar="DIR",
        help="folder (or URL) holding one sub-folder per dataset to copy from "
        "(default: $PROXIQA_LAB_MIRROR; none: download from the public URLs)",
    )
    fetch.add_argument("--root", metavar="DIR", help="data root (default: $PROXIQA_LAB_DATA or ./data)")
    fetch.set_defaults(func=_fetch)


def _list(args: argparse.Namespace) -> int:
    from proxiqa_lab.cli import check_folder
    from proxiqa_lab.data import DATASETS, data_root, status

    root = data_root(args.root)
    check_folder(root)
    print(f"data root: {root.resolve()}")
    print(f"{'dataset':<12} {'files':>5} {'MB':>7}  {'status':<24} source")
    for name, ds in DATASETS.items():
        st = status(name, root, rehash=args.verify)
        if st.complete:
            state = "verified"
        elif st.present == 0:
            state = "missing"
        else:
            state = f"{st.verified}/{st.total} verified"
        source = "public URLs" if ds.downloadable else "mirror only"
        print(f"{name:<12} {st.total:>5} {ds.num_bytes / 1e6:>7.1f}  {state:<24} {source}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from proxiqa_lab.cli import check_folder
    from proxiqa_lab.data import DATASETS, data_root, fetch

    check_folder(data_root(args.root))
    names = list(DATASETS) if "all" in args.names else list(dict.fromkeys(args.names))
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(
            f"unknown dataset(s) {', '.join(unknown)}; registered: {', '.join(DATASETS)} (or 'all')"
        )
    for name in names:
        fetch(name, root=args.root, mirror=args.mirror, log=print)
    return 0
