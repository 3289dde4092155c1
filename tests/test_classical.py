"""Classical codecs: round trips, rate control on real sizes, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from proxiqa_lab import classical
from proxiqa_lab.classical import CODECS, DEFAULT_POINTS, CodecUnavailableError, bits_per_pixel, get_codec
from proxiqa_lab.errors import BitstreamError, ImageError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


@pytest.fixture
def crop(photo) -> np.ndarray:
    """A 96x128 crop of the astronaut photo (face and background)."""
    return np.ascontiguousarray(photo[40:136, 160:288])


def knob(codec, where: float) -> float:
    """A knob value at fraction ``where`` of the way from smallest to largest files."""
    lo, hi = codec.knob_range
    t = where if codec.knob_increases_size else 1 - where
    q = math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))) if codec.knob_log else lo + t * (hi - lo)
    return round(q) if codec.knob_integer else q


def test_default_points_are_the_papers_range():
    assert len(DEFAULT_POINTS) == 8
    assert DEFAULT_POINTS[0] == 0.05 and DEFAULT_POINTS[-1] == 2.0
    assert np.allclose(np.diff(np.log(DEFAULT_POINTS)), np.log(40) / 7, rtol=1e-3)


@pytest.mark.parametrize("name", list(CODECS))
def test_round_trip(name, crop):
    codec = get_codec(name)
    assert codec.name == name and codec.points == list(DEFAULT_POINTS)
    high = codec.encode_quality(crop, knob(codec, 0.85))
    low = codec.encode_quality(crop, knob(codec, 0.2))
    assert isinstance(high, bytes) and 0 < len(low) < len(high)
    rec = codec.decode(high)
    assert rec.shape == crop.shape and rec.dtype == np.uint8
    assert psnr(crop, rec) > 30, f"{name} at high quality only reaches {psnr(crop, rec):.1f} dB"
    assert psnr(crop, codec.decode(low)) < psnr(crop, rec)


@pytest.mark.parametrize("name", list(CODECS))
def test_truncated_or_garbage_bitstream_is_a_clear_error(name, photo):
    codec = get_codec(name)
    data = codec.encode_quality(np.ascontiguousarray(photo[:256, :256]), knob(codec, 0.5))
    for bad in (data[: len(data) // 2], data[: int(len(data) * 0.95)], b"\x00garbage" * 20):
        with pytest.raises(BitstreamError, match=f"(?i){name}|truncated|corrupt"):
            codec.decode(bad)
    with pytest.raises(BitstreamError, match="non-empty"):
        codec.decode(b"")


def test_encode_hits_closest_size_jpeg(crop):
    """The search finds (nearly) the best knob: compare with all 100 JPEG qualities."""
    codec = get_codec("jpeg", points=[0.5, 1.0, 2.0])
    sizes = np.array([len(codec.encode_quality(crop, q)) for q in range(1, 101)])
    for point in codec.points:
        target = point * crop.shape[0] * crop.shape[1] / 8
        best = np.min(np.abs(np.log(sizes / target)))
        got = abs(math.log(len(codec.encode(crop, point)) / target))
        assert got <= best + 0.02, (point, got, best)


@pytest.mark.parametrize(("name", "tolerance"), [("jpeg2000", 0.03), ("hevc444", 0.15)])
def test_quality_sweep_hits_targets_on_a_real_image(name, tolerance, photo):
    img = np.ascontiguousarray(photo[:256, :256])
    codec = get_codec(name, points=[0.1, 0.3, 1.0, 2.0])
    chosen = codec.prepare(img)
    for point, quality in chosen.items():
        achieved = bits_per_pixel(codec.encode_quality(img, quality), img)
        assert abs(math.log(achieved / point)) < tolerance, (point, quality, achieved)
    # encode() re-runs the encoder at the chosen knob: same stream as the search measured.
    assert codec.encode(img, 1.0) == codec.encode_quality(img, chosen[1.0])


def test_unreachable_target_gives_the_nearest_extreme(crop):
    codec = get_codec("jpeg")
    assert codec.quality_for(crop, 0.001) == 1
    assert codec.quality_for(crop, 100.0) == 100


def test_unknown_codec_lists_names():
    with pytest.raises(ValueError, match="jpeg, jpeg2000, hevc444, hevc420, av1, vvc, webp, jxl"):
        get_codec("bpg")


def test_missing_encoder_is_reported_at_construction(monkeypatch):
    monkeypatch.setattr(classical, "ffmpeg_encoders", lambda: frozenset())
    with pytest.raises(CodecUnavailableError, match="libx265"):
        get_codec("hevc444")


@pytest.mark.parametrize("bad", [np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), np.uint8),
                                 np.zeros((4, 4, 3), np.uint8), "image.png"])
def test_bad_images_are_rejected(bad):
    with pytest.raises(ImageError):
        get_codec("jpeg").encode(bad, 1.0)


def test_odd_size_for_420_is_rejected(crop):
    with pytest.raises(ImageError, match="even width and height"):
        get_codec("hevc420").encode_quality(crop[:95], 30)


@pytest.mark.parametrize("points", [[], [0.0, 1.0], [-1.0], [float("nan")]])
def test_bad_points_are_rejected(points):
    with pytest.raises(ValueError, match="positive target rates"):
        get_codec("jpeg", points=points)


def test_bad_knob_value(crop):
    with pytest.raises(ValueError, match=r"quality must be in \[1, 100\]"):
        get_codec("jpeg").encode_quality(crop, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CODECS))
def test_every_codec_lands_the_papers_rate_points(name, photo):
    """All 8 targets in 0.05-2 bpp on a 512x512 photo: hit within 15%, or the knob is at its end."""
    codec = get_codec(name)
    for point, quality in codec.prepare(photo).items():
        achieved = bits_per_pixel(codec.encode_quality(photo, quality), photo)
        at_end = quality in codec.knob_range
        assert abs(math.log(achieved / point)) < 0.15 or at_end, (point, quality, achieved)
