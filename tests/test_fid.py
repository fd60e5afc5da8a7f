"""FID and embedding cosine on known cases, with the offline Inception network."""

import numpy as np
import pytest
import scipy.linalg
import torch

from unlearn_core.measure import fid


def _scipy_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    """The textbook formula with a full matrix square root, as pytorch-fid computes it."""
    a, b = a.numpy(), b.numpy()
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


@pytest.mark.parametrize("n, m", [(30, 20), (300, 250)])  # fewer and more images than dimensions
def test_frechet_distance_equals_the_matrix_square_root_formula(n, m):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, 40, generator=g, dtype=torch.float64)
    b = torch.randn(m, 40, generator=g, dtype=torch.float64) * 1.5 + 0.3
    assert fid.frechet_distance(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-6)
    assert fid.frechet_distance(a, a) == pytest.approx(0, abs=1e-8)


@pytest.fixture(scope="module")
def net():
    return fid.inception("cpu")


@pytest.mark.slow
def test_fid_of_images(net, cats_dogs):
    cats, dogs = (s.test[:24] for s in cats_dogs)
    same = fid.image_metrics(cats, cats, net)
    assert same["fid"] == pytest.approx(0, abs=1e-2) and same["embed_cos"] == pytest.approx(1, abs=1e-6)
    shifted = fid.image_metrics((cats + 0.3).clamp(0, 1), cats, net)
    blurred = fid.image_metrics(torch.nn.functional.avg_pool2d(cats, 3, 1, 1), cats, net)
    other = fid.image_metrics(dogs, cats, net)
    for m in (shifted, blurred, other):
        assert m["fid"] > 1 and m["embed_cos"] < 1
    # an image is closer to itself blurred than a dog is to a cat, on average
    assert blurred["embed_cos"] > fid.embed_cos(net.features(dogs), net.features(cats))
    # grey and the same grey in three channels are one image to the network
    assert torch.allclose(net.features(cats[:4]), net.features(cats[:4].repeat(1, 3, 1, 1)))


def test_fid_needs_two_images():
    with pytest.raises(Exception, match="at least two"):
        fid.frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
