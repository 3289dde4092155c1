"""The report index: the kit's recorded numbers beside the paper's, with the difference."""

from __future__ import annotations

import json

from proxiqa_lab.studies import paper


def _write(root, notebook, results, profile="lab"):
    folder = root / profile / notebook
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))


def test_paper_comparison_puts_kit_beside_paper(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXIQA_LAB_REPORTS", str(tmp_path))
    _write(tmp_path, "02_pretrained_proxy_failure", {
        "image": "kodim01", "pretrained": {"proxy": 99.1, "true": 0.04, "bpp": 0.051},
        "alternating": {"proxy": 3.9, "true": 3.9, "bpp": 0.004},
        "training_gap": {"(a) frozen": {"true": 4.0, "proxy": 120.0, "gap": 116.0, "max_abs_gap": 130.0}}})
    rd = {
        "baseline": "BLS MSE", "datasets": {"kodak": {
            "images": ["kodim01", "kodim02"],
            "bd_summary": [{"codec": "BLS VMAF_p", "psnr_avg_mean": 1.0, "ssim_mean": None, "ms_ssim_mean": 0.5,
                            "vmaf_mean": -3.35},
                           {"codec": "BLS VMAF_direct", "psnr_avg_mean": 3.7, "ssim_mean": -6.7, "ms_ssim_mean": -8.0,
                            "vmaf_mean": -52.7}],
            "bd_per_image": [{"codec": "BLS VMAF_p", "image": "kodim01", "vmaf": -5.3}]}}}
    _write(tmp_path, "04_rate_distortion", rd)
    _write(tmp_path, "04_rate_distortion", rd, profile="smoke")
    _write(tmp_path, "05_limitations_ssim", {"images": ["kodim01"], "table_iv": [
        {"bd_rate": "SSIM BD-rate", "SSIM (14)": -9.41, "SSIM_p (10)(11)": 1.0, "SSIM+L_d (13)": -2.39}]})
    text = paper.paper_comparison("lab")
    assert "| kodim01, frozen pretrained proxy: proxy score | 97.74 | 99.10 |" in text
    assert "| BLS VMAF_p | +1.00 (+5.23) | n/a (-6.53) | +0.50 (-7.78) | -3.35 (-23.35) |" in text
    assert "| hevc444 | not run (-26.35) |" in text, "a codec the profile does not evaluate says so"
    assert "| BLS VMAF_direct | +3.70 (–) |" in text, "the kit's own rows are listed, without a paper value"
    assert "| BLS VMAF_p | -23.35 | -3.35 | +20.00 |" in text, "VMAF: paper, kit and the difference"
    assert "| hevc444 | -28.23 | not run |  |" in text
    assert "| kodim01 | -25.30 | -5.30 | +20.00 |" in text
    assert "| SSIM (14) | SSIM | -29.41 | -9.41 | +20.00 |" in text
    assert "Fig. 11" not in text, "a notebook that has not run is left out"
    assert "fine-tuned for 1,500 steps from the MSE models they are measured against" in text, \
        "the lab's fine-tunes are flagged as trained longer than the MSE baseline"
    assert "measured against, so part" not in paper.paper_comparison("smoke"), "the smoke profile does not fine-tune"
    assert paper.write_index("lab").read_text() == text


def test_index_shows_the_equal_steps_control(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXIQA_LAB_REPORTS", str(tmp_path))
    summary = [{"codec": "BLS MSE", "psnr_avg_mean": 9.0, "psnr_avg_std": 1.0, "ssim_mean": 8.0, "ssim_std": 1.5,
                "ms_ssim_mean": 7.0, "ms_ssim_std": 1.0, "vmaf_mean": 6.5, "vmaf_std": 2.0,
                "vmaf_neg_mean": 6.0, "vmaf_neg_std": 2.0},
               {"codec": "BLS VMAF_p", "psnr_avg_mean": 1.7, "psnr_avg_std": 2.5, "ssim_mean": None,
                "ssim_std": None, "ms_ssim_mean": 1.7, "ms_ssim_std": 2.3, "vmaf_mean": 0.3, "vmaf_std": 2.6,
                "vmaf_neg_mean": 1.4, "vmaf_neg_std": 2.0},
               {"codec": "BLS MSE (equal steps)", "vmaf_mean": 0.0, "vmaf_std": 0.0}]
    _write(tmp_path, "04_rate_distortion", {
        "baseline": "BLS MSE", "datasets": {"kodak": {"images": ["kodim01", "kodim02"], "bd_summary": [],
                                                      "bd_per_image": [{"codec": "BLS VMAF_p", "image": "kodim01",
                                                                        "vmaf": 0.3}]}},
        "equal_steps": {"kodak": {"images": ["kodim01", "kodim02"], "bd_summary": summary}}})
    text = paper.paper_comparison("lab")
    assert "The table below measures them against MSE fine-tuned for as many steps" in text
    assert "against `BLS MSE (equal steps)`, mean ± std over the 2 images" in text
    assert "| BLS VMAF_p | +1.70 ± 2.50 | n/a | +1.70 ± 2.30 | +0.30 ± 2.60 | +1.40 ± 2.00 |" in text
    assert "| BLS MSE | +9.00 ± 1.00 |" in text, "the extra steps' own worth is shown"
    assert "| BLS MSE (equal steps) |" not in text, "the control is the anchor, not a row"


def test_index_points_to_the_bmshj_control(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXIQA_LAB_REPORTS", str(tmp_path))
    _write(tmp_path, "04_rate_distortion", {"baseline": "BLS MSE", "datasets": {"kodak": {
        "images": ["kodim01"], "bd_summary": [{"codec": "BMSHJ VMAF_p", "vmaf_mean": -28.0}],
        "bd_per_image": [{"codec": "BMSHJ VMAF_p", "image": "kodim01", "vmaf": -28.0}]}}})
    assert "the zoo ships no BMSHJ control" in paper.paper_comparison("lab").replace("The zoo", "the zoo")
    assert "% VMAF BD-rate, " not in paper.paper_comparison("lab"), "no number without the benchmark's result"
    science = tmp_path / "lab_science"
    science.mkdir()
    (science / "bmshj_equal_steps.json").write_text(json.dumps({"bd": {"BMSHJ MSE (equal steps)": [
        {"codec": "BMSHJ VMAF_p", "vmaf_mean": 11.62, "vmaf_std": 4.51, "psnr_avg_mean": 9.99, "psnr_avg_std": 2.88}]}}))
    assert "(../lab_science/bmshj_equal_steps.md)): +11.62 ± 4.51 % VMAF BD-rate, +9.99 ± 2.88 % PSNR_avg" in \
        paper.paper_comparison("lab")
    assert "BMSHJ control" not in paper.paper_comparison("smoke"), "the smoke profile does not fine-tune"


def test_index_says_how_the_report_was_made(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXIQA_LAB_REPORTS", str(tmp_path))
    assert "How this report was made" not in paper.paper_comparison("lab"), "nothing has run yet"
    (tmp_path / "lab" / "executed").mkdir(parents=True)
    (tmp_path / "lab" / "executed" / "suite.json").write_text(json.dumps({"profile": "lab", "total_s": 1.0,
        "notebooks": [{"name": "00_quickstart", "status": "ok", "wall_s": 12.09},
                      {"name": "04_rate_distortion", "status": "ok", "wall_s": 83.3}]}))
    text = paper.paper_comparison("lab")
    assert "`make lab-report`, on exactly the models shipped with the kit; each folder" in text
    assert "95 s in all" in text, "the notebooks' own times, also those kept from an earlier run of the suite"
    assert "| [00_quickstart](00_quickstart/) | [notebooks/00_quickstart.ipynb](../../notebooks/00_quickstart.ipynb) " \
           "| ok | 12.1 |" in text
