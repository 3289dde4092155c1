"""Edited bitstreams with a recomputed CRC: every decode returns an image or a BitstreamError, in bounded time.

The decodes of edited streams run in a child process (this file run as a script) with a deadline,
so a decoder that hangs fails the test instead of freezing the suite.
"""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from compressai.entropy_models import EntropyBottleneck

from proxiqa_lab import codec as codec_module
from proxiqa_lab.errors import BitstreamError
from proxiqa_lab.models import BLS, BMSHJ, load_checkpoint, save_checkpoint
from proxiqa_lab.zoo.registry import ZOO_ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Shipped compact checkpoints, one per architecture.
ZOO = {
    "bls-zoo": ZOO_ROOT / "lab" / "bls64-mse-lmbda0.0932" / "model.pt",
    "bmshj-zoo": ZOO_ROOT / "lab" / "bmshj48-mse-lmbda0.0932-M64" / "model.pt",
}
#: Seconds the child gets to start and decode every variant of one stream.
DEADLINE = 120


def make_model(name: str):
    if name in ZOO:
        return load_checkpoint(ZOO[name], device="cpu")[0]
    torch.manual_seed(0)
    return (BLS(N=8) if name == "bls" else BMSHJ(N=8, M=8)).eval()


@pytest.fixture
def small(rng):
    return rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)


def split(data: bytes) -> tuple[bytes, list[int], list[bytes]]:
    """A stream's fixed header, its H, W, latent h, latent w, and its payload strings."""
    pos = codec_module._FIXED.size
    fields = []
    for _ in range(5):
        value, pos = codec_module._read_varint(data, pos)
        fields.append(value)
    lengths = []
    for _ in range(fields[4]):
        n, pos = codec_module._read_varint(data, pos)
        lengths.append(n)
    strings = []
    for n in lengths:
        strings.append(data[pos : pos + n])
        pos += n
    return data[: codec_module._FIXED.size], fields[:4], strings


def join(fixed: bytes, dims: list[int], strings: list[bytes]) -> bytes:
    """The stream with these fields and strings, lengths and CRC written to match."""
    fields = [*dims, len(strings), *(len(s) for s in strings)]
    body = fixed + b"".join(codec_module._varint(v) for v in fields) + b"".join(strings)
    return body + zlib.crc32(body).to_bytes(4, "big")


def edited(data: bytes, rng: np.random.Generator, count: int = 24) -> list[bytes]:
    """Consistent edits of ``data``: one-byte and several-byte payload edits, cut, extended and
    replaced payloads, and moved boundaries between strings (the lengths rewritten)."""
    fixed, dims, strings = split(data)
    out = []

    def with_string(i, s):
        out.append(join(fixed, dims, strings[:i] + [bytes(s)] + strings[i + 1 :]))

    for i, s in enumerate(strings):
        for edits in [1] * count + [2, 3, 5, 8] * 3:
            e = bytearray(s)
            for pos in rng.integers(0, len(s), edits):
                e[pos] ^= int(rng.integers(1, 256))
            with_string(i, e)
        for k in (1, 3, 4, 7):
            with_string(i, s[:-k])
            with_string(i, s + rng.integers(0, 256, k, dtype=np.uint8).tobytes())
        with_string(i, b"\xff" * len(s))
        with_string(i, b"\xff" * 4 * len(s))
        with_string(i, rng.integers(0, 256, len(s), dtype=np.uint8).tobytes())
    payload = b"".join(strings)
    if len(strings) == 2:
        for cut in range(max(0, len(strings[0]) - 6), min(len(payload), len(strings[0]) + 7)):
            if cut != len(strings[0]):
                out.append(join(fixed, dims, [payload[:cut], payload[cut:]]))
    return out


def decode_in_child(checkpoint: Path, streams: list[bytes], tmp_path: Path) -> list[str]:
    """Decode each stream in a child process; one line per stream: ``image H W 3`` or ``refused ...``."""
    paths = []
    for i, data in enumerate(streams):
        paths.append(tmp_path / f"{i}.pxqa")
        paths[-1].write_bytes(data)
    try:
        run = subprocess.run([sys.executable, __file__, str(checkpoint), *map(str, paths)],
                             capture_output=True, text=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired as e:
        done = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"the decoder hangs: stream {len(done.splitlines())} (0 is the unedited one) of "
                    f"{len(streams)} did not finish in {DEADLINE} s")
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.splitlines()


@pytest.mark.parametrize("name", ["bls", "bmshj", "bls-zoo", "bmshj-zoo"])
def test_edited_streams_decode_or_are_refused_in_bounded_time(name, small, rng, tmp_path):
    model = make_model(name)
    checkpoint = ZOO[name] if name in ZOO else save_checkpoint(tmp_path / "model.pt", model)
    data = codec_module.encode_image(model, small)
    streams = [data, *edited(data, rng)]
    lines = decode_in_child(checkpoint, streams, tmp_path)
    image = "image " + " ".join(map(str, small.shape))
    assert len(lines) == len(streams) and lines[0] == image
    assert all(line == image or line.startswith("refused ") for line in lines), \
        [line for line in lines if line != image and not line.startswith("refused ")]
    assert any(line.startswith("refused ") for line in lines)


# -- the limits behind it ------------------------------------------------------------------


def constant_latent(model: BLS, value: float) -> BLS:
    """``model`` with an analysis transform that maps every image to the symbol ``value`` in every channel."""
    last = model.g_a[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(value + model.entropy_bottleneck._get_medians().reshape(-1))
    return model


def test_the_encoder_refuses_symbols_beyond_the_bound(small):
    model = constant_latent(make_model("bls"), 2 * codec_module.MAX_SYMBOL)
    with pytest.raises(ValueError, match=f"beyond the {codec_module.MAX_SYMBOL}"):
        codec_module.encode_image(model, small)


def test_symbols_at_the_bound_round_trip(small):
    model = constant_latent(make_model("bls"), codec_module.MAX_SYMBOL)
    data = codec_module.encode_image(model, small)
    assert codec_module.decode_image(model, data).shape == small.shape


def test_the_encoder_refuses_a_latent_the_coder_cannot_hold():
    # CompressAI's buffer holds one 32-bit word a symbol; a one-symbol latent needs two for the final state alone.
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="one 32-bit word a symbol"):
        codec_module.encode_image(BLS(N=1).eval(), np.zeros((1, 1, 3), np.uint8))


@pytest.mark.parametrize("name, coder", [("bls", "entropy_bottleneck"), ("bmshj-zoo", "entropy_bottleneck"),
                                         ("bmshj-zoo", "gaussian_conditional")])
def test_the_word_count_is_what_the_coder_writes(name, coder):
    model = make_model(name)
    model.update()
    coder = getattr(model, coder)
    generator = torch.Generator().manual_seed(0)
    for scale in (1, 10, 100, 3000, codec_module.MAX_SYMBOL):
        latent = torch.randn(1, coder._quantized_cdf.size(0), 4, 4, generator=generator) * scale
        latent = latent * (torch.rand(latent.shape, generator=generator) < 0.1)  # a few bypass-coded symbols
        latent = latent.clamp(-codec_module.MAX_SYMBOL, codec_module.MAX_SYMBOL)
        medians = 0.0
        if isinstance(coder, EntropyBottleneck):
            medians = coder._get_medians().detach().reshape(1, -1, 1, 1)
            indexes = codec_module._channel_indexes(coder, latent.shape[-2:])
        else:
            indexes = torch.randint(0, coder._quantized_cdf.size(0), latent.shape, generator=generator).int()
        latent = latent + medians
        symbols = torch.round(latent - medians).long().reshape(-1)
        words = codec_module._coded_words(coder, symbols, indexes.reshape(-1).long())
        assert words <= latent.numel()
        written = len(codec_module._compress(coder, latent, indexes)) // 4
        assert written <= words <= written + 1


def test_the_decoder_refuses_symbols_beyond_the_bound(small):
    model = make_model("bls")
    data = codec_module.encode_image(model, small)
    fixed, dims, _ = split(data)
    y = torch.zeros(1, model.N, *dims[2:])
    y[0, 0, 0, 0] = 4 * codec_module.MAX_SYMBOL
    string = model.entropy_bottleneck.compress(y)[0]
    with pytest.raises(BitstreamError, match=f"a symbol of magnitude {4 * codec_module.MAX_SYMBOL}, beyond the"):
        codec_module.decode_image(model, join(fixed, dims, [string]))


def test_the_decoder_refuses_payloads_longer_than_the_encoder_writes(small):
    model = make_model("bls")
    data = codec_module.encode_image(model, small)
    fixed, dims, (string,) = split(data)
    longest = 4 * model.N * dims[2] * dims[3]  # CompressAI writes at most one 32-bit word a symbol
    with pytest.raises(BitstreamError, match="longer than"):
        codec_module.decode_image(model, join(fixed, dims, [string.ljust(longest + 1, b"\0")]))


@pytest.mark.parametrize("name, size", [("bls", (40, 60)), ("bmshj", (64, 64))])
def test_a_rewritten_size_is_a_different_valid_stream(name, size, small):
    # A CRC cannot authenticate: the declared size, changed within the same latent grid, decodes as declared.
    model = make_model(name)
    data = codec_module.encode_image(model, small)
    fixed, (_, _, lh, lw), strings = split(data)
    out = codec_module.decode_image(model, join(fixed, [*size, lh, lw], strings))
    assert out.shape == (*size, 3)
    assert np.array_equal(out[: small.shape[0], : small.shape[1]], codec_module.decode_image(model, data))


if __name__ == "__main__":  # the child of decode_in_child: decode each stream file, one line each
    torch.set_num_threads(1)
    child_model = load_checkpoint(sys.argv[1], device="cpu")[0]
    for stream in sys.argv[2:]:
        try:
            print("image", *codec_module.decode_image(child_model, Path(stream).read_bytes()).shape, flush=True)
        except BitstreamError as error:
            print("refused", error, flush=True)
