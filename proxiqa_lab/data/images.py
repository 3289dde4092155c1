"""Image I/O: every image the kit handles is uint8 RGB, shape (H, W, 3).

:func:`load_image` converts other layouts and warns with :class:`ImageConversionWarning`:

- gray (8-bit) -> RGB by repeating the channel;
- 16-bit (gray, RGB or RGBA; PNG, TIFF, PPM) -> 8-bit with rounding, ``round(v / 257)``;
- palette -> RGB through the palette;
- alpha (RGBA, LA, palette with transparency) -> composited over a white background,
  ``rgb * a + 255 * (1 - a)``, so transparent areas look as a viewer shows them;
- an EXIF orientation (phone photos) -> applied, so the image is upright as a viewer shows it;
- an animation (GIF, WebP, APNG) or a multi-page TIFF -> its first frame.

A file that declares more pixels than Pillow's decompression-bomb limit (twice
``PIL.Image.MAX_IMAGE_PIXELS``, about 179 million) is refused with an :class:`ImageError`.

Pillow reads 16-bit RGB(A) images by dropping the low byte (truncation, not rounding), so
those are decoded through the kit's ffmpeg (``imageio_ffmpeg``) at full precision instead.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from proxiqa_lab.errors import ImageError, describe_os_error
from proxiqa_lab.fileio import atomic_open

if TYPE_CHECKING:  # torch is imported on use, so the data CLI starts fast
    import torch

__all__ = [
    "ImageConversionWarning",
    "load_image",
    "sample_images",
    "save_image",
    "to_tensor",
    "to_uint8",
    "SAMPLE_IMAGES_LABEL",
]

#: How :func:`sample_images` data must be labelled wherever it is shown.
SAMPLE_IMAGES_LABEL = "scikit-image sample photos (fallback, not Kodak)"
_SAMPLE_NAMES = ("astronaut", "coffee", "chelsea", "rocket")


class ImageConversionWarning(UserWarning):
    """An image was not 8-bit RGB and was converted; the message says how."""


def _warn(path: Path, what: str) -> None:
    warnings.warn(f"{path}: {what}", ImageConversionWarning, stacklevel=3)


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray, max_value: float) -> np.ndarray:
    """``rgb * a + max * (1 - a)`` in float64, with ``a = alpha / max``."""
    a = alpha.astype(np.float64)[..., None] / max_value
    return rgb.astype(np.float64) * a + max_value * (1.0 - a)


def _to_8bit(values: np.ndarray, max_value: float) -> np.ndarray:
    """Scale ``[0, max_value]`` to ``[0, 255]`` with rounding."""
    return np.clip(np.rint(np.asarray(values, np.float64) * (255.0 / max_value)), 0, 255).astype(np.uint8)


def _decode_16bit(path: Path, has_alpha: bool, size: tuple[int, int]) -> np.ndarray:
    """Decode a 16-bit image at full precision with the kit's ffmpeg (rgb48le / rgba64le)."""
    import imageio_ffmpeg

    pix_fmt, channels = ("rgba64le", 4) if has_alpha else ("rgb48le", 3)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
           "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]
    result = subprocess.run(cmd, capture_output=True, check=False)
    w, h = size
    expected = w * h * channels * 2
    if result.returncode != 0 or len(result.stdout) != expected:
        reason = result.stderr.decode(errors="replace").strip() or "short output"
        raise ImageError(f"cannot decode 16-bit image {path}: {reason}")
    return np.frombuffer(result.stdout, dtype="<u2").reshape(h, w, channels)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3).

    Args:
        path: an image file Pillow can read (PNG, JPEG, BMP, TIFF, PPM, WebP, ...).

    Returns:
        A C-contiguous uint8 array (H, W, 3).

    Raises:
        ImageError: the file is missing or not a file, is not an image, is truncated/corrupt, or
            declares more pixels than Pillow's decompression-bomb limit.

    Warns:
        ImageConversionWarning: for gray, 16-bit, palette or alpha images, and for animations and
            multi-page files, of which the first frame is used (see module doc).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_readable(path)
    try:
        with Image.open(path) as src:
            args = src.tile[0].args if src.tile else None  # e.g. "RGB;16B"; cleared by load()
            rawmode = args[0] if isinstance(args, tuple) and args else args
            src.load()
            mode, size = src.mode, src.size
            orientation = src.getexif().get(0x0112, 1)
            sixteen_bit = isinstance(rawmode, str) and "16" in rawmode
            # Pillow truncated 16-bit RGB(A) to 8 bits: decode it again at 16 bits (im None).
            im = None if mode in ("RGB", "RGBA", "LA") and sixteen_bit else src.copy()
            frames = _frame_count(src)
    except Image.DecompressionBombError as err:
        raise ImageError(_too_large(path, err)) from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{path} is not an image file Pillow can read ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"cannot read image {path}: it is truncated or corrupt ({err})") from err
    if frames != 1:
        _warn(path, f"has {frames or 'several'} frames (an animation or pages); only the first is used")

    return _orient(path, _pixels(path, im, mode, size), orientation)


def _check_readable(path: Path) -> None:
    """Refuse, with the reason, a path that is not a file: missing, a folder, a symlink loop, ..."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path}") from None
    except OSError as err:
        raise ImageError(f"cannot read image {path}: {describe_os_error(err)}") from err
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"image file not found: {path} (it is a folder)")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path} is not a regular file (a device, pipe or socket); give an image file")


def _frame_count(im) -> int | None:
    """Frames (or pages) of an opened image; None when a later one is damaged. An MPO (a phone JPEG)
    keeps previews as further frames: it counts as one."""
    if im.format == "MPO":
        return 1
    try:
        return int(getattr(im, "n_frames", 1))
    except (OSError, SyntaxError, ValueError, EOFError):
        return None


def _too_large(path: Path, err: Exception) -> str:
    """The message for an image past Pillow's decompression-bomb limit (a tiny file can declare 10^10 pixels)."""
    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", str(err))
    declared = f" ({int(found.group(1)):,} pixels)" if found else ""
    return (f"image {path} is too large{declared}: load_image reads at most {2 * Image.MAX_IMAGE_PIXELS:,} "
            f"pixels; crop or downscale it first")


#: EXIF orientation (tag 274) -> what makes the stored pixels upright, as numpy operations.
_ORIENTATIONS = {
    2: ("mirrored left-right", lambda a: a[:, ::-1]),
    3: ("rotated by 180°", lambda a: a[::-1, ::-1]),
    4: ("mirrored top-bottom", lambda a: a[::-1]),
    5: ("transposed", lambda a: a.transpose(1, 0, 2)),
    6: ("rotated by 90° clockwise", lambda a: np.rot90(a, -1)),
    7: ("transversed", lambda a: np.rot90(a, 2).transpose(1, 0, 2)),
    8: ("rotated by 90° counter-clockwise", lambda a: np.rot90(a, 1)),
}


def _orient(path: Path, img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation, as a viewer shows the photo, with a warning."""
    if orientation in _ORIENTATIONS:
        what, op = _ORIENTATIONS[orientation]
        _warn(path, f"{what} as its EXIF orientation ({orientation}) says, so it is upright as a viewer shows it")
        return np.ascontiguousarray(op(img))
    return img


def _pixels(path: Path, im, mode: str, size: tuple[int, int]) -> np.ndarray:
    """The stored pixels of an opened image as uint8 RGB (see the module docstring)."""
    if im is None:  # 16-bit RGB(A) or gray+alpha
        data = _decode_16bit(path, has_alpha=mode in ("RGBA", "LA"), size=size)
        if data.shape[2] == 4:
            _warn(path, f"16-bit {mode} image composited on white and rounded to 8 bits (v / 257)")
            return _to_8bit(_composite_on_white(data[..., :3], data[..., 3], 65535), 65535)
        _warn(path, f"16-bit {mode} image rounded to 8 bits (v / 257)")
        return np.ascontiguousarray(_to_8bit(data, 65535))

    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    if mode == "P":
        has_alpha = "transparency" in im.info or im.palette.mode == "RGBA"
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = "RGBA" if has_alpha else "RGB"
        if not has_alpha:
            _warn(path, "palette image expanded to RGB")
            return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
        _warn(path, "palette image with transparency expanded to RGB and composited on white")
        arr = np.asarray(im)
        return _to_8bit(_composite_on_white(arr[..., :3], arr[..., 3], 255), 255)
    if mode == "L":
        _warn(path, "8-bit gray image repeated to 3 RGB channels")
        return np.ascontiguousarray(np.repeat(np.asarray(im)[..., None], 3, axis=2))
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im).astype(np.int64)
        max_value = 65535
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageError(f"{path}: {mode} image with values outside [0, 65535] is not supported")
        _warn(path, f"16-bit gray image ({mode}) rounded to 8 bits (v / 257) and repeated to RGB")
        return np.ascontiguousarray(np.repeat(_to_8bit(arr, max_value)[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        arr = np.asarray(im.convert("RGBA"))
        _warn(path, f"{mode} image composited on a white background (alpha removed)")
        return _to_8bit(_composite_on_white(arr[..., :3], arr[..., 3], 255), 255)
    if mode == "1":
        _warn(path, "1-bit image expanded to RGB")
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        _warn(path, f"{mode} image converted to RGB by Pillow")
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    raise ImageError(
        f"{path}: image mode {mode!r} is not supported; allowed: 8-bit RGB, gray, palette, "
        "RGBA/LA, 16-bit gray/RGB(A). Convert it to an 8-bit RGB PNG first."
    )


def _check_uint8_rgb(img: np.ndarray, what: str) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(
            f"{what} must be a uint8 array of shape (H, W, 3), got dtype {img.dtype} and shape "
            f"{img.shape}; use load_image() or to_uint8() to get one"
        )
    return img


def save_image(img: np.ndarray, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a uint8 RGB image as PNG, atomically (temp file, then rename).

    Args:
        img: uint8 array (H, W, 3).
        path: destination; a ``.png`` suffix is required.
        overwrite: replace an existing file (default: refuse).

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ImageError: ``img`` is not uint8 (H, W, 3) or the suffix is not ``.png``.
    """
    from PIL import Image

    img = _check_uint8_rgb(img, "image to save")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ImageError(f"save_image writes PNG only; give a path ending in .png, got {path}")
    if path.is_dir():
        raise ImageError(f"{path} is a folder; give the path of the PNG file to write")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; refusing to overwrite it (pass overwrite=True to replace it)"
        )
    with atomic_open(path, "wb") as f:
        Image.fromarray(np.ascontiguousarray(img)).save(f, format="PNG")
    return path


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (N, H, W, 3) -> float32 tensor (N, 3, H, W) in [0, 1]."""
    import torch

    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ImageError(
            f"to_tensor expects uint8 (H, W, 3) or (N, H, W, 3), got dtype {arr.dtype} and shape {arr.shape}"
        )
    if arr.ndim == 3:
        arr = arr[None]
    if not arr.flags.writeable:  # torch.from_numpy warns on read-only memory
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float tensor (N, 3, H, W) or (3, H, W) in [0, 1] -> uint8 (N, H, W, 3), rounded and clamped."""
    import torch

    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or x.shape[-3] != 3:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ImageError(f"to_uint8 expects a tensor (N, 3, H, W) or (3, H, W), got {shape}")
    if x.ndim == 3:
        x = x[None]
    y = x.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def sample_images() -> dict[str, np.ndarray]:
    """Photos shipped with scikit-image (no download): a fallback when Kodak is not fetched.

    These are scikit-image sample photos (fallback, not Kodak): results on them are not
    comparable with the paper's Kodak numbers. Label them with :data:`SAMPLE_IMAGES_LABEL`.

    Returns:
        name -> uint8 RGB (H, W, 3), for "astronaut", "coffee", "chelsea" and "rocket".
    """
    from skimage import data

    return {name: np.ascontiguousarray(getattr(data, name)(), dtype=np.uint8) for name in _SAMPLE_NAMES}
