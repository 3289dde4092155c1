"""Learned-codec bitstreams: real entropy-coded files from a trained BLS / BMSHJ model.

An image is padded (edge replication) to a multiple of the model's downsampling factor,
compressed with CompressAI's rANS entropy coder, and stored as::

    magic "PXQA" | version (1 byte) | architecture id (1 byte)
    | config CRC-32 (4 bytes) | weights CRC-32 (4 bytes)
    | H, W, latent h, latent w, string count, string lengths (unsigned LEB128 varints)
    | entropy-coded strings | CRC-32 of everything before it (4 bytes)

The header lets the decoder refuse, with a clear :class:`~proxiqa_lab.errors.BitstreamError`,
a stream that is truncated, corrupt, or was written by another model (another architecture,
config, or checkpoint: the weights CRC covers the parameters and the entropy tables). All
lengths, and the declared image size (at most :data:`MAX_SIDE` a side and :data:`MAX_PIXELS`),
are checked before the entropy decoder runs.

The CRC catches accidental damage; it authenticates nothing, since anyone who edits a stream can
recompute it. So the entropy decoder never trusts its input either. CompressAI's rANS coder has no
bounds checks: its decoder reads past a short string, its encoder writes into a buffer of one
32-bit word a symbol, and it never returns from a symbol of magnitude 2**27 or more. So a payload
may hold at most 4 bytes a symbol, each string is decoded from a zero-padded copy (room for the most
a decoder can read past it), the decoded symbols must lie within :data:`MAX_SYMBOL` and fit the
encoder's buffer, and the latent must then code back to exactly the string it came from; a payload
too short for its latent fails these checks instead of decoding garbage. Every decode is therefore
bounded work, set by the declared image size. The encoder refuses (``ValueError``) a latent beyond
the same limits, so every stream it writes decodes. An edit that passes every check (say, another
declared size with the same latent grid) is a different valid stream, and decodes as it declares.
Rates in bpp count every byte of the stream, header included (about 30 bytes).

The entropy coder needs bit-identical entropy parameters on both sides. For the hyperprior
(BMSHJ) they are computed by a network (``h_s``), so decode on the same kind of device
that encoded; this is a property of learned codecs with floating-point priors.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianConditional

from proxiqa_lab.data import load_image, save_image, to_tensor, to_uint8
from proxiqa_lab.device import default_device
from proxiqa_lab.errors import BitstreamError, CheckpointError, ImageError
from proxiqa_lab.fileio import atomic_write_bytes
from proxiqa_lab.models import architecture_of, load_checkpoint

__all__ = [
    "ARCHITECTURE_IDS",
    "FORMAT_VERSION",
    "MAGIC",
    "LearnedCodec",
    "decode_file",
    "decode_image",
    "encode_file",
    "encode_image",
]

MAGIC = b"PXQA"
FORMAT_VERSION = 1
#: Stable one-byte ids of the codec architectures a stream can name.
ARCHITECTURE_IDS = {"bls": 1, "bmshj": 2}
_FIXED = struct.Struct(">4sBBII")  # magic, version, architecture id, config CRC, weights CRC
#: The largest image a stream may declare: 16384 px a side, 64 megapixels.
MAX_SIDE = 16384
MAX_PIXELS = 1 << 26
#: The largest symbol magnitude a stream may carry (``|round(y - median)|`` for the entropy
#: bottleneck, ``|round(y)|`` for the Gaussian conditional): far beyond any image's latent, and far
#: below the 2**27 from which CompressAI's rANS encoder never returns.
MAX_SYMBOL = 1 << 15
_CRC = struct.Struct(">I")


@dataclass(frozen=True)
class _Identity:
    """What a stream records about the model that wrote it."""

    architecture: str
    config_crc: int
    weights_crc: int


def encode_image(model: nn.Module, img: np.ndarray) -> bytes:
    """Compress one image into a self-describing bitstream.

    Args:
        model: a BLS or BMSHJ model (``update()`` is called first if its entropy tables
            are not built yet).
        img: uint8 array (H, W, 3), any H, W >= 1.

    Returns:
        The bitstream; its rate is ``len(data) * 8 / (H * W)`` bpp.
    """
    return _encode(model, img, _prepare(model))


def decode_image(model: nn.Module, data: bytes) -> np.ndarray:
    """Decompress a bitstream written by :func:`encode_image` with the same model.

    Args:
        model: the model that encoded the stream (same architecture, config and weights).
        data: the bitstream.

    Returns:
        uint8 array (H, W, 3) at the original size.

    Raises:
        BitstreamError: when the stream is truncated, corrupt, or from another model.
    """
    return _decode(model, data, _prepare(model))


def encode_file(
    checkpoint: str | os.PathLike | nn.Module, image: str | os.PathLike, out: str | os.PathLike, force: bool = False
) -> float:
    """Compress an image file into a bitstream file.

    The image is read with :func:`proxiqa_lab.data.load_image` (gray, RGBA and 16-bit inputs
    are converted with an ``ImageConversionWarning``). The output is written atomically and
    never replaces the input image or the checkpoint.

    Args:
        checkpoint: a checkpoint path (see :func:`~proxiqa_lab.models.save_checkpoint`) or a model.
        image: the image to compress.
        out: the bitstream file to write.
        force: replace ``out`` if it exists.

    Returns:
        The rate in bits per pixel, from the bytes written.
    """
    out = Path(out)
    _check_output(out, [image, checkpoint], force)
    img = load_image(image)
    model = _as_model(checkpoint)
    data = encode_image(model, img)
    atomic_write_bytes(out, data)
    return len(data) * 8 / (img.shape[0] * img.shape[1])


def decode_file(
    checkpoint: str | os.PathLike | nn.Module, inp: str | os.PathLike, out_png: str | os.PathLike, force: bool = False
) -> float:
    """Decompress a bitstream file into a PNG.

    Args:
        checkpoint: the checkpoint path (or model) that encoded ``inp``.
        inp: the bitstream file.
        out_png: the PNG to write (atomically; never the input or the checkpoint).
        force: replace ``out_png`` if it exists.

    Returns:
        The stream's rate in bits per pixel.
    """
    inp, out_png = Path(inp), Path(out_png)
    _check_output(out_png, [inp, checkpoint], force)
    if out_png.suffix.lower() != ".png":
        raise ImageError(f"decoded images are written as PNG; give an output path ending in .png, got {out_png}")
    if not inp.is_file():
        raise FileNotFoundError(f"bitstream {inp} does not exist")
    data = inp.read_bytes()
    img = decode_image(_as_model(checkpoint), data)
    save_image(img, out_png, overwrite=force)
    return len(data) * 8 / (img.shape[0] * img.shape[1])


class LearnedCodec:
    """A trained learned codec as a :class:`Codec`: one rate point per checkpoint.

    Each checkpoint (for example one per λ) is loaded once, on first use, onto
    :func:`~proxiqa_lab.device.default_device` (or ``device``), and kept.

    Args:
        checkpoints: checkpoint paths, the codec's rate points.
        name: the codec's name in RD tables and plots.
        device: where the models run; ``None`` picks CUDA when present.
    """

    def __init__(self, checkpoints: list[str | os.PathLike], name: str = "learned", device=None):
        if isinstance(checkpoints, (str, os.PathLike)) or not len(checkpoints):
            raise ValueError(f"checkpoints must be a non-empty list of checkpoint paths, got {checkpoints!r}")
        missing = [str(p) for p in checkpoints if not Path(p).is_file()]
        if missing:
            raise CheckpointError(f"checkpoint(s) not found: {missing}")
        self.name = name
        self.points = list(checkpoints)
        self.device = default_device(device)
        self._models: dict[int, tuple[nn.Module, _Identity]] = {}

    def __repr__(self) -> str:
        return f"LearnedCodec(name={self.name!r}, points={[str(p) for p in self.points]!r})"

    def encode(self, img: np.ndarray, point) -> bytes:
        """Compress ``img`` with the checkpoint ``point``."""
        model, identity = self._model(point)
        return _encode(model, img, identity)

    def decode(self, data: bytes, point) -> np.ndarray:
        """Decompress a stream written by :meth:`encode` with the same ``point``."""
        model, identity = self._model(point)
        return _decode(model, data, identity)

    def _model(self, point) -> tuple[nn.Module, _Identity]:
        matches = [i for i, p in enumerate(self.points) if str(p) == str(point)]
        if not matches:
            raise ValueError(f"{point!r} is not a point of codec {self.name!r}; its points are {self.points}")
        i = matches[0]
        if i not in self._models:
            model, _ = load_checkpoint(self.points[i], device=self.device)
            self._models[i] = (model, _prepare(model))
        return self._models[i]


# -- encoding and decoding ---------------------------------------------------------------


def _prepare(model: nn.Module) -> _Identity:
    """Check the model is a registered codec, build its entropy tables, and fingerprint it."""
    name = architecture_of(model)
    if name not in ARCHITECTURE_IDS:
        raise ValueError(f"{name!r} is not a codec; the learned codecs are {sorted(ARCHITECTURE_IDS)}")
    model.update()  # builds the CDF tables once; a no-op when they exist
    weights_crc = 0
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"the model's {key!r} holds NaN or Inf values; it cannot code images "
                                  f"(training diverged, or the weights were altered)")
        weights_crc = zlib.crc32(key.encode(), weights_crc)
        weights_crc = zlib.crc32(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes(), weights_crc)
    config = ",".join(f"{k}={v!r}" for k, v in sorted(model.config.items()))
    return _Identity(name, zlib.crc32(f"{name}:{config}".encode()), weights_crc)


def _num_strings(model: nn.Module) -> int:
    return sum(isinstance(m, (EntropyBottleneck, GaussianConditional)) for m in model.modules())


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _encode(model: nn.Module, img: np.ndarray, identity: _Identity) -> bytes:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ImageError(
            f"the image must be a uint8 array (H, W, 3) with H, W >= 1, got dtype {img.dtype} and shape "
            f"{img.shape}; use proxiqa_lab.data.load_image to read files"
        )
    h, w = img.shape[:2]
    if max(h, w) > MAX_SIDE or h * w > MAX_PIXELS:
        raise ImageError(f"the image is {w}x{h}; this kit codes images of at most {MAX_SIDE} px a side and "
                         f"{MAX_PIXELS // 2**20} megapixels (cut it into tiles)")
    factor = model.downsampling_factor
    x = to_tensor(img).to(_device(model))
    x = F.pad(x, (0, -w % factor, 0, -h % factor), mode="replicate")
    with torch.no_grad():
        strings, (lh, lw) = _analysis(model, x)
    header = _FIXED.pack(
        MAGIC, FORMAT_VERSION, ARCHITECTURE_IDS[identity.architecture], identity.config_crc, identity.weights_crc
    )
    fields = [h, w, lh, lw, len(strings), *(len(s) for s in strings)]
    body = header + b"".join(_varint(v) for v in fields) + b"".join(strings)
    return body + _CRC.pack(zlib.crc32(body))


def _decode(model: nn.Module, data: bytes, identity: _Identity) -> np.ndarray:
    h, w, shape, strings = _parse(data, identity, model)
    with torch.no_grad():
        x_hat = _synthesis(model, strings, shape)
    return to_uint8(x_hat[..., :h, :w])[0]


def _analysis(model: nn.Module, x: torch.Tensor) -> tuple[list[bytes], tuple[int, int]]:
    """Strings and latent grid: CompressAI's ``compress`` of BLS / BMSHJ, each latent through :func:`_encode_latent`."""
    eb = model.entropy_bottleneck
    y = model.g_a(x)
    if architecture_of(model) == "bls":
        return [_encode_latent(eb, y, _channel_indexes(eb, y.shape[-2:]), "latent")], tuple(y.shape[-2:])
    gc = model.gaussian_conditional
    z = model.h_a(torch.abs(y))
    z_string = _encode_latent(eb, z, _channel_indexes(eb, z.shape[-2:]), "hyper-latent")
    indexes = gc.build_indexes(model.h_s(eb.decompress([z_string], z.shape[-2:])))
    return [_encode_latent(gc, y, indexes, "latent"), z_string], tuple(z.shape[-2:])


def _synthesis(model: nn.Module, strings: list[bytes], shape: tuple[int, int]) -> torch.Tensor:
    """x̂ from the strings: CompressAI's ``decompress`` of BLS / BMSHJ, each string through :func:`_decode_string`."""
    eb = model.entropy_bottleneck
    if architecture_of(model) == "bls":
        y_hat = _decode_string(eb, strings[0], _channel_indexes(eb, shape), "latent")
    else:
        gc = model.gaussian_conditional
        z_hat = _decode_string(eb, strings[1], _channel_indexes(eb, shape), "hyper-latent")
        y_hat = _decode_string(gc, strings[0], gc.build_indexes(model.h_s(z_hat)), "latent")
    return model.g_s(y_hat).clamp_(0, 1)


def _encode_latent(coder, latent: torch.Tensor, indexes: torch.Tensor, what: str) -> bytes:
    """Code one latent, refusing one that CompressAI's rANS encoder cannot code (see :func:`_uncodable`)."""
    problem = _uncodable(coder, latent, indexes)
    if problem:
        raise ValueError(f"cannot code this image: the model's {what} has {problem}; "
                         f"the checkpoint is not a working codec for it (untrained or diverged?)")
    return _compress(coder, latent, indexes)


def _decode_string(coder, string: bytes, indexes: torch.Tensor, what: str) -> torch.Tensor:
    """Decode one entropy-coded string safely, and check that the result codes back to it.

    The decoder gets a copy padded with zeros, more than it can read past the payload: 20 words a
    symbol (the symbol, and a bypass code of up to 9 count and 134 raw nibbles drawn from the coder's
    state) and 16 bytes a payload byte (each nibble 15 in the payload can add 15 to a bypass code).
    """
    count = indexes.numel()
    if len(string) > 4 * count:
        raise BitstreamError(f"corrupt bitstream: the {what} payload is {len(string)} bytes, longer than the "
                             f"{4 * count} the encoder writes for its {count} symbols (it was edited or is corrupt)")
    latent = _decompress(coder, string.ljust(80 * count + 17 * len(string) + 64, b"\0"), indexes)
    problem = _uncodable(coder, latent, indexes)
    if problem:
        raise BitstreamError(f"corrupt bitstream: the {what} payload does not decode to a latent this codec "
                             f"can code: it has {problem} (it was edited or is corrupt)")
    if _compress(coder, latent, indexes) != string:
        raise BitstreamError(f"corrupt bitstream: the {what} payload ({len(string)} bytes) does not decode to a "
                             f"latent that codes back to it (it was cut short or edited)")
    return latent


def _uncodable(coder, latent: torch.Tensor, indexes: torch.Tensor) -> str:
    """Why CompressAI's rANS encoder cannot code ``latent`` safely, or ``""`` when it can.

    It never returns from a symbol of magnitude 2**27 or more, and writes into a buffer of one 32-bit
    word a symbol without a bounds check. So the symbols must lie within :data:`MAX_SYMBOL`, and the
    words they take (:func:`_coded_words`) must fit that buffer.
    """
    medians = coder._get_medians().detach() if isinstance(coder, EntropyBottleneck) else 0.0
    symbols = torch.round(latent - medians).reshape(-1)
    peak = symbols.abs().max().item()
    if not peak <= MAX_SYMBOL:  # NaN fails too
        return f"a symbol of magnitude {peak:g}, beyond the {MAX_SYMBOL} a stream may carry"
    words = _coded_words(coder, symbols.long(), indexes.reshape(-1).long())
    if words > symbols.numel():
        return (f"symbols that take {words} words, more than CompressAI's rANS coder holds "
                f"(one 32-bit word a symbol, {symbols.numel()} here)")
    return ""


def _coded_words(coder, symbols: torch.Tensor, indexes: torch.Tensor) -> int:
    """At least the number of 32-bit words CompressAI's rANS encoder writes for these symbols (at most one more).

    A symbol costs 16 - log2(freq) bits of its CDF (the escape's when it is bypass-coded; plus 2**-10 for
    rANS rounding) and 4 bits a nibble of its bypass code; rANS writes no more words than those bits
    fill, plus the two of its final state.
    """
    value = symbols - coder._offset.long()[indexes]
    top = coder._cdf_length.long()[indexes] - 2  # the escape; values outside [0, top) are bypass-coded
    bypass = (value < 0) | (value >= top)
    raw = torch.where(value < 0, -2 * value - 1, 2 * (value - top))
    nibbles = sum((raw >= 16**k).long() for k in range(8))
    at = torch.where(bypass, top, value)
    cdf = coder._quantized_cdf.long()
    freq = cdf[indexes, at + 1] - cdf[indexes, at]
    bits = (16 - torch.log2(freq.double()) + 2**-10).sum() + 4 * (bypass * (1 + nibbles + nibbles // 15)).sum()
    return int(bits.item() // 32) + 2


def _channel_indexes(coder: EntropyBottleneck, shape) -> torch.Tensor:
    """The entropy bottleneck's CDF index of each element of a (1, C, h, w) latent: its channel."""
    c = coder._quantized_cdf.size(0)
    return torch.arange(c, device=coder._quantized_cdf.device).view(1, c, 1, 1).expand(1, c, *shape)


def _compress(coder, latent: torch.Tensor, indexes: torch.Tensor) -> bytes:
    if isinstance(coder, EntropyBottleneck):
        return coder.compress(latent)[0]
    return coder.compress(latent, indexes)[0]


def _decompress(coder, string: bytes, indexes: torch.Tensor) -> torch.Tensor:
    if isinstance(coder, EntropyBottleneck):
        return coder.decompress([string], indexes.shape[-2:])
    return coder.decompress([string], indexes)


def _parse(data: bytes, identity: _Identity, model: nn.Module) -> tuple[int, int, tuple[int, int], list[bytes]]:
    """Read and check the header; return H, W, the latent shape and the strings."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"a bitstream must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if data.startswith(MAGIC) and len(data) < _FIXED.size + _CRC.size:
        raise BitstreamError(f"truncated bitstream: {len(data)} bytes, fewer than the {_FIXED.size + _CRC.size} "
                             f"of an empty stream's header and checksum")
    if len(data) < _FIXED.size + _CRC.size or not data.startswith(MAGIC):
        raise BitstreamError(
            f"not a ProxIQA Lab learned-codec bitstream ({len(data)} bytes starting with {data[:4]!r}; "
            f"streams start with {MAGIC!r}): was it written by encode_image / proxiqa-lab encode?"
        )
    _, version, arch_id, config_crc, weights_crc = _FIXED.unpack_from(data)
    if version != FORMAT_VERSION:
        raise BitstreamError(f"bitstream format version {version} is not supported (this kit reads {FORMAT_VERSION})")
    pos = _FIXED.size
    h, pos = _read_varint(data, pos)
    w, pos = _read_varint(data, pos)
    lh, pos = _read_varint(data, pos)
    lw, pos = _read_varint(data, pos)
    count, pos = _read_varint(data, pos)
    if count > 16:
        raise BitstreamError(f"corrupt bitstream: header declares {count} entropy-coded strings")
    lengths = []
    for _ in range(count):
        n, pos = _read_varint(data, pos)
        lengths.append(n)
    expected = pos + sum(lengths) + _CRC.size
    if len(data) < expected:
        raise BitstreamError(f"truncated bitstream: the header declares {expected} bytes, only {len(data)} are present")
    if len(data) > expected:
        raise BitstreamError(
            f"corrupt bitstream: {len(data) - expected} unexpected bytes after the declared {expected}"
        )
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if crc != zlib.crc32(data[: -_CRC.size]):
        raise BitstreamError("corrupt bitstream: checksum mismatch (the stream was altered or damaged)")
    names = {v: k for k, v in ARCHITECTURE_IDS.items()}
    if arch_id != ARCHITECTURE_IDS[identity.architecture]:
        raise BitstreamError(
            f"this stream was written by a {names.get(arch_id, f'unknown (id {arch_id})')!r} model, "
            f"but the decoding model is {identity.architecture!r}: decode with the checkpoint that encoded it"
        )
    if config_crc != identity.config_crc:
        raise BitstreamError(
            f"this stream was written by a {identity.architecture!r} model of another size/config than the "
            f"decoding model ({model.config}): decode with the checkpoint that encoded it"
        )
    if weights_crc != identity.weights_crc:
        raise BitstreamError(
            "this stream was written by a model with other weights or entropy tables (another checkpoint?): "
            "decode with the checkpoint that encoded it"
        )
    if max(h, w) > MAX_SIDE or h * w > MAX_PIXELS:
        raise BitstreamError(f"bitstream declares a {w}x{h} image, beyond the {MAX_SIDE} px a side and "
                             f"{MAX_PIXELS // 2**20} megapixels this kit decodes: corrupt or edited")
    factor = model.downsampling_factor
    if h < 1 or w < 1 or (lh, lw) != (-(-h // factor), -(-w // factor)) or count != _num_strings(model):
        raise BitstreamError(
            f"corrupt bitstream: image {h}x{w}, latent {lh}x{lw} and {count} strings do not fit this model"
        )
    strings = []
    for n in lengths:
        strings.append(data[pos : pos + n])
        pos += n
    return h, w, (lh, lw), strings


def _varint(n: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 64, 7):
        if pos >= len(data):
            raise BitstreamError(f"truncated bitstream: the header ends early ({len(data)} bytes)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise BitstreamError("corrupt bitstream: malformed header field")


# -- files -------------------------------------------------------------------------------


def _as_model(checkpoint) -> nn.Module:
    if isinstance(checkpoint, nn.Module):
        return checkpoint
    model, _ = load_checkpoint(checkpoint)
    return model


def _check_output(out: Path, inputs: list, force: bool) -> None:
    """Refuse to clobber an input, or an existing output without ``force``; an output folder is never replaced."""
    if out.is_dir():
        raise ValueError(f"the output {out} is a folder; give the path of a file to write")
    for inp in inputs:
        if isinstance(inp, nn.Module):
            continue
        inp = Path(inp)
        if out.resolve() == inp.resolve() or (out.exists() and inp.exists() and os.path.samefile(out, inp)):
            raise ValueError(f"refusing to overwrite the input file {inp} with the output; choose another output path")
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; refusing to overwrite it (pass force=True / --force)")
