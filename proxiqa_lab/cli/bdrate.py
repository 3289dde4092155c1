"""``proxiqa-lab bdrate BASE.json TEST.json --metric vmaf``: BD-rate between two CompressAI RD files."""

from __future__ import annotations

import argparse
import json
import math


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bdrate",
        help="BD-rate and BD-metric of one RD curve against another (CompressAI JSON files)",
        description="Bjøntegaard delta rate (percent, negative = fewer bits) and delta metric of TEST "
        'against BASE. Both files use CompressAI\'s schema {"name", "results": {"bpp": [...], '
        '"<metric>": [...]}}, as written by "proxiqa-lab evaluate".',
    )
    p.add_argument("base", help="anchor RD file (JSON)")
    p.add_argument("test", help="test RD file (JSON)")
    p.add_argument("--metric", default="vmaf", help="quality key in results (default: vmaf)")
    p.add_argument("--method", default="pchip", choices=("cubic", "pchip", "akima"),  # bdrate.DEFAULT_METHOD
                   help="curve fit: pchip (JVET CTC, default), cubic (VCEG-M33, the paper's) or akima")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from proxiqa_lab.evaluation import bd_metric, bd_rate, load_rd

    docs = [load_rd(args.base), load_rd(args.test)]
    for path, doc in zip((args.base, args.test), docs):
        present = [k for k in doc["results"] if k != "bpp" and not k.endswith("_time")]
        if args.metric not in present:
            raise ValueError(f"metric {args.metric!r} is not in {path}; it has: {', '.join(present) or 'none'}")
        for key in ("bpp", args.metric):
            bad = [i for i, v in enumerate(doc["results"][key]) if not math.isfinite(v)]
            if bad:
                raise ValueError(f"{path}: results[{key!r}] holds NaN or Infinity at point(s) "
                                 f"{', '.join(map(str, bad))}; BD needs finite values: drop or measure those again")
    (base, test) = (d["results"] for d in docs)
    result = {
        "bd_rate": bd_rate(base["bpp"], base[args.metric], test["bpp"], test[args.metric], args.method),
        "bd_metric": bd_metric(base["bpp"], base[args.metric], test["bpp"], test[args.metric], args.method),
        "metric": args.metric,
        "method": args.method,
        "base": docs[0]["name"],
        "test": docs[1]["name"],
    }
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}))
    else:
        rate = "n/a" if math.isnan(result["bd_rate"]) else f"{result['bd_rate']:+.2f}%"
        delta = "n/a" if math.isnan(result["bd_metric"]) else f"{result['bd_metric']:+.4f}"
        print(f"{result['test']} vs {result['base']} ({args.metric}, {args.method}): "
              f"BD-rate {rate}  BD-{args.metric} {delta}")
    return 0
