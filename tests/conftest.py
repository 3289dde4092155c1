"""Shared test fixtures. Tests use the smallest data that proves the point."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def photo() -> np.ndarray:
    """A natural RGB photo (scikit-image's astronaut), uint8 512x512x3."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: tiny networks only lose time to thread hand-offs on a busy CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
