"""Every notebook, executed headlessly in the smoke profile through the runner, and the form
of the committed notebooks (clean, one parameters cell, logic in the package).

The suite runs once per session into temporary ``reports/`` and ``runs/`` folders (so it
trains from scratch and never touches a user's runs); each notebook then gets its own test,
which checks its status and the key results it recorded in ``results.json``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import nbformat
import pytest

from proxiqa_lab.notebooks.hygiene import check_notebook
from proxiqa_lab.notebooks.runner import discover_notebooks, run_suite

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = [p.stem for p in discover_notebooks(NOTEBOOKS)]
EXPECTED = [
    "00_quickstart", "01_proxiqa_architecture", "02_pretrained_proxy_failure", "03_alternating_training",
    "04_rate_distortion", "05_limitations_ssim", "06_training_steps", "07_alpha_lambda_explorer", "08_runtime",
]


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def bpp_ok(x) -> bool:
    return finite(x) and 0 < x < 8


# --------------------------------------------------------------------------- form of the committed notebooks
def test_the_ordered_notebooks_are_all_there():
    assert NAMES == EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_clean_and_has_the_standard_form(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    assert check_notebook(path) == []
    nb = nbformat.read(path, as_version=4)
    head = nb.cells[0]
    assert head.cell_type == "markdown" and head.source.startswith("# ")
    for part in ("What you will learn", "Paper.", "Runtime."):
        assert part in head.source, f"{name}: the first cell lacks {part!r}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])][0]
    assert params.source.startswith('PROFILE: str = "course"'), "a notebook opens on the shipped lab models"
    assert all("#" in line for line in params.source.splitlines()), "every parameter has a comment"
    assert code.index(params) == 1, "imports, then the parameters cell"
    for cell in code:
        assert "sys.path" not in cell.source and "import *" not in cell.source
        assert not any(line.lstrip().startswith(("def ", "class ")) for line in cell.source.splitlines())
    exercises = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Exercises"))
    before = [c for c in nb.cells[:exercises] if c.cell_type == "code"]
    assert "record_results" in before[-1].source, "the last cell before the Exercises records the key results"
    after = [c for c in nb.cells[exercises:] if c.cell_type == "code"]
    assert all(line.startswith(("from proxiqa_lab import exercises", "exercises.check(")) for c in after
               for line in c.source.splitlines()), "the Exercises section holds only the answer checks"
    lengths = sorted(len(c.source.splitlines()) for c in code)
    assert lengths[len(lengths) // 2] <= 6, "code cells are short"


# --------------------------------------------------------------------------- executing them
@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    env = {"PROXIQA_LAB_REPORTS": str(root / "reports"), "PROXIQA_LAB_RUNS": str(root / "runs"),
           "PROXIQA_LAB_DATA": os.environ.get("PROXIQA_LAB_DATA", str(REPO / "data"))}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, str(Path(value).resolve()))
        results = run_suite("smoke", NOTEBOOKS, cwd=root, cell_timeout=300, echo=print)
    return {r.name: r for r in results}, root / "reports" / "smoke"


def check_00(r):
    assert r["environment"]["libvmaf"] == "True"
    assert bpp_ok(r["jpeg"]["bpp"]) and abs(r["jpeg"]["bpp"] - 0.5) < 0.1
    assert bpp_ok(r["learned"]["bpp"])
    for side in ("jpeg", "learned"):
        assert 0 <= r[side]["vmaf"] <= 100 and 0 < r[side]["ssim"] <= 1 and r[side]["encode_s"] > 0


def check_01(r):
    from proxiqa_lab.models import BLS, ProxIQANet

    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert r["parameters"]["proxiqa_128"] == n(ProxIQANet(128)) and r["parameters"]["bls_192"] == n(BLS(192))
    assert [row["equation"] for row in r["losses"]] == ["(6)", "(7)", "(8)", "(9)", "(10)", "(11)"]
    assert all(finite(row["value"]) for row in r["losses"])
    assert len(r["patches"]) >= 1 and all(finite(v) for row in r["patches"] for v in row.values())
    assert finite(r["codec_step"]["metric_loss"]) and bpp_ok(r["codec_step"]["bpp"])


def check_02(r):
    for run in ("pretrained", "alternating", "alternating_alpha0.5"):
        assert 0 <= r[run]["true"] <= 100 and finite(r[run]["proxy"]) and bpp_ok(r[run]["bpp"])
        assert r[run]["tile"] in (64, 128)
    assert r["image"] == "kodim01" and "tiles" in r["image_proxy_score"]
    assert finite(r["pretrained_proxy"]["rmse"]) and r["pretrained_proxy"]["n_test"] > 0
    a = f"{r['alpha']:g}"
    assert set(r["training_gap"]) == {f"(a) frozen pretrained proxy, α = {a}", f"(b) alternating, α = {a}",
                                      "(c) alternating, α = 0.5"}
    assert all(finite(g["gap"]) for g in r["training_gap"].values())


def check_03(r):
    assert len(r["grid"]) == len(r["objectives"]) * len(r["lambdas"])
    assert all(bpp_ok(row["bpp"]) for row in r["final"])
    assert all(finite(row["metric_true"]) for row in r["final"] if row["label"].endswith("_p"))


def check_04(r):
    kodak = r["datasets"]["kodak"]
    assert r["bd_method"] == "pchip"
    assert set(r["datasets"]) == {"kodak", "wikipedia24"}
    rows = {(row["codec"], row["image"]) for row in kodak["bd_per_image"]}
    assert rows == {(c, i) for c in r["codecs"] if c != r["baseline"] for i in kodak["images"]}
    assert {"vmaf", "vmaf_neg", "psnr_avg"} <= set(kodak["bd_per_image"][0])
    assert [s["codec"] for s in kodak["bd_summary"]] == [c for c in r["codecs"] if c != r["baseline"]]
    assert all(bpp_ok(v) for v in kodak["mean_bpp"].values())


def check_05(r):
    assert r["bd_method"] == "pchip"
    assert [row["bd_rate"] for row in r["table_iv"]] == ["PSNR BD-rate", "SSIM BD-rate", "MS-SSIM BD-rate",
                                                         "VMAF BD-rate"]
    assert set(r["table_iv"][0]) == {"bd_rate", "SSIM (14)", "SSIM_p (10)(11)", "SSIM+L_d (13)"}


def check_06(r):
    assert r["bd_method"] == "pchip"
    assert len(r["table"]) == 2 * len(r["steps"])
    assert {row["step"] for row in r["table"]} == set(r["steps"])
    assert len(r["per_image"]) == 2 * len(r["steps"]) * len(r["images"])


def check_07(r):
    assert len(r["grid"]) == len(r["alphas"]) * len(r["lambdas"])
    for row in r["grid"]:
        assert bpp_ok(row["bpp"]) and finite(row["proxy"]) and 0 <= row["vmaf"] <= 100 and Path(row["crop"]).is_file()
    assert r["selected"]["alpha"] == max(r["alphas"]) and r["selected"]["lmbda"] == max(r["lambdas"])


def check_08(r):
    codecs = {row["codec"] for row in r["table_v"]}
    assert {"jpeg", "BLS MSE", "BLS VMAF_p"} <= codecs
    assert all(row["encode_ms"] > 0 and row["decode_ms"] > 0 for row in r["table_v"])
    assert all(finite(row["encode_norm"]) and row["encode_norm"] > 0 for row in r["fig12"])


CHECKS = {name: globals()[f"check_{name[:2]}"] for name in EXPECTED}


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_smoke_profile_and_records_sane_results(suite, name):
    results, reports = suite
    result = results[name]
    assert result.status == "ok", f"{name} failed at {result.failure.describe()}"
    recorded = json.loads((reports / name / "results.json").read_text())
    assert recorded["profile"] == "smoke" and recorded["notebook"] == name
    CHECKS[name](recorded)
    assert any(a.endswith(".png") for a in result.artifacts) and any(a.endswith(".svg") for a in result.artifacts)


@pytest.mark.notebooks
def test_suite_index_lists_every_notebook(suite):
    results, reports = suite
    index = (reports / "executed" / "index.md").read_text()
    assert all(f"[{name}]" in index for name in NAMES)
    summary = json.loads((reports / "executed" / "suite.json").read_text())
    assert [n["name"] for n in summary["notebooks"]] == NAMES
    beside = (reports / "README.md").read_text()
    assert "the smoke profile against the paper" in beside and "| BLS VMAF_p |" in beside and "97.74" in beside


# --------------------------------------------------------------------------- the main job: the course profile
@pytest.mark.slow
def test_course_profile_shows_the_shipped_lab_models(tmp_path):
    """`make report`'s profile on a fresh clone: no training, a fooled frozen proxy, an explorer of distinct decodes."""
    import numpy as np
    from PIL import Image

    from proxiqa_lab.zoo.plan import notebook_runs
    from proxiqa_lab.zoo.registry import find_model

    missing = [r.name for r in notebook_runs("lab") if not find_model(Path(r.name).stem if r.spec is None else r.name)]
    if missing:
        pytest.skip(f"the zoo does not ship {len(missing)} of the lab runs yet ({missing[0]}, ...)")
    env = {"PROXIQA_LAB_REPORTS": tmp_path / "reports", "PROXIQA_LAB_RUNS": tmp_path / "runs",
           "PROXIQA_LAB_DATA": os.environ.get("PROXIQA_LAB_DATA", str(REPO / "data"))}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, str(Path(value).resolve()))
        results = run_suite("course", NOTEBOOKS, cwd=tmp_path, cell_timeout=600, echo=print)
    assert [r.status for r in results] == ["ok"] * len(NAMES), [r.failure.describe() for r in results if r.failure]
    assert not (tmp_path / "runs" / "lab").exists(), "every learned model came from the zoo: nothing was trained"
    reports = tmp_path / "reports" / "course"
    fooled = json.loads((reports / "02_pretrained_proxy_failure" / "results.json").read_text())
    assert fooled["pretrained"]["proxy"] - fooled["pretrained"]["true"] > 50, "Fig. 6: the frozen proxy is fooled"
    grid = json.loads((reports / "07_alpha_lambda_explorer" / "results.json").read_text())["grid"]
    crops = {(row["alpha"], row["lmbda"]): np.asarray(Image.open(row["crop"]), dtype=float) for row in grid}
    alphas, lambdas = sorted({a for a, _ in crops}), sorted({v for _, v in crops})
    assert np.abs(crops[(alphas[0], lambdas[0])] - crops[(alphas[0], lambdas[-1])]).mean() > 2, "λ changes the decode"
    assert np.abs(crops[(alphas[0], lambdas[1])] - crops[(alphas[-1], lambdas[1])]).mean() > 1, "α changes the decode"
    assert {row["status"] for row in grid} == {"shipped"}
