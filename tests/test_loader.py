"""Training patch loader (paper Sec. III-D): shapes, range, pipeline, determinism, resume, errors."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from PIL import Image

from proxiqa_lab.data import PatchLoader, sample_images
from proxiqa_lab.errors import ImageError


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    return sample_images()


def test_batches_have_the_paper_shape_and_range(samples):
    loader = PatchLoader(samples, seed=0)
    for _ in range(3):
        x = next(loader)
        assert x.shape == (8, 3, 128, 128) and x.dtype == torch.float32 and x.is_contiguous()
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert loader.batches == 3
    assert x.std() > 0.05  # natural image content, not a constant


def test_paths_and_arrays_give_the_same_batches(samples, tmp_path):
    paths = []
    for name, img in samples.items():
        Image.fromarray(img).save(tmp_path / f"{name}.png", compress_level=0)
        paths.append(tmp_path / f"{name}.png")
    from_files = PatchLoader(paths, batch_size=4, seed=3)
    from_arrays = PatchLoader(list(samples.values()), batch_size=4, seed=3)
    for _ in range(2):
        torch.testing.assert_close(next(from_files), next(from_arrays), rtol=0, atol=0)


def test_without_noise_or_downsampling_a_patch_is_an_exact_crop(rng):
    img = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    loader = PatchLoader([img], batch_size=4, patch_size=16, crop_size=32, noise=False, downsample=(1, 1))
    windows = np.lib.stride_tricks.sliding_window_view(img, (16, 16, 3))[..., 0, :, :, :]
    for patch in (next(loader) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy():
        hits = np.argwhere((windows == patch).all(axis=(2, 3, 4)))
        assert len(hits) == 1


def test_noise_is_small_and_uniform(rng):
    img = np.full((64, 64, 3), 128, np.uint8)
    x = next(PatchLoader([img], batch_size=8, patch_size=32, crop_size=64, downsample=(1, 1)))
    err = (x * 255 - 128).numpy()
    assert np.abs(err).max() <= 0.5 + 1e-4
    assert abs(err.mean()) < 0.01 and abs(err.std() - (1 / 12) ** 0.5) < 0.01  # U(-0.5, 0.5)


def test_downsampling_is_antialiased():
    """A 1-pixel checkerboard averages to flat gray once downsampled by 2 (aliasing would keep it)."""
    yy, xx = np.mgrid[:256, :256]
    board = np.repeat((((yy + xx) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    full = next(PatchLoader([board], batch_size=2, patch_size=32, crop_size=64, noise=False, downsample=(1, 1)))
    half = next(PatchLoader([board], batch_size=2, patch_size=32, crop_size=64, noise=False, downsample=(2, 2)))
    assert full.std() > 0.45
    assert half.std() < 0.02 and abs(half.mean() - 0.5) < 0.01


def test_short_side_below_crop_size_uses_the_short_side(samples):
    chelsea = samples["chelsea"]  # 300 x 451
    x = next(PatchLoader([chelsea], batch_size=2, patch_size=256, crop_size=512))
    assert x.shape == (2, 3, 256, 256)


def test_same_seed_same_batches_other_seed_differs(samples):
    a, b, c = (PatchLoader(samples, seed=s) for s in (7, 7, 8))
    for _ in range(3):
        xa, xb, xc = next(a), next(b), next(c)
        assert torch.equal(xa, xb)
        assert not torch.equal(xa, xc)


def test_resume_yields_exactly_the_next_batches(samples):
    loader = PatchLoader(samples, seed=0)
    for _ in range(3):
        next(loader)
    buffer = io.BytesIO()
    torch.save({"loader": loader.state_dict()}, buffer)  # as a training checkpoint stores it
    expected = [next(loader) for _ in range(3)]

    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["loader"]
    resumed = PatchLoader(samples, seed=123)  # the seed comes from the state
    resumed.load_state_dict(state)
    assert resumed.batches == 3
    for x in expected:
        assert torch.equal(next(resumed), x)


def test_state_from_another_configuration_is_refused(samples):
    state = copy.deepcopy(PatchLoader(samples).state_dict())
    with pytest.raises(ValueError, match="other sources or settings"):
        PatchLoader(samples, patch_size=64).load_state_dict(state)
    with pytest.raises(ValueError, match="missing keys"):
        PatchLoader(samples).load_state_dict({"batches": 3})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"paths": []}, "at least one source image"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.5}, "batch_size must be an integer"),
        ({"patch_size": 100}, "multiple of 8.*got 100"),
        ({"patch_size": 128, "crop_size": 64}, "crop_size must be >= patch_size"),
        ({"downsample": (0.5, 2)}, "1 <= low <= high"),
        ({"downsample": (3, 2)}, "1 <= low <= high"),
        ({"paths": [np.zeros((100, 300, 3), np.uint8)]}, "smaller than patch_size=128.*300x100"),
        ({"paths": "image.png"}, "single str"),
        ({"prefetch": -1}, "prefetch must be an integer >= 0"),
    ],
)
def test_bad_parameters_raise_value_error(samples, kwargs, match):
    kwargs = {"paths": samples, **kwargs}
    with pytest.raises(ValueError, match=match):
        PatchLoader(**kwargs)


def test_bad_sources_raise_image_error(tmp_path):
    with pytest.raises(ImageError, match="uint8"):
        PatchLoader([np.zeros((256, 256, 3), np.float32)])
    with pytest.raises(ImageError, match="nope.png"):
        PatchLoader([tmp_path / "nope.png"])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match="text.png"):
        PatchLoader([tmp_path / "text.png"])


def test_prefetch_gives_the_same_batches_and_state(samples):
    plain = PatchLoader(samples, seed=5)
    ahead = PatchLoader(samples, seed=5, prefetch=3)
    for _ in range(4):
        assert torch.equal(next(plain), next(ahead))
    state = ahead.state_dict()  # the thread has made more batches than were handed out
    assert state == plain.state_dict()
    expected = [next(plain) for _ in range(2)]
    resumed = PatchLoader(samples, prefetch=2)
    resumed.load_state_dict(state)
    assert all(torch.equal(next(resumed), x) for x in expected)
    ahead.close()
    resumed.close()


def test_a_corrupt_source_raises_at_use_without_hanging(tmp_path, samples):
    Image.fromarray(samples["coffee"]).save(tmp_path / "ok.png", compress_level=0)
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])  # header fine, pixels truncated
    for prefetch in (0, 2):
        loader = PatchLoader([tmp_path / "cut.png"], batch_size=2, prefetch=prefetch)
        for _ in range(2):
            with pytest.raises(ImageError, match="cut.png"):
                next(loader)
        assert loader.batches == 0
