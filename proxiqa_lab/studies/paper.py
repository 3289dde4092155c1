"""The paper's numbers beside the kit's: the index of a profile's report (``reports/<profile>/README.md``).

:data:`PAPER` holds what the paper prints (Tables I, II and IV, Fig. 6) for Kodak; the kit's values
are read from the ``results.json`` each notebook writes (:func:`~proxiqa_lab.studies.record_results`).
:func:`paper_comparison` puts them side by side, with the difference, as Markdown tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from proxiqa_lab.paths import reports_root
from proxiqa_lab.studies.rd import BMSHJ_CONTROL, CONTROL

#: BD-rate metrics of the paper's tables, and the kit's names for them (VIF is not measured by the kit).
PAPER_METRICS = {"PSNR": "psnr_avg", "SSIM": "ssim", "MS-SSIM": "ms_ssim", "VMAF": "vmaf"}

#: Table II, Kodak: mean BD-rate (%) against the MSE-optimised BLS model, per codec (kit names).
TABLE_II_KODAK = {
    "jpeg": {"PSNR": 113.99, "SSIM": 129.49, "MS-SSIM": 149.86, "VMAF": 78.36},
    "jpeg2000": {"PSNR": -11.51, "SSIM": 6.25, "MS-SSIM": -1.02, "VMAF": -33.39},
    "hevc444": {"PSNR": -26.35, "SSIM": -6.32, "MS-SSIM": -6.12, "VMAF": -28.23},
    "hevc420": {"PSNR": -27.33, "SSIM": -25.98, "MS-SSIM": -24.97, "VMAF": -42.18},
    "BLS SSIM_p": {"PSNR": 15.89, "SSIM": -21.31, "MS-SSIM": -19.25, "VMAF": 7.19},
    "BLS MS-SSIM_p": {"PSNR": 11.67, "SSIM": -11.58, "MS-SSIM": -21.77, "VMAF": -0.17},
    "BLS VMAF_p": {"PSNR": 5.23, "SSIM": -6.53, "MS-SSIM": -7.78, "VMAF": -23.35},
    "BMSHJ MSE": {"PSNR": -21.46, "SSIM": -10.94, "MS-SSIM": -10.17, "VMAF": -25.78},
    "BMSHJ VMAF_p": {"PSNR": -15.90, "SSIM": -13.57, "MS-SSIM": -13.17, "VMAF": -47.11},
}
#: Table I, Kodak: VMAF BD-rate (%) of BLS VMAF_p per image.
TABLE_I_VMAF_P = dict(zip(
    [f"kodim{i:02d}" for i in range(1, 25)],
    [-25.3, -26.7, -33.2, -26.9, -18.1, -23.6, -24.7, -20.3, -24.9, -23.2, -20.0, -22.4,
     -19.6, -20.1, -31.8, -24.9, -23.6, -22.0, -17.8, -24.2, -21.6, -25.1, -16.7, -24.0]))
#: Table IV, Kodak: BD-rate (%) of the SSIM-driven optimisations against BLS MSE (columns as notebook 05 names them).
TABLE_IV = {
    "SSIM (14)": {"PSNR": 133.79, "SSIM": -29.41, "MS-SSIM": -11.74, "VMAF": 40.09},
    "SSIM_p (10)(11)": {"PSNR": 15.56, "SSIM": -19.04, "MS-SSIM": -17.29, "VMAF": 7.63},
    "SSIM+L_d (13)": {"PSNR": 15.43, "SSIM": -22.39, "MS-SSIM": -19.69, "VMAF": 12.03},
}
#: Fig. 6: Kodim01 decoded by a codec trained against a frozen pretrained proxy.
FIG_6 = {"proxy": 97.74, "true": 5.35}


def _load(profile: str, notebook: str) -> dict | None:
    path = reports_root() / profile / notebook / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _finetune_steps(profile: str) -> int | None:
    from proxiqa_lab.studies.settings import SETTINGS

    settings = SETTINGS.get(profile)
    return settings.finetune_steps if settings is not None else None


def _fmt(value, signed: bool = True) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:+.2f}" if signed else f"{value:.2f}"
    return str(value)


def _rows_table(rows: list[dict], columns: list[str], signed: bool = True) -> str:
    rule = "|".join("---" if i == 0 else "---:" for i in range(len(columns)))
    head = "| " + " | ".join(columns) + " |\n|" + rule + "|\n"
    return head + "".join("| " + " | ".join(_fmt(r.get(c), signed) for c in columns) + " |\n" for r in rows) + "\n"


def table_ii_comparison(results: dict) -> pd.DataFrame:
    """Kodak BD-rates of notebook 04 beside Table II: one row per (codec, metric) with paper, kit, kit − paper."""
    summary = {r["codec"]: r for r in results["datasets"]["kodak"]["bd_summary"]}
    rows = []
    for codec, paper in TABLE_II_KODAK.items():
        for label, metric in PAPER_METRICS.items():
            kit = summary[codec].get(f"{metric}_mean") if codec in summary else "not run"
            rows.append({"codec": codec, "metric": label, "paper": paper[label], "kit": kit,
                         "kit − paper": kit - paper[label] if isinstance(kit, float) else None})
    for codec in summary:  # the kit's rows the paper does not have (e.g. VMAF_direct)
        if codec not in TABLE_II_KODAK and codec != results["baseline"]:
            for label, metric in PAPER_METRICS.items():
                rows.append({"codec": codec, "metric": label, "paper": None,
                             "kit": summary[codec].get(f"{metric}_mean"), "kit − paper": None})
    return pd.DataFrame(rows)


def equal_steps_markdown(records: dict) -> str:
    """The BD-rates against the equal-steps MSE control (notebook 04's ``equal_steps`` records of one
    dataset) as a Markdown table of mean ± std, one row per codec."""
    metrics = {**PAPER_METRICS, "VMAF-NEG": "vmaf_neg"}
    rows = []
    for r in records["bd_summary"]:
        if r["codec"] == CONTROL:
            continue
        row = {"codec": r["codec"]}
        for label, metric in metrics.items():
            mean, std = r.get(f"{metric}_mean"), r.get(f"{metric}_std")
            row[label] = "n/a" if mean is None or pd.isna(mean) else f"{mean:+.2f} ± {std:.2f}"
        rows.append(row)
    n = len(records["images"])
    return (f"BD-rate (%) against `{CONTROL}`, mean ± std over the {n} images; the `BLS MSE` row "
            "is what the extra steps alone are worth:\n\n" + _rows_table(rows, ["codec", *metrics]))


def _bmshj_control_note() -> str:
    """Where the BMSHJ rows' equal-steps control is measured, with its VMAF result when it is there."""
    text = ("The BMSHJ VMAF_p models are fine-tuned likewise from the BMSHJ MSE models. The zoo ships no BMSHJ "
            "control (three more BMSHJ models would not fit its 50 MB); `benchmarks/bmshj_equal_steps.py` trains "
            "them and measures VMAF_p against them ([bmshj_equal_steps.md](../lab_science/bmshj_equal_steps.md))")
    path = reports_root() / "lab_science" / "bmshj_equal_steps.json"
    rows = json.loads(path.read_text(encoding="utf-8")).get("bd", {}).get(BMSHJ_CONTROL, []) \
        if path.is_file() else []
    found = [r for r in rows if r.get("codec") == "BMSHJ VMAF_p" and r.get("vmaf_mean") is not None]
    if found:
        r = found[0]
        text += (f": {r['vmaf_mean']:+.2f} ± {r['vmaf_std']:.2f} % VMAF BD-rate, "
                 f"{r['psnr_avg_mean']:+.2f} ± {r['psnr_avg_std']:.2f} % PSNR_avg BD-rate")
    return text + ".\n\n"


#: The command that writes each profile's report (``make`` targets; see the README), and what it runs.
REPORT_COMMANDS = {"course": "`make report`, on the lab models of `runs/lab/`, else the shipped ones",
                   "lab": "`make lab-report`, on exactly the models shipped with the kit",
                   "smoke": "`make report PROFILE=smoke`, on tiny models it trains for seconds"}


def how_made(profile: str) -> str:
    """The index's last section: the command, and each notebook's status and wall time, from the runner's
    ``executed/suite.json``; empty when the notebooks have not run."""
    path = reports_root() / profile / "executed" / "suite.json"
    if not path.is_file():
        return ""
    suite = json.loads(path.read_text(encoding="utf-8"))
    rows = [{"notebook": f"[{r['name']}]({r['name']}/)", "source": f"[notebooks/{r['name']}.ipynb]"
             f"(../../notebooks/{r['name']}.ipynb)", "status": r["status"], "wall time (s)": f"{r['wall_s']:.1f}"}
            for r in suite["notebooks"]]
    command = REPORT_COMMANDS.get(profile, f"`proxiqa-lab run-notebooks --profile {profile}`")
    total = sum(r["wall_s"] for r in suite["notebooks"])  # a rerun of some notebooks keeps the others' times
    return (f"## How this report was made\n\n{command}; each folder holds "
            f"its notebook's figures (PNG), tables and `results.json`. Wall time of each notebook, "
            f"{total:.0f} s in all:\n\n" + _rows_table(rows, list(rows[0]) if rows else ["notebook"]))


def paper_comparison(profile: str = "lab") -> str:
    """The Markdown index of ``reports/<profile>/``: the main numbers beside the paper's, with links."""
    out = [f"# ProxIQA Lab: the {profile} profile against the paper\n\n",
           "Every number of the kit below comes from the `results.json` its notebook wrote in this report; "
           "BD-rates (%) are against the MSE-optimised BLS model, mean over the Kodak images the notebook "
           "evaluated (negative: fewer bits at equal quality). The paper trained N=192 models for 2.1M steps; "
           "the lab trains N=64 models, fine-tuned for 1,500 steps from MSE (docs/profiles.md).\n\n"]
    r02 = _load(profile, "02_pretrained_proxy_failure")
    if r02:
        p, a = r02["pretrained"], r02["alternating"]
        out.append("## Fig. 6 and 7: the frozen proxy is fooled, the alternating one is not "
                   "([02](02_pretrained_proxy_failure/))\n\n")
        out.append(_rows_table([
            {"": f"{r02['image']}, frozen pretrained proxy: proxy score", "paper": FIG_6["proxy"], "kit": p["proxy"]},
            {"": f"{r02['image']}, frozen pretrained proxy: true VMAF", "paper": FIG_6["true"], "kit": p["true"]},
            {"": "its rate (bpp)", "paper": None, "kit": p["bpp"]},
            {"": f"{r02['image']}, alternating proxy: proxy score", "paper": None, "kit": a["proxy"]},
            {"": f"{r02['image']}, alternating proxy: true VMAF", "paper": None, "kit": a["true"]},
        ], ["", "paper", "kit"], signed=False))
        gaps = r02.get("training_gap") or {}
        if gaps:
            out.append("Proxy − true VMAF of the training patches over the last 10 % of the logged steps "
                       "(Fig. 7: the paper shows the frozen proxy near 100 over low true scores, and the "
                       "alternating one coinciding with them):\n\n")
            out.append(_rows_table([{"run": k, **{c: v.get(c) for c in ("true", "proxy", "gap", "max_abs_gap")}}
                                    for k, v in gaps.items()], ["run", "true", "proxy", "gap", "max_abs_gap"],
                                   signed=False))
    r06 = _load(profile, "06_training_steps")
    r04 = _load(profile, "04_rate_distortion")
    if r04:
        images = r04["datasets"]["kodak"]["images"]
        comparison = table_ii_comparison(r04)
        rows = []
        for codec in dict.fromkeys(comparison["codec"]):
            row = {"codec": codec}
            for label in PAPER_METRICS:
                sub = comparison[(comparison["codec"] == codec) & (comparison["metric"] == label)].iloc[0]
                row[label] = f"{_fmt(sub['kit']) or 'n/a'} ({_fmt(sub['paper']) or '–'})"
            rows.append(row)
        out.append(f"## Tables I and II: BD-rate on Kodak ([04](04_rate_distortion/), {len(images)} images)\n\n")
        out.append("Kit (paper) per metric; `n/a`: the BD fit is undefined on the kit's curves (they do not "
                   "overlap in quality); `not run`: this profile does not evaluate the codec.\n\n")
        out.append(_rows_table(rows, ["codec", *PAPER_METRICS]))
        vmaf = comparison[(comparison["metric"] == "VMAF") & comparison["paper"].notna()]
        out.append("VMAF BD-rate, the paper's headline metric, with the difference:\n\n")
        out.append(_rows_table(vmaf[["codec", "paper", "kit", "kit − paper"]].to_dict(orient="records"),
                               ["codec", "paper", "kit", "kit − paper"]))
        steps = _finetune_steps(profile)
        control = (r04.get("equal_steps") or {}).get("kodak")
        if steps:
            out.append(f"In this profile the BLS models of the other objectives are fine-tuned for {steps:,} steps "
                       "from the MSE models they are measured against, so part of each of their gains is the "
                       "extra training (it shows in PSNR too). "
                       + ("The table below measures them" if control else
                          ("Fig. 11 below measures" if r06 else "Notebook 06 measures") + " `proxy:vmaf`")
                       + " against MSE fine-tuned for as many steps.\n\n")
        if control:
            out.append(equal_steps_markdown(control))
        if steps and any(r["codec"].startswith("BMSHJ") for r in r04["datasets"]["kodak"]["bd_summary"]):
            out.append(_bmshj_control_note())
        per_image = pd.DataFrame(r04["datasets"]["kodak"]["bd_per_image"])
        vmaf_p = per_image[per_image["codec"] == "BLS VMAF_p"].set_index("image").get("vmaf", pd.Series(dtype=float))
        if len(vmaf_p):
            out.append("Table I, VMAF BD-rate of BLS VMAF_p per image:\n\n")
            out.append(_rows_table([{"image": i, "paper": TABLE_I_VMAF_P.get(i), "kit": float(v),
                                     "kit − paper": float(v) - TABLE_I_VMAF_P[i] if i in TABLE_I_VMAF_P else None}
                                    for i, v in vmaf_p.items()], ["image", "paper", "kit", "kit − paper"]))
    r05 = _load(profile, "05_limitations_ssim")
    if r05:
        table = {r["bd_rate"]: r for r in r05["table_iv"]}
        rows = []
        for column, paper in TABLE_IV.items():
            for label in PAPER_METRICS:
                kit = table.get(f"{label} BD-rate", {}).get(column)
                rows.append({"optimisation": column, "BD-rate": label, "paper": paper[label], "kit": kit,
                             "kit − paper": None if kit is None else kit - paper[label]})
        out.append(f"## Table IV: SSIM-driven optimisations ([05](05_limitations_ssim/), "
                   f"{len(r05['images'])} images)\n\n")
        out.append(_rows_table(rows, ["optimisation", "BD-rate", "paper", "kit", "kit − paper"]))
    if r06:
        out.append(f"## Fig. 11: VMAF BD-rate of {r06['objective']} against training steps "
                   f"([06](06_training_steps/))\n\n")
        out.append("The paper: VMAF_p gains with longer training and after the learning-rate drop, against a "
                   "fixed MSE model and against MSE trained as long (its figure gives no table).\n\n")
        out.append(_rows_table(r06["table"], ["curve", "step", "bd_rate_mean", "bd_rate_std", "n_images"]))
    out.append(how_made(profile))
    return "".join(out)


def write_index(profile: str = "lab") -> Path:
    """Write :func:`paper_comparison` to ``reports/<profile>/README.md``."""
    from proxiqa_lab.fileio import atomic_write_text

    path = reports_root() / profile / "README.md"
    return atomic_write_text(path, paper_comparison(profile))
