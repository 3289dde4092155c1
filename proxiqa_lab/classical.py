"""Classical image codecs (JPEG, JPEG 2000, HEVC, AV1, VVC, WebP, JPEG XL) behind the Codec protocol.

Every codec here follows the protocol the learned codec follows too: ``name``, ``points``,
``encode(img, point) -> bytes`` and ``decode(data, point) -> uint8 (H, W, 3)``. A *point* is a
target rate in bits per pixel: the paper encodes every image "at eight different bitrates,
ranging from 0.05 bpp to 2 bpp" (Sec. IV-A), so :data:`DEFAULT_POINTS` holds eight targets spaced
log-uniformly in [0.05, 2]. For each image, :meth:`ClassicalCodec.quality_for` searches the
codec's quality knob (bracketing plus interpolation on the monotonic size-vs-knob relation,
caching the size of every encode) for the knob whose *real* output size is closest to the
target. The rate reported by an evaluation is always the achieved bpp, never the target.

Sizes are those of the whole file or bitstream a decoder reads, container included:

========== ================================================ ===========================
name       encoder                                          what is counted
========== ================================================ ===========================
jpeg       Pillow/libjpeg, YCbCr 4:4:4, baseline            JFIF file
jpeg2000   Pillow/OpenJPEG, 9/7 wavelet + ICT (YCbCr 4:4:4)  raw J2K codestream
hevc444    ffmpeg libx265, yuv444p (Main 4:4:4 RExt), intra  Annex-B .hevc stream
hevc420    ffmpeg libx265, yuv420p (Main), intra            Annex-B .hevc stream
av1        ffmpeg libaom-av1, allintra, still picture, 444  low-overhead OBU stream
vvc        ffmpeg libvvenc, yuv420p10le, intra              Annex-B .266 stream
webp       ffmpeg libwebp (lossy WebP is 4:2:0 only)        RIFF WebP file
jxl        ffmpeg libjxl (VarDCT, XYB)                      naked JPEG XL codestream
========== ================================================ ===========================

Colour: the ffmpeg codecs get ``rgb24`` on a pipe and let ffmpeg convert it to the encoder's
pixel format with its default (BT.601, limited range) conversion; decoding goes back to
``rgb24`` the same default way. JPEG and JPEG 2000 use the JFIF / ICT full-range YCbCr their
libraries apply.

Differences from the paper's Table III: JPEG is libjpeg rather than the JPEG XT reference,
JPEG 2000 is OpenJPEG rather than Kakadu, and HEVC is x265 rather than the HM 16.9 reference
encoder (main-RExt). x265 is much faster than HM and, at its default settings, uses adaptive
quantization and psycho-visual RD optimization, which HM does not; expect its PSNR curves to sit
somewhat below HM's.
"""

from __future__ import annotations

import hashlib
import io
import math
import subprocess
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from proxiqa_lab.errors import BitstreamError, ImageError, ProxIQALabError
from proxiqa_lab.metrics.engine import ffmpeg_exe  # the one ffmpeg: codecs and metrics alike


class CodecUnavailableError(ProxIQALabError, RuntimeError):
    """The ffmpeg build lacks the encoder a codec needs, or the encoder failed."""


#: Eight target rates, log-uniform in [0.05, 2] bpp (paper, Sec. IV-A).
DEFAULT_POINTS: tuple[float, ...] = tuple(float(b) for b in np.geomspace(0.05, 2.0, 8).round(4))


@lru_cache(maxsize=1)
def ffmpeg_encoders() -> frozenset[str]:
    """Names of the video encoders this ffmpeg build has."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] == "V":
            names.add(parts[1])
    return frozenset(names)


@lru_cache(maxsize=1)
def engine_version() -> str:
    """The first line of ``ffmpeg -version`` plus Pillow's and its codec libraries' versions."""
    import PIL
    from PIL import features

    first = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout.partition("\n")[0]
    return (f"{first.strip()}; Pillow {PIL.__version__}, libjpeg {features.version('jpg')}, "
            f"OpenJPEG {features.version('jpg_2000')}")


def check_image(img: np.ndarray) -> np.ndarray:
    """Validate an RGB uint8 (H, W, 3) image; return it C-contiguous."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{type(img).__name__} {getattr(img, 'dtype', '')} {getattr(img, 'shape', '')}"
        raise ImageError(f"codecs take uint8 RGB images of shape (H, W, 3), got {got}; "
                         "load images with proxiqa_lab.data.load_image")
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise ImageError(f"image is too small to encode: {img.shape[1]}x{img.shape[0]}; need at least 8x8")
    return np.ascontiguousarray(img)


def bits_per_pixel(data: bytes, img_or_shape) -> float:
    """Rate of a bitstream in bits per pixel of the image it codes."""
    h, w = (img_or_shape.shape if isinstance(img_or_shape, np.ndarray) else img_or_shape)[:2]
    return 8.0 * len(data) / (h * w)


def image_key(img: np.ndarray) -> str:
    """A digest identifying an image's pixels (for the per-image search cache)."""
    digest = hashlib.blake2b(img.tobytes(), digest_size=16)
    digest.update(str(img.shape).encode())
    return digest.hexdigest()


def _run_ffmpeg(args: list[str], stdin: bytes | None, what: str, error: type[Exception]) -> bytes:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip()[-600:]
        raise error(f"{what} failed (ffmpeg exit {proc.returncode}): {tail or 'no message'}")
    return proc.stdout


def _parse_ppm(data: bytes) -> np.ndarray:
    """Parse one binary PPM (P6, maxval 255) as written by ffmpeg's ppm encoder."""
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while end < len(data) and not data[end : end + 1].isspace():
            end += 1
        if end == pos:
            raise BitstreamError("decoder produced no picture")
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255":
        raise BitstreamError("decoder produced an unexpected picture format")
    w, h = int(fields[1]), int(fields[2])
    pos += 1
    if len(data) - pos < w * h * 3:
        raise BitstreamError("decoder produced an incomplete picture")
    return np.frombuffer(data, np.uint8, w * h * 3, pos).reshape(h, w, 3).copy()


class ClassicalCodec:
    """Base class: the Codec protocol plus a per-image search of the quality knob for target bpps.

    Subclasses set the class attributes describing their knob and implement
    :meth:`encode_quality` and :meth:`decode`.

    Args:
        points: target rates in bpp (default :data:`DEFAULT_POINTS`).
        tolerance: stop searching once ``|log(bpp / target)|`` is below this (0.02 is ~2%).
        max_encodes: most encodes spent on one target (besides those already cached).
    """

    name: ClassVar[str] = ""
    #: knob name, range, whether it is an integer, whether larger values give larger files,
    #: and whether to interpolate it on a log scale.
    knob: ClassVar[str] = "quality"
    knob_range: ClassVar[tuple[float, float]] = (0.0, 100.0)
    knob_integer: ClassVar[bool] = True
    knob_increases_size: ClassVar[bool] = True
    knob_log: ClassVar[bool] = False
    encoder: ClassVar[str | None] = None  # the ffmpeg encoder needed, if any

    def __init__(self, points: list[float] | tuple[float, ...] | None = None, *,
                 tolerance: float = 0.02, max_encodes: int = 12) -> None:
        if self.encoder and self.encoder not in ffmpeg_encoders():
            raise CodecUnavailableError(
                f"codec {self.name!r} needs the ffmpeg encoder {self.encoder!r}, which this ffmpeg build "
                f"({ffmpeg_exe()}) lacks; install an imageio-ffmpeg build with it or choose another codec")
        points = list(DEFAULT_POINTS if points is None else points)
        if not points or not all(isinstance(p, (int, float)) and math.isfinite(p) and p > 0 for p in points):
            raise ValueError(f"points must be positive target rates in bpp, got {points!r}")
        self.points = [float(p) for p in points]
        self.tolerance = float(tolerance)
        self.max_encodes = int(max_encodes)
        self._sizes: dict[str, dict[float, int]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, points={self.points})"

    def cache_key(self) -> dict:
        """What decides this codec's output on a given image and point (for the RD cache).

        The codec's class, name and settings (not its points) and the encoder libraries'
        versions: any change to them gives a new key, so :class:`~proxiqa_lab.evaluation.RDCache`
        never reuses RD points across encoder builds or settings.
        """
        settings = {k: v for k, v in sorted(vars(self).items())
                    if not k.startswith("_") and k != "points" and not callable(v)}
        return {"codec": f"{type(self).__module__}.{type(self).__qualname__}", "name": self.name,
                "settings": settings, "engine": engine_version()}

    # -- to implement ---------------------------------------------------------------------
    def encode_quality(self, img: np.ndarray, quality: float) -> bytes:
        """Encode ``img`` with the knob set to ``quality``."""
        raise NotImplementedError

    def decode(self, data: bytes, point: float | None = None) -> np.ndarray:
        """Decode a bitstream to uint8 RGB (H, W, 3); ``point`` is not needed."""
        raise NotImplementedError

    # -- Codec protocol -------------------------------------------------------------------
    def encode(self, img: np.ndarray, point: float) -> bytes:
        """Encode ``img`` at the knob whose size is closest to ``point`` bpp (searched once, cached)."""
        img = check_image(img)
        return self.encode_quality(img, self.quality_for(img, point))

    def prepare(self, img: np.ndarray, points: list[float] | None = None) -> dict[float, float]:
        """Run the rate search for every point of ``img`` ahead of timed encodes: {point: knob}."""
        img = check_image(img)
        return {p: self.quality_for(img, p) for p in (self.points if points is None else points)}

    # -- rate search ----------------------------------------------------------------------
    def _check_quality(self, quality: float) -> float:
        lo, hi = self.knob_range
        if not (isinstance(quality, (int, float, np.integer, np.floating)) and lo <= quality <= hi):
            raise ValueError(f"{self.name} {self.knob} must be in [{lo}, {hi}], got {quality!r}")
        return int(quality) if self.knob_integer else float(quality)

    def size_at(self, img: np.ndarray, quality: float) -> int:
        """Size in bytes of ``img`` encoded at ``quality`` (cached per image)."""
        sizes = self._sizes.setdefault(image_key(img), {})
        quality = float(self._check_quality(quality))
        if quality not in sizes:
            sizes[quality] = len(self.encode_quality(img, quality))
        return sizes[quality]

    def quality_for(self, img: np.ndarray, target_bpp: float) -> float:
        """The knob value whose real output size is closest (in log rate) to ``target_bpp``."""
        img = check_image(img)
        if not (math.isfinite(target_bpp) and target_bpp > 0):
            raise ValueError(f"target rate must be a positive number of bpp, got {target_bpp!r}")
        npix = img.shape[0] * img.shape[1]
        target = target_bpp * npix / 8.0  # bytes
        sign = 1.0 if self.knob_increases_size else -1.0
        sizes = self._sizes.setdefault(image_key(img), {})

        def err(q: float) -> float:  # log size error, increasing in "sign * q"
            return math.log(self.size_at(img, q) / target)

        def scale(q: float) -> float:
            return math.log(q) if self.knob_log else q

        def unscale(s: float) -> float:
            return math.exp(s) if self.knob_log else s

        lo_q, hi_q = self.knob_range  # as knob values; "small"/"big" are in size order
        small, big = (lo_q, hi_q) if sign > 0 else (hi_q, lo_q)
        # Tightest bracket among cached sizes, else the knob's ends.
        below = [q for q, s in sizes.items() if s <= target]
        above = [q for q, s in sizes.items() if s > target]
        small = max(below, key=lambda q: sign * q) if below else small
        big = min(above, key=lambda q: sign * q) if above else big
        e_small, e_big = err(small), err(big)
        if e_small >= 0:  # even the smallest setting overshoots: closest is the smallest
            return self._check_quality(small)
        if e_big <= 0:
            return self._check_quality(big)
        for _ in range(self.max_encodes):
            if min(-e_small, e_big) <= self.tolerance:
                break
            # Interpolate log size linearly in the (scaled) knob, keeping away from the ends.
            a, b = scale(small), scale(big)
            t = min(max(-e_small / (e_big - e_small), 0.1), 0.9)
            q = unscale(a + t * (b - a))
            if self.knob_integer:
                low, high = sorted((small, big))
                if high - low <= 1:
                    break
                q = min(max(round(q), low + 1), high - 1)
            elif abs(b - a) < 1e-6:
                break
            e = err(q)
            if e <= 0:
                small, e_small = q, e
            else:
                big, e_big = q, e
        best = small if -e_small <= e_big else big
        return self._check_quality(best)


class JPEG(ClassicalCodec):
    """JPEG, YCbCr 4:4:4 as in the paper, through Pillow/libjpeg.

    ``Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling=0, optimize=False)``,
    q in [1, 100]; baseline, standard Huffman tables. Size: the whole JFIF file. Decoded with
    Pillow (JFIF YCbCr to RGB).
    """

    name = "jpeg"
    knob_range = (1, 100)

    def encode_quality(self, img: np.ndarray, quality: float) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(check_image(img)).save(buf, "JPEG", quality=int(self._check_quality(quality)),
                                               subsampling=0, optimize=False)
        return buf.getvalue()

    def decode(self, data: bytes, point: float | None = None) -> np.ndarray:
        return _pillow_decode(data, "JPEG")


class JPEG2000(ClassicalCodec):
    """JPEG 2000 through Pillow/OpenJPEG: irreversible 9/7 wavelet, ICT (YCbCr 4:4:4), one layer.

    ``Image.fromarray(img).save(buf, "JPEG2000", quality_mode="rates", quality_layers=[r],
    irreversible=True, mct=1, no_jp2=True)``, r the compression ratio against 24 bpp, searched
    in [1.5, 2000] (log scale). Size: the raw J2K codestream (no JP2 boxes). ffmpeg's libopenjpeg
    wrapper is not used because it only takes integer ratios and no colour-transform switch.
    """

    name = "jpeg2000"
    knob = "ratio"
    knob_range = (1.5, 2000.0)
    knob_integer = False
    knob_increases_size = False
    knob_log = True

    def encode_quality(self, img: np.ndarray, quality: float) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(check_image(img)).save(buf, "JPEG2000", quality_mode="rates",
                                               quality_layers=[float(self._check_quality(quality))],
                                               irreversible=True, mct=1, no_jp2=True)
        return buf.getvalue()

    def decode(self, data: bytes, point: float | None = None) -> np.ndarray:
        return _pillow_decode(data, "JPEG2000")


def _pillow_decode(data: bytes, fmt: str) -> np.ndarray:
    from PIL import Image

    if not isinstance(data, (bytes, bytearray)) or not data:
        raise BitstreamError(f"expected a non-empty {fmt} bitstream (bytes), got {type(data).__name__}")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise BitstreamError(f"cannot decode this {fmt} bitstream ({len(data)} bytes): {err}; "
                             "it is truncated, corrupt or not a " + fmt + " stream") from err


class FFmpegCodec(ClassicalCodec):
    """A codec run through ffmpeg: rgb24 on stdin, the bitstream written to a private temp file.

    Encode: ``ffmpeg -f rawvideo -pix_fmt rgb24 -s WxH -i pipe:0 -frames:v 1 -c:v ENCODER
    -pix_fmt PIXFMT <encoder args> -f MUXER out``. Decode: ``ffmpeg -err_detect explode -xerror
    -f DEMUXER -i in -frames:v 1 -pix_fmt rgb24 -c:v ppm -f image2pipe pipe:1``.
    """

    pix_fmt: ClassVar[str] = "yuv444p"
    muxer: ClassVar[str] = ""
    demuxer: ClassVar[str] = ""
    suffix: ClassVar[str] = ".bin"
    err_detect: ClassVar[str] = "explode"

    def encoder_args(self, quality: float) -> list[str]:
        raise NotImplementedError

    def encode_quality(self, img: np.ndarray, quality: float) -> bytes:
        img = check_image(img)
        h, w = img.shape[:2]
        if self.pix_fmt.startswith("yuv420") and (h % 2 or w % 2):
            raise ImageError(f"{self.name} codes 4:2:0 and needs even width and height, got {w}x{h}; "
                             "crop the image by one pixel")
        with tempfile.TemporaryDirectory(prefix="proxiqa-") as tmp:
            out = Path(tmp) / f"out{self.suffix}"
            args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "pipe:0",
                    "-frames:v", "1", "-c:v", str(self.encoder), "-pix_fmt", self.pix_fmt,
                    *self.encoder_args(self._check_quality(quality)), "-f", self.muxer, str(out)]
            _run_ffmpeg(args, img.tobytes(), f"{self.name} encode", CodecUnavailableError)
            return out.read_bytes()

    def decode(self, data: bytes, point: float | None = None) -> np.ndarray:
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise BitstreamError(f"expected a non-empty {self.name} bitstream (bytes), got {type(data).__name__}")
        with tempfile.TemporaryDirectory(prefix="proxiqa-") as tmp:
            inp = Path(tmp) / f"in{self.suffix}"
            inp.write_bytes(bytes(data))
            args = ["-err_detect", self.err_detect, "-xerror", "-f", self.demuxer, "-i", str(inp),
                    "-frames:v", "1", "-pix_fmt", "rgb24", "-c:v", "ppm", "-f", "image2pipe", "pipe:1"]
            out = _run_ffmpeg(args, None, f"{self.name} decode of {len(data)} bytes", BitstreamError)
        try:
            return _parse_ppm(out)
        except BitstreamError as err:
            raise BitstreamError(f"cannot decode this {self.name} bitstream ({len(data)} bytes): {err}; "
                                 "it is truncated, corrupt or not written by this codec") from err


class HEVC(FFmpegCodec):
    """HEVC intra (one I frame) with libx265.

    ``-c:v libx265 -pix_fmt yuv444p|yuv420p -preset slow -x265-params
    crf=C:keyint=1:info=0:hash=2:log-level=error -f hevc``, C searched in [4, 51] as an integer
    (a single frame's size only changes at integer CRF steps; CRF 4 is far above 2 bpp).
    4:4:4 gives the Main 4:4:4 (RExt) profile, 4:2:0 the Main profile. ``info=0`` drops x265's
    version/settings SEI (about 2 kB no decoder needs); ``hash=2`` appends the decoded-picture
    CRC SEI (15 bytes). ffmpeg's HEVC decoder conceals a stream cut inside the slice data
    without any error, and it verifies only MD5 picture hashes, so the SEI serves as an
    end-of-picture marker: a stream that does not end with it is rejected as truncated.
    Size: the Annex-B stream.

    Args:
        chroma: "444" or "420".
        preset: x265 preset (default "slow"; on a single intra frame it costs little more than
            "medium").
        tune: x265 tuning, e.g. "psnr" (adds ``-tune psnr``: no adaptive quantization and no
            psycho-visual RD, closer to HM's objective-only decisions). Default: x265's own.
    """

    name = "hevc444"
    knob = "crf"
    knob_range = (4, 51)
    knob_increases_size = False
    encoder = "libx265"
    muxer = demuxer = "hevc"
    suffix = ".hevc"

    def __init__(self, points=None, *, chroma: str = "444", preset: str = "slow", tune: str | None = None,
                 **kwargs) -> None:
        if chroma not in ("444", "420"):
            raise ValueError(f"chroma must be '444' or '420', got {chroma!r}")
        self.name = f"hevc{chroma}"
        self.pix_fmt = f"yuv{chroma}p"
        self.preset = preset
        self.tune = tune
        super().__init__(points, **kwargs)

    def encoder_args(self, quality: float) -> list[str]:
        params = f"crf={int(quality)}:keyint=1:info=0:hash=2:log-level=error"
        tune = ["-tune", self.tune] if self.tune else []
        return ["-preset", self.preset, *tune, "-x265-params", params]

    def decode(self, data: bytes, point: float | None = None) -> np.ndarray:
        if isinstance(data, (bytes, bytearray)) and data and not _ends_with_picture_hash(bytes(data)):
            raise BitstreamError(f"cannot decode this {self.name} bitstream ({len(data)} bytes): it does not "
                                 "end with the decoded-picture-hash SEI this codec writes, so it is truncated "
                                 "or was not written by this codec")
        return super().decode(data, point)


def _ends_with_picture_hash(data: bytes) -> bool:
    """Whether an HEVC Annex-B stream ends with a complete decoded-picture-hash suffix SEI."""
    i = data.rfind(b"\x00\x00\x01")
    nal = data[i + 3 :] if i >= 0 else b""
    if len(nal) < 5:
        return False
    is_suffix_sei = (nal[0] >> 1) & 0x3F == 40
    return is_suffix_sei and nal[2] == 132 and len(nal) >= 2 + 2 + nal[3] + 1


class AV1(FFmpegCodec):
    """AV1 still picture with libaom.

    ``-c:v libaom-av1 -usage allintra -still-picture 1 -cpu-used 6 -pix_fmt yuv444p -crf Q
    -b:v 0 -f obu``, Q (integer) searched in [0, 63]; 4:4:4 is AV1's High profile. Size: the
    low-overhead OBU stream (as in an AVIF item, without the AVIF boxes). ``cpu_used=6`` keeps
    the per-image rate search affordable on a small CPU; lower values give slightly smaller
    files for much more time.
    """

    name = "av1"
    knob = "crf"
    knob_range = (0, 63)
    knob_increases_size = False
    encoder = "libaom-av1"
    muxer = demuxer = "obu"
    suffix = ".obu"

    def __init__(self, points=None, *, chroma: str = "444", cpu_used: int = 6, **kwargs) -> None:
        if chroma not in ("444", "420"):
            raise ValueError(f"chroma must be '444' or '420', got {chroma!r}")
        self.pix_fmt = f"yuv{chroma}p"
        self.cpu_used = int(cpu_used)
        super().__init__(points, **kwargs)

    def encoder_args(self, quality: float) -> list[str]:
        return ["-usage", "allintra", "-still-picture", "1", "-cpu-used", str(self.cpu_used),
                "-crf", str(int(quality)), "-b:v", "0"]


class VVC(FFmpegCodec):
    """VVC intra with libvvenc.

    ``-c:v libvvenc -pix_fmt yuv420p10le -preset faster -qp Q -f vvc``, Q (integer) searched
    in [4, 63]. This libvvenc build takes only ``yuv420p10le``, so VVC is 4:2:0 10-bit here.
    Encoder defaults are kept (perceptual QPA on). Size: the Annex-B stream. The ``faster``
    preset keeps the rate search affordable; slower presets give slightly smaller files for
    several times the time.
    """

    name = "vvc"
    knob = "qp"
    knob_range = (4, 63)
    knob_increases_size = False
    encoder = "libvvenc"
    pix_fmt = "yuv420p10le"
    muxer = demuxer = "vvc"
    suffix = ".266"

    def __init__(self, points=None, *, preset: str = "faster", **kwargs) -> None:
        self.preset = preset
        super().__init__(points, **kwargs)

    def encoder_args(self, quality: float) -> list[str]:
        return ["-preset", self.preset, "-qp", str(int(quality))]


class WebP(FFmpegCodec):
    """Lossy WebP with libwebp (VP8 intra, always 4:2:0).

    ``-c:v libwebp -pix_fmt yuv420p -quality Q -f webp``, Q (float) searched in [0, 100].
    Size: the RIFF WebP file.
    """

    name = "webp"
    knob_range = (0.0, 100.0)
    knob_integer = False
    encoder = "libwebp"
    pix_fmt = "yuv420p"
    muxer = "webp"
    demuxer = "webp_pipe"
    suffix = ".webp"

    def encoder_args(self, quality: float) -> list[str]:
        return ["-quality", f"{quality:.3f}"]


class JPEGXL(FFmpegCodec):
    """JPEG XL with libjxl (lossy VarDCT, XYB).

    ``-c:v libjxl -pix_fmt rgb24 -effort 7 -distance D -f image2pipe``, D (Butteraugli distance,
    float) searched in [0.05, 15] (libjxl's limit) on a log scale. Size: the naked JPEG XL codestream.
    """

    name = "jxl"
    knob = "distance"
    knob_range = (0.05, 15.0)
    knob_integer = False
    knob_increases_size = False
    knob_log = True
    encoder = "libjxl"
    pix_fmt = "rgb24"
    muxer = "image2pipe"
    demuxer = "jpegxl_pipe"
    suffix = ".jxl"

    def __init__(self, points=None, *, effort: int = 7, **kwargs) -> None:
        self.effort = int(effort)
        super().__init__(points, **kwargs)

    def encoder_args(self, quality: float) -> list[str]:
        return ["-effort", str(self.effort), "-distance", f"{quality:.4f}"]


def _hevc420(points=None, **options) -> HEVC:
    return HEVC(points, chroma="420", **options)


#: Registry: codec name -> constructor taking ``points`` and codec options.
CODECS: dict[str, Callable[..., ClassicalCodec]] = {
    "jpeg": JPEG,
    "jpeg2000": JPEG2000,
    "hevc444": HEVC,
    "hevc420": _hevc420,
    "av1": AV1,
    "vvc": VVC,
    "webp": WebP,
    "jxl": JPEGXL,
}


def get_codec(name: str, **options) -> ClassicalCodec:
    """Build a classical codec by name.

    Args:
        name: one of :data:`CODECS` ("jpeg", "jpeg2000", "hevc444", "hevc420", "av1", "vvc",
            "webp", "jxl").
        **options: ``points`` (target bpps), ``tolerance``, ``max_encodes`` and the codec's own
            options (e.g. ``preset`` for HEVC/VVC, ``cpu_used`` for AV1, ``effort`` for JPEG XL).

    Returns:
        The codec, following the Codec protocol.
    """
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}")
    return CODECS[name](**options)
