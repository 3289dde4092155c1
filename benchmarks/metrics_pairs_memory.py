"""Peak memory of ``proxiqa-lab metrics --pairs`` when many rows repeat one pair.

Run from the repository root::

    python benchmarks/metrics_pairs_memory.py                # writes reports/benchmarks/metrics_pairs_memory.{json,md}
    python benchmarks/metrics_pairs_memory.py --rows 1 100

Each case writes a pairs CSV of N rows, all naming the same Kodak pair (kodim01 and its JPEG at
quality 30, 768x512), and scores it with ``--metrics psnr_avg`` (ffmpeg's psnr filter alone, the
cheapest metric) in a fresh Python process, which reports its own peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``; the ffmpeg it starts is not counted). Kodak is
read from ``$PROXIQA_LAB_DATA``, else ``../shared/data``, else ``./data``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"

#: Run in a fresh interpreter: ru_maxrss only ever grows within a process.
CHILD = """
import contextlib, io, json, resource, sys
from proxiqa_lab.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(["metrics", "--pairs", sys.argv[1], "--metrics", "psnr_avg", "--json"])
print(json.dumps({"rc": rc, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


#: The same benchmark before ``--pairs`` streamed its rows and read each file once (commit f1b9205).
BEFORE = ("Before `--pairs` streamed its rows and read each file once (commit f1b9205), it loaded every row's "
          "images and peaked at 54.9, 502.9 and 4,554.2 MiB for 1, 100 and 1,000 rows (0.25, 2.69 and 32.27 s).")


def kodak_file() -> Path:
    for root in (os.environ.get("PROXIQA_LAB_DATA"), ROOT.parent / "shared" / "data", ROOT / "data"):
        if root and (Path(root) / "kodak" / "kodim01.png").is_file():
            return Path(root) / "kodak" / "kodim01.png"
    sys.exit("no kodak/kodim01.png under $PROXIQA_LAB_DATA, ../shared/data or ./data; run `make data` first")


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.machine())


def measure(rows: int, tmp: Path) -> dict:
    """Peak RSS (MiB) and wall time of one ``metrics --pairs`` run over ``rows`` copies of the pair."""
    csv = tmp / f"pairs_{rows}.csv"
    csv.write_text("ref,dist\n" + "ref.png,dist.png\n" * rows)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(csv)], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{rows} rows: the child process failed:\n{done.stderr[-2000:]}")
    res = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rows": rows, "peak_rss_mib": round(res["peak_kib"] / 1024, 1), "seconds": round(seconds, 2)}


def write_report(res: dict, path: Path) -> None:
    lines = [
        "# `proxiqa-lab metrics --pairs`: peak memory when the rows repeat one pair",
        "",
        f"Measured {res['date']} on {res['cpu']} ({res['cores']} cores). Command: `{res['command']}`. "
        "Every row names the same Kodak pair (kodim01, 768x512, vs its JPEG at quality 30); "
        "`--metrics psnr_avg`. Each case runs in a fresh Python process; peak RSS is its `ru_maxrss` "
        "(the ffmpeg it starts is not counted).",
        "",
        "| rows | peak RSS (MiB) | wall (s) |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {c['rows']} | {c['peak_rss_mib']} | {c['seconds']} |"
              for c in res["cases"]]
    lines += ["", "One decoded Kodak image is 768 x 512 x 3 B = 1.1 MiB. " + BEFORE]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100, 1000], help="rows per case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pairs-memory-") as tmp:
        tmp = Path(tmp)
        ref = Image.open(kodak_file()).convert("RGB")
        ref.save(tmp / "ref.png")
        buf = io.BytesIO()
        ref.save(buf, "JPEG", quality=30)
        Image.open(buf).convert("RGB").save(tmp / "dist.png")
        cases = [measure(n, tmp) for n in args.rows]
    res = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "command": " ".join(["python benchmarks/metrics_pairs_memory.py", *(sys.argv[1:] if argv is None else argv)]),
        "cases": cases,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "metrics_pairs_memory.json").write_text(json.dumps(res, indent=2) + "\n")
    write_report(res, OUT / "metrics_pairs_memory.md")
    print(json.dumps(cases, indent=2))


if __name__ == "__main__":
    main()
