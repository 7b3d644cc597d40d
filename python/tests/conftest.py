import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def mixture():
    """A small Gaussian mixture: 3000 x 32 float32, 24 clusters."""
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((24, 32)).astype(np.float32) * 3
    labels = rng.integers(0, 24, 3000)
    x = centers[labels] + rng.standard_normal((3000, 32)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)
