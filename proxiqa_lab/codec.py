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
are checked before the entropy decoder runs. A stream can still be edited consistently, CRC
included, so the entropy decoder also never trusts its input: CompressAI's rANS decoder reads
without bounds checks, so each string is decoded from a zero-padded copy (room for the most a
decoder can read from that many symbols), and the decoded latent must re-encode to exactly
the string it came from; a payload too short for its latent fails that check instead of
decoding garbage. Rates in bpp count every byte of the stream, header included (about 30 bytes).

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
        out = model.compress(x)
    strings = [s[0] for s in out["strings"]]
    lh, lw = (int(v) for v in out["shape"])
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


def _decode_string(string: bytes, symbols: int, decode, encode, what: str):
    """``decode`` one entropy-coded string safely, and check that the result re-encodes to it.

    The decoder gets a copy padded with zeros: 4 bytes per symbol (renormalisation) plus 16 per
    payload byte (the bypass mode's escape codes), more than any stream of ``symbols`` can read.
    """
    padded = string + bytes(4 * symbols + 16 * len(string) + 64)
    latent = decode(padded)
    if encode(latent) != string:
        raise BitstreamError(f"corrupt bitstream: the {what} payload ({len(string)} bytes) does not decode to a "
                             f"latent that codes back to it (it was cut short or edited)")
    return latent


def _synthesis(model: nn.Module, strings: list[bytes], shape: tuple[int, int]) -> torch.Tensor:
    """x̂ from the strings: CompressAI's ``decompress`` of BLS / BMSHJ, each string through :func:`_decode_string`."""
    eb = model.entropy_bottleneck
    lh, lw = shape
    if architecture_of(model) == "bls":
        y_hat = _decode_string(strings[0], model.N * lh * lw, lambda s: eb.decompress([s], shape),
                               lambda v: eb.compress(v)[0], "latent")
    else:
        gc = model.gaussian_conditional
        z_hat = _decode_string(strings[1], model.N * lh * lw, lambda s: eb.decompress([s], shape),
                               lambda v: eb.compress(v)[0], "hyper-latent")
        indexes = gc.build_indexes(model.h_s(z_hat))
        y_hat = _decode_string(strings[0], indexes.numel(), lambda s: gc.decompress([s], indexes, z_hat.dtype),
                               lambda v: gc.compress(v, indexes)[0], "latent")
    return model.g_s(y_hat).clamp_(0, 1)


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
