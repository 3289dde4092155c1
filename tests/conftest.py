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
