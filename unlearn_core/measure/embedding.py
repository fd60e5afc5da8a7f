"""The embedding view (the paper's t-SNE figure): where the encoder puts forget images, retain
images and noise, before and after unlearning.

Each point is one held-out image's encoder embedding E(T(x)) (flattened), or the forget target
E_theta0(T(n)) of a noise image. The projection to 2-D is a PCA fitted on the original model's
points and applied unchanged to the unlearned model's, so both panels share their axes and a
point that moves between them moved in the embedding (t-SNE would lay each panel out anew).
What to look for: before, forget and retain images form their own clouds away from the noise
targets; after, the forget cloud sits on the noise targets while the retain cloud stays put.
"""

from __future__ import annotations

import torch
from PIL import Image

from unlearn_core.data.masks import MaskSpec
from unlearn_core.measure.metrics import eval_mask, eval_noise
from unlearn_core.measure.plots import PALETTE, Series, scatter
from unlearn_core.measure.viz import side_by_side

GROUPS = {"forget images": PALETTE[1], "retain images": PALETTE[0], "noise (forget target)": (120, 120, 120)}


@torch.no_grad()
def embeddings(model, original, forget: torch.Tensor, retain: torch.Tensor, mask: MaskSpec, seed: int = 0) -> dict[str, torch.Tensor]:
    """{group: (N, D)} flattened embeddings of `model`; the noise group is the original's target."""
    device = next(model.parameters()).device
    out = {}
    for name, x in (("forget images", forget), ("retain images", retain)):
        m = eval_mask(model, mask, len(x), seed).to(device)
        out[name] = model.encode(x.to(device), m, seed=seed).flatten(1).float().cpu()
    m = eval_mask(model, mask, len(forget), seed).to(device)
    noise = eval_noise(forget, seed + 1).to(device)
    out["noise (forget target)"] = original.encode_noise(forget.to(device), noise, m, seed=seed).flatten(1).float().cpu()
    return out


def pca_basis(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (D,), components (D, 2)) of the first two principal axes; signs fixed so that the
    largest loading of each axis is positive (the same data always gives the same picture)."""
    mean = points.mean(0)
    _, _, v = torch.linalg.svd(points - mean, full_matrices=False)
    comps = v[:2].T.clone()
    for j in range(comps.shape[1]):
        if comps[comps[:, j].abs().argmax(), j] < 0:
            comps[:, j] = -comps[:, j]
    return mean, comps


def embedding_view(
    original, unlearned, forget: torch.Tensor, retain: torch.Tensor, mask: MaskSpec, seed: int = 0, per_group: int = 100
) -> Image.Image:
    """Two scatter panels, original and unlearned, on the same PCA axes."""
    forget, retain = forget[:per_group], retain[:per_group]
    before = embeddings(original, original, forget, retain, mask, seed)
    after = embeddings(unlearned, original, forget, retain, mask, seed)
    mean, comps = pca_basis(torch.cat(list(before.values())))
    projected = [{k: ((v - mean) @ comps) for k, v in e.items()} for e in (before, after)]
    everything = torch.cat([p for e in projected for p in e.values()])
    lo, hi = everything.min(0).values, everything.max(0).values
    pad = (hi - lo) * 0.06 + 1e-6
    limits = (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))
    panels = []
    for title, e in zip(("original model", "unlearned model"), projected, strict=True):
        series = [Series(k, [tuple(map(float, p)) for p in v], GROUPS[k], radius=3) for k, v in e.items()]
        panels.append(scatter(series, f"Encoder embeddings, {title}", "PC 1", "PC 2", size=(520, 400), limits=limits))
    return side_by_side(panels)
