"""Learned-codec bitstreams: exact round trips, real byte counts, and refusal of bad streams."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from proxiqa_lab import codec as codec_module
from proxiqa_lab.cli import main
from proxiqa_lab.codec import LearnedCodec, decode_file, decode_image, encode_file, encode_image
from proxiqa_lab.data import load_image, to_tensor, to_uint8
from proxiqa_lab.errors import BitstreamError, CheckpointError, ImageError
from proxiqa_lab.models import BLS, BMSHJ, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(name: str, seed: int = 0, **config):
    torch.manual_seed(seed)
    model = (BLS(**(config or {"N": 8})) if name == "bls" else BMSHJ(**(config or {"N": 8, "M": 8}))).eval()
    model.update()
    return model


@pytest.fixture(scope="module")
def bls():
    return make_model("bls")


@pytest.fixture(scope="module")
def bmshj():
    return make_model("bmshj")


@pytest.fixture
def small(rng):
    return rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)


def reference_decode(model, img):
    """What the model's own compress/decompress gives for ``img``, padded and cropped back."""
    h, w = img.shape[:2]
    f = model.downsampling_factor
    x = F.pad(to_tensor(img), (0, -w % f, 0, -h % f), mode="replicate")
    with torch.no_grad():
        enc = model.compress(x)
        x_hat = model.decompress(enc["strings"], enc["shape"])["x_hat"]
    return to_uint8(x_hat[..., :h, :w])[0], sum(len(s[0]) for s in enc["strings"])


@pytest.mark.parametrize("name", ["bls", "bmshj"])
@pytest.mark.parametrize("size", [(37, 53), (1, 1), (1, 70), (70, 1), (64, 64), (17, 16)])
def test_round_trip_matches_model_on_any_size(name, size, bls, bmshj, rng):
    model = bls if name == "bls" else bmshj
    img = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    data = encode_image(model, img)
    out = decode_image(model, data)
    expected, payload = reference_decode(model, img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out, expected)
    # The stream is the entropy-coded payload plus a small header and checksum.
    assert payload < len(data) <= payload + 40


def test_padding_factor_comes_from_the_model(bls, bmshj, small):
    assert (bls.downsampling_factor, bmshj.downsampling_factor) == (16, 64)
    for model in (bls, bmshj):
        h, w, shape, strings = codec_module._parse(encode_image(model, small), codec_module._prepare(model), model)
        f = model.downsampling_factor
        assert (h, w) == (37, 53) and shape == (-(-37 // f), -(-53 // f))
        assert len(strings) == (1 if model is bls else 2)


def test_encode_updates_a_fresh_model(small):
    torch.manual_seed(3)
    model = BLS(N=8).eval()
    assert model.entropy_bottleneck._offset.numel() == 0
    out = decode_image(model, encode_image(model, small))
    assert model.entropy_bottleneck._offset.numel() == 8
    assert np.array_equal(out, reference_decode(model, small)[0])


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((0, 5, 3), np.uint8),
        np.zeros((5, 0, 3), np.uint8),
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        np.zeros((8, 8, 3), np.float32),
    ],
)
def test_bad_images_are_refused(bls, img):
    with pytest.raises(ImageError, match=r"uint8 array \(H, W, 3\) with H, W >= 1"):
        encode_image(bls, img)


def test_every_truncation_is_refused(bls, small):
    data = encode_image(bls, small)
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            decode_image(bls, data[:n])
    with pytest.raises(BitstreamError, match="truncated bitstream"):
        decode_image(bls, data[:-5])


def test_every_bit_flip_is_refused(bmshj, small):
    data = encode_image(bmshj, small)
    for i in range(len(data)):
        for bit in (0, 7):
            damaged = bytearray(data)
            damaged[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                decode_image(bmshj, bytes(damaged))


def test_foreign_streams_are_refused(bls, bmshj, small, rng):
    with pytest.raises(BitstreamError, match="not a ProxIQA Lab learned-codec bitstream"):
        decode_image(bls, rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
    with pytest.raises(BitstreamError, match="not a ProxIQA Lab learned-codec bitstream"):
        decode_image(bls, b"")
    with pytest.raises(BitstreamError):
        decode_image(bls, codec_module.MAGIC + rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
    with pytest.raises(BitstreamError, match="must be bytes"):
        decode_image(bls, "PXQA")
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        decode_image(bls, encode_image(bls, small) + b"\x00")
    with pytest.raises(BitstreamError, match="written by a 'bmshj' model, but the decoding model is 'bls'"):
        decode_image(bls, encode_image(bmshj, small))
    with pytest.raises(BitstreamError, match="written by a 'bls' model, but the decoding model is 'bmshj'"):
        decode_image(bmshj, encode_image(bls, small))
    with pytest.raises(BitstreamError, match="another size/config"):
        decode_image(make_model("bls", N=12), encode_image(bls, small))
    with pytest.raises(BitstreamError, match="other weights"):
        decode_image(make_model("bls", seed=1), encode_image(bls, small))


def test_version_is_checked(bls, small):
    data = bytearray(encode_image(bls, small))
    data[4] = 9
    with pytest.raises(BitstreamError, match="format version 9 is not supported"):
        decode_image(bls, bytes(data))


# -- files, CLI and the Codec protocol ----------------------------------------------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, bls):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "bls.pt", bls)


def test_files_round_trip_with_real_bytes(tmp_path, ckpt, small):
    Image.fromarray(small).save(tmp_path / "in.png")
    bpp = encode_file(ckpt, tmp_path / "in.png", tmp_path / "in.pxqa")
    data = (tmp_path / "in.pxqa").read_bytes()
    assert bpp == len(data) * 8 / (37 * 53)
    assert decode_file(ckpt, tmp_path / "in.pxqa", tmp_path / "out.png") == bpp
    # decode_file runs on the default device; decode the same checkpoint there for the comparison.
    assert np.array_equal(load_image(tmp_path / "out.png"), decode_image(load_checkpoint(ckpt)[0], data))
    assert sorted(os.listdir(tmp_path)) == ["in.png", "in.pxqa", "out.png"]  # no temporary files left
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "in.pxqa").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_files_are_never_clobbered(tmp_path, ckpt, small):
    Image.fromarray(small).save(tmp_path / "in.png")
    original = (tmp_path / "in.png").read_bytes()
    for force in (False, True):
        with pytest.raises(ValueError, match="refusing to overwrite the input file"):
            encode_file(ckpt, tmp_path / "in.png", tmp_path / "in.png", force=force)
        with pytest.raises(ValueError, match="refusing to overwrite the input file"):
            encode_file(ckpt, tmp_path / "in.png", ckpt, force=force)
    assert (tmp_path / "in.png").read_bytes() == original
    encode_file(ckpt, tmp_path / "in.png", tmp_path / "a.bin")
    with pytest.raises(FileExistsError, match="--force"):
        encode_file(ckpt, tmp_path / "in.png", tmp_path / "a.bin")
    encode_file(ckpt, tmp_path / "in.png", tmp_path / "a.bin", force=True)
    with pytest.raises(ValueError, match="refusing to overwrite the input file"):
        decode_file(ckpt, tmp_path / "a.bin", tmp_path / "a.bin", force=True)
    with pytest.raises(ImageError, match="ending in .png"):
        decode_file(ckpt, tmp_path / "a.bin", tmp_path / "a.jpg")
    decode_file(ckpt, tmp_path / "a.bin", tmp_path / "a.png")
    with pytest.raises(FileExistsError):
        decode_file(ckpt, tmp_path / "a.bin", tmp_path / "a.png")
    with pytest.raises(FileNotFoundError):
        decode_file(ckpt, tmp_path / "missing.bin", tmp_path / "b.png")


def write_png(path, kind: str, rng) -> None:
    if kind == "gray":
        Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8), mode="L").save(path)
    elif kind == "rgba":
        Image.fromarray(rng.integers(0, 256, (20, 30, 4), dtype=np.uint8), mode="RGBA").save(path)
    else:
        Image.fromarray(rng.integers(0, 65536, (20, 30), dtype=np.uint16)).save(path)


@pytest.mark.parametrize("kind", ["gray", "rgba", "gray16"])
def test_cli_converts_odd_pngs_with_a_notice(tmp_path, ckpt, kind, rng, capsys):
    write_png(tmp_path / "in.png", kind, rng)
    assert main(["encode", str(ckpt), str(tmp_path / "in.png"), str(tmp_path / "in.pxqa")]) == 0
    captured = capsys.readouterr()
    assert "notice:" in captured.err
    size = (tmp_path / "in.pxqa").stat().st_size
    assert f"{size} bytes, {size * 8 / 600:.4f} bpp" in captured.out
    assert main(["decode", str(ckpt), str(tmp_path / "in.pxqa"), str(tmp_path / "out.png")]) == 0
    assert load_image(tmp_path / "out.png").shape == (20, 30, 3)


def test_cli_errors_are_plain(tmp_path, ckpt, small, capsys):
    Image.fromarray(small).save(tmp_path / "in.png")
    assert main(["encode", str(ckpt), str(tmp_path / "in.png"), str(tmp_path / "in.pxqa")]) == 0
    assert main(["encode", str(ckpt), str(tmp_path / "in.png"), str(tmp_path / "in.pxqa")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["encode", str(ckpt), str(tmp_path / "in.png"), str(tmp_path / "in.pxqa"), "--force"]) == 0
    (tmp_path / "bad.pxqa").write_bytes((tmp_path / "in.pxqa").read_bytes()[:-3])
    assert main(["decode", str(ckpt), str(tmp_path / "bad.pxqa"), str(tmp_path / "bad.png")]) == 1
    assert "proxiqa-lab decode: error: truncated bitstream" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()
    assert main(["decode", str(tmp_path / "in.png"), str(tmp_path / "in.pxqa"), str(tmp_path / "c.png")]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_learned_codec_protocol(tmp_path, ckpt, bls, small, monkeypatch):
    ckpt2 = save_checkpoint(tmp_path / "bls2.pt", make_model("bls", seed=1))
    calls = []
    real_load = codec_module.load_checkpoint
    monkeypatch.setattr(codec_module, "load_checkpoint", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    codec = LearnedCodec([ckpt, ckpt2], name="bls-mse", device="cpu")
    assert codec.name == "bls-mse" and codec.points == [ckpt, ckpt2]
    for point in codec.points:
        data = codec.encode(small, point)
        assert np.array_equal(codec.decode(data, point), decode_image(real_load(point, device="cpu")[0], data))
    assert codec.encode(small, ckpt) == encode_image(bls, small)
    assert len(calls) == 2  # each checkpoint loaded once
    with pytest.raises(BitstreamError, match="other weights"):
        codec.decode(codec.encode(small, ckpt), ckpt2)
    with pytest.raises(ValueError, match="is not a point of codec 'bls-mse'"):
        codec.encode(small, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        LearnedCodec([tmp_path / "missing.pt"])
    with pytest.raises(ValueError, match="non-empty list"):
        LearnedCodec([])
