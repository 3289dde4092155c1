"""RD evaluation tables, CompressAI-schema RD files, RD plots and the evaluate / bdrate commands."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from proxiqa_lab.classical import get_codec
from proxiqa_lab.cli import main
from proxiqa_lab.errors import BitstreamError
from proxiqa_lab.evaluation import RDCache, evaluate, load_rd, plot_rd, rd_results, save_rd

METRICS = ("psnr_avg", "vmaf")


@pytest.fixture
def images(photo) -> dict[str, np.ndarray]:
    """Two 96x128 crops of the astronaut photo."""
    return {"face": np.ascontiguousarray(photo[40:136, 160:288]),
            "suit": np.ascontiguousarray(photo[300:396, 100:228])}


class PNGBitDepth:
    """A toy codec (PNG of the image with its low bits dropped), standing in for any codec."""

    name = "png-bits"
    points = [2, 3, 4, 5]

    def encode(self, img, point):
        buf = io.BytesIO()
        Image.fromarray(img >> (8 - point)).save(buf, "PNG")
        return buf.getvalue()

    def decode(self, data, point):
        q = np.asarray(Image.open(io.BytesIO(data))).astype(np.uint16)
        return ((q << (8 - point)) + (1 << (7 - point))).astype(np.uint8)


@pytest.fixture(scope="module")
def jpeg_table() -> pd.DataFrame:
    """JPEG at 4 rates on the two crops of ``images`` (computed once for the module)."""
    from skimage import data

    img = data.astronaut()
    crops = {"face": np.ascontiguousarray(img[40:136, 160:288]), "suit": np.ascontiguousarray(img[300:396, 100:228])}
    return evaluate(get_codec("jpeg", points=[0.5, 1.0, 1.5, 2.0]), crops, metrics=METRICS, progress=False)


def test_evaluate_table(jpeg_table, images):
    df = jpeg_table
    assert list(df.columns) == ["image", "codec", "point", "bpp", "psnr_avg", "vmaf", "encode_s", "decode_s"]
    assert len(df) == 8 and set(df["image"]) == {"face", "suit"} and set(df["codec"]) == {"jpeg"}
    for col in ["bpp", *METRICS, "encode_s", "decode_s"]:
        assert df[col].dtype == np.float64 and np.isfinite(df[col]).all()
    assert (df["encode_s"] > 0).all() and (df["decode_s"] > 0).all()
    # bpp is the achieved rate of the real stream, not the target.
    codec = get_codec("jpeg", points=[1.0])
    size = len(codec.encode(images["face"], 1.0))
    row = df[(df["image"] == "face") & (df["point"] == 1.0)].iloc[0]
    assert row["bpp"] == pytest.approx(8 * size / (96 * 128))
    assert row["bpp"] != 1.0
    for _, one in df.groupby("image"):
        assert one["psnr_avg"].is_monotonic_increasing and one["bpp"].is_monotonic_increasing


def test_evaluate_any_codec_object(images):
    df = evaluate(PNGBitDepth(), images, metrics=("psnr_avg",), progress=False)
    assert list(df["point"]) == [2, 3, 4, 5] * 2
    assert df.groupby("image")["psnr_avg"].apply(lambda s: s.is_monotonic_increasing).all()


def test_evaluate_rejects_wrong_decoded_shape(images):
    class Broken(PNGBitDepth):
        def decode(self, data, point):
            return super().decode(data, point)[:-1]

    with pytest.raises(BitstreamError, match="expected uint8"):
        evaluate(Broken(), images, metrics=("psnr_avg",), progress=False)


def test_evaluate_bad_images():
    with pytest.raises(ValueError, match="no images"):
        evaluate(PNGBitDepth(), [], metrics=("psnr_avg",), progress=False)
    with pytest.raises(ValueError, match="uint8 RGB"):
        evaluate(PNGBitDepth(), {"x": np.zeros((8, 8), np.uint8)}, metrics=("psnr_avg",), progress=False)


def test_rd_cache_gives_back_what_was_measured(images, tmp_path, monkeypatch):
    cache, jpeg = RDCache(tmp_path / "cache"), get_codec("jpeg", points=[0.5, 1.0])
    first = evaluate(jpeg, images, metrics=("psnr_avg",), progress=False, cache=cache)
    assert len(list((tmp_path / "cache").glob("jpeg-*/*.json"))) == 2, "one file per image"

    def no_encode(*args, **kwargs):
        raise AssertionError("a cached point was encoded again")

    again = get_codec("jpeg", points=[0.5, 1.0])
    monkeypatch.setattr(again, "encode_quality", no_encode)
    second = evaluate(again, {"copy": images["face"]}, metrics=("psnr_avg",), progress=False, cache=cache)
    pd.testing.assert_frame_equal(second.drop(columns="image"),
                                  first[first["image"] == "face"].drop(columns="image").reset_index(drop=True))
    assert second["image"].eq("copy").all(), "rows take the name the image has now"
    # A new metric, a new point, other pixels or other settings: measured, never made up.
    with pytest.raises(AssertionError, match="encoded again"):
        evaluate(again, {"face": images["face"]}, metrics=("psnr_avg", "ssim"), progress=False, cache=cache)
    with pytest.raises(AssertionError, match="encoded again"):
        evaluate(again, {"face": images["face"]}, metrics=("psnr_avg",), points=[0.7], progress=False, cache=cache)
    with pytest.raises(AssertionError, match="encoded again"):
        evaluate(again, {"face": images["face"][:, ::-1]}, metrics=("psnr_avg",), progress=False, cache=cache)
    assert RDCache.key_of(get_codec("jpeg", tolerance=0.05)) != RDCache.key_of(jpeg)
    assert RDCache.key_of(get_codec("hevc444")) != RDCache.key_of(get_codec("hevc420"))
    assert "ffmpeg version" in RDCache.key_of(jpeg)["engine"]
    assert RDCache.key_of(PNGBitDepth()) is None, "codecs without a cache_key are never cached"


def test_rd_cache_adds_points_and_survives_a_corrupt_file(images, tmp_path):
    cache, jpeg = RDCache(tmp_path), get_codec("jpeg", points=[0.5])
    one = {"face": images["face"]}
    evaluate(jpeg, one, metrics=("psnr_avg",), points=[0.5], progress=False, cache=cache)
    evaluate(jpeg, one, metrics=("psnr_avg",), points=[1.0], progress=False, cache=cache)
    (path,) = tmp_path.glob("jpeg-*/*.json")
    assert [r["point"] for r in json.loads(path.read_text())["rows"]] == [0.5, 1.0]
    both = evaluate(jpeg, one, metrics=("psnr_avg",), points=[1.0, 0.5], progress=False, cache=cache)
    assert both["point"].tolist() == [1.0, 0.5] and both["bpp"].iloc[0] > both["bpp"].iloc[1]
    path.write_text('{"key": ')
    with pytest.warns(UserWarning, match="unreadable RD cache file"):
        again = evaluate(jpeg, one, metrics=("psnr_avg",), points=[1.0, 0.5], progress=False, cache=cache)
    pd.testing.assert_frame_equal(again.drop(columns=["encode_s", "decode_s"]),
                                  both.drop(columns=["encode_s", "decode_s"]))
    assert len(json.loads(path.read_text())["rows"]) == 2, "the corrupt file is replaced by what was measured"


def test_save_rd_writes_compressai_schema(jpeg_table, tmp_path):
    csv_path, json_path = save_rd(jpeg_table, tmp_path / "rd", "jpeg", "test run")
    doc = json.loads(json_path.read_text())
    assert doc["name"] == "jpeg" and doc["description"] == "test run"
    results = doc["results"]
    assert set(results) == {"bpp", *METRICS, "encoding_time", "decoding_time"}
    assert all(len(v) == 4 for v in results.values())
    mean = jpeg_table.groupby("point")[["bpp", "vmaf"]].mean().sort_values("bpp")
    np.testing.assert_allclose(results["bpp"], mean["bpp"])
    np.testing.assert_allclose(results["vmaf"], mean["vmaf"])
    pd.testing.assert_frame_equal(pd.read_csv(csv_path), jpeg_table, check_dtype=False)
    assert sorted(p.name for p in (tmp_path / "rd").iterdir()) == ["jpeg.csv", "jpeg.json"]  # no temp files
    assert load_rd(json_path)["results"] == results
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_rd(jpeg_table, tmp_path / "rd", "jpeg", overwrite=False)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "x"}', "CompressAI-schema"),
        ('{"results": {"bpp": [1, 2], "vmaf": [1]}}', "differ in length"),
        ('{"results": {"bpp": [1, "a"]}}', "list of numbers"),
    ],
)
def test_load_rd_bad_files(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_rd(path)


def test_plot_rd_saves_png_and_svg(jpeg_table, tmp_path):
    df = pd.concat([jpeg_table, jpeg_table.assign(codec="jpeg-copy", bpp=jpeg_table["bpp"] * 1.1)])
    fig = plot_rd(df, "vmaf", tmp_path / "plots" / "rd_vmaf", title="VMAF")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["jpeg", "jpeg-copy"]
    assert ax.get_xlabel() == "rate (bits per pixel)" and ax.get_ylabel() == "VMAF (0–100)"
    assert len(ax.lines[0].get_xdata()) == 4
    assert (tmp_path / "plots" / "rd_vmaf.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "plots" / "rd_vmaf.svg").read_bytes()[:500]
    one = plot_rd(df, "psnr_avg", None, image="face")
    assert len(one.axes[0].lines[0].get_xdata()) == 4
    assert one.axes[0].get_ylabel() == "PSNR (dB)" and "face" in one.axes[0].get_title()
    # no offset notation: the tick labels are the rates themselves
    assert not one.axes[0].xaxis.get_major_formatter().get_offset()
    with pytest.raises(ValueError, match="metric 'ssim' not in"):
        plot_rd(df, "ssim", None)


def test_plot_rd_of_many_codecs_gives_each_its_colour_and_keeps_the_legend_off_the_curves(jpeg_table):
    from matplotlib.colors import to_hex

    names = [f"codec {i}" for i in range(12)]  # notebook 04 in the lab profile draws 12
    df = pd.concat([jpeg_table.assign(codec=n, bpp=jpeg_table["bpp"] * (1 + 0.05 * i)) for i, n in enumerate(names)])
    ax = plot_rd(df, "vmaf", None).axes[0]
    assert len({to_hex(line.get_color()) for line in ax.lines}) == 12, "no two curves share a colour"
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1, "the legend is beside the axes"
    few = plot_rd(df[df["codec"].isin(names[:3])], "vmaf", None)
    assert few.get_figwidth() < plot_rd(df, "vmaf", None).get_figwidth(), "a few curves keep the compact figure"


def test_plot_rd_from_rd_files(jpeg_table, tmp_path):
    _, path = save_rd(jpeg_table, tmp_path, "jpeg")
    fig = plot_rd([path, {"name": "other", "results": rd_results(jpeg_table)}], "psnr_avg", None)
    assert len(fig.axes[0].lines) == 2


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def write_rd(path: Path, bpp, **metrics) -> Path:
    path.write_text(json.dumps({"name": path.stem, "results": {"bpp": list(bpp), **metrics}}))
    return path


def test_cli_bdrate(tmp_path):
    bpp = np.geomspace(0.05, 2, 8)
    vmaf = list(100 * (1 - np.exp(-2 * bpp**0.6)))
    base = write_rd(tmp_path / "base.json", bpp, vmaf=vmaf)
    test = write_rd(tmp_path / "test.json", 0.9 * bpp, vmaf=vmaf)
    code, out, _ = run_cli("bdrate", base, test, "--metric", "vmaf", "--json")
    result = json.loads(out)
    assert code == 0 and result["metric"] == "vmaf" and result["method"] == "pchip"  # the default fit
    assert result["bd_rate"] == pytest.approx(-10.0, abs=1e-9)
    code, out, _ = run_cli("bdrate", base, test, "--metric", "vmaf", "--method", "cubic")
    assert code == 0 and "-10.00%" in out
    code, _, err = run_cli("bdrate", base, test, "--metric", "ssim")
    assert code == 1 and "metric 'ssim' is not in" in err and "vmaf" in err
    (tmp_path / "bad.json").write_text("[1, 2")
    code, _, err = run_cli("bdrate", base, tmp_path / "bad.json")
    assert code == 1 and "not valid JSON" in err
    short = write_rd(tmp_path / "short.json", bpp[:3], vmaf=vmaf[:3])
    code, _, err = run_cli("bdrate", base, short, "--method", "cubic")
    assert code == 1 and "at least 4" in err


def test_cli_evaluate_end_to_end(tmp_path):
    out, cache = tmp_path / "eval", tmp_path / "cache"
    args = ["evaluate", "--codec", "jpeg", "--codec", "jpeg2000", "--dataset", "samples", "--images", "1",
            "--metrics", "psnr_avg", "--points", "0.4", "0.7", "1.2", "2", "--no-progress", "--cache", cache]
    code, stdout, err = run_cli(*args, "--out", out)
    assert code == 0, err
    assert {p.parent.name.split("-")[0] for p in cache.glob("*/*.json")} == {"jpeg", "jpeg2000"}
    code, _, err = run_cli(*args, "--out", tmp_path / "again")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again/jpeg2000.csv"), pd.read_csv(out / "jpeg2000.csv"))
    names = {p.name for p in out.iterdir()}
    assert {"jpeg.csv", "jpeg.json", "jpeg2000.csv", "jpeg2000.json", "bd_per_image.csv", "bd_summary.csv",
            "bd_summary.md", "rd_psnr_avg.png", "rd_psnr_avg.svg"} <= names
    per_image = pd.read_csv(out / "bd_per_image.csv")
    assert list(per_image.columns) == ["codec", "image", "psnr_avg"] and per_image["codec"].tolist() == ["jpeg2000"]
    # JPEG 2000 beats JPEG on PSNR at these rates (paper, Table II).
    assert per_image["psnr_avg"].iloc[0] < 0
    assert "| jpeg2000 |" in (out / "bd_summary.md").read_text()


def test_cli_evaluate_bad_input(tmp_path):
    code, _, err = run_cli("evaluate", "--codec", "bpg", "--dataset", "samples", "--out", tmp_path)
    assert code == 1 and "unknown codec 'bpg'" in err
    code, _, err = run_cli("evaluate", "--codec", "jpeg", "--baseline", "hevc444", "--dataset", "samples",
                           "--out", tmp_path)
    assert code == 1 and "--baseline 'hevc444'" in err
    code, _, err = run_cli("evaluate", "--dataset", "samples", "--out", tmp_path)
    assert code == 1 and "nothing to evaluate" in err


def test_cli_evaluate_a_folder_of_own_images(tmp_path, photo):
    """--dataset DIR: the PNG and JPEG files of a folder, any size, gray or RGB; other files are left alone."""
    from PIL import Image

    own = tmp_path / "mine"
    own.mkdir()
    Image.fromarray(photo[:90, :130]).save(own / "b_wide.png")
    Image.fromarray(photo[100:180, 200:260].mean(axis=2).astype("uint8")).save(own / "a_gray.JPG", quality=95)
    (own / "notes.txt").write_text("not an image")
    out = tmp_path / "eval"
    code, _, err = run_cli("evaluate", "--codec", "jpeg", "--dataset", own, "--metrics", "psnr_avg",
                           "--points", "0.5", "1.5", "--no-progress", "--out", out)
    assert code == 0, err
    rows = pd.read_csv(out / "jpeg.csv")
    assert sorted(rows["image"].unique()) == ["a_gray", "b_wide"] and len(rows) == 4
    assert (rows["psnr_avg"] > 20).all() and (rows["bpp"] > 0).all()
    assert "2 images" in (out / "jpeg.json").read_text()


def test_cli_evaluate_folder_bad_input(tmp_path):
    args = ("--codec", "jpeg", "--metrics", "psnr_avg", "--out", tmp_path / "out")
    code, _, err = run_cli("evaluate", "--dataset", tmp_path / "nowhere", *args)
    assert code == 1 and "neither a dataset" in err and "nor a folder" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    code, _, err = run_cli("evaluate", "--dataset", empty, *args)
    assert code == 1 and "holds no PNG or JPEG files" in err
    (empty / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    code, _, err = run_cli("evaluate", "--dataset", empty, *args)
    assert code == 1 and "broken.png" in err
    assert not (tmp_path / "out").exists(), "nothing is written before the images are checked"
