"""Random Encoder (baseline): forget embeddings pushed toward random features.

Like ours it trains the encoder only and keeps retain embeddings where they were, but the forget
target is Gaussian noise with the mean and standard deviation of the original encoder's features
of the forget batch, instead of the original encoder's embedding of a noise image. The target
carries no structure the decoder knows how to draw, so outputs degrade less predictably.
Unlike the official VQ-GAN code, the forget term carries its weight (it is not zeroed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unlearn_core.methods.common import teacher_retain

TITLE = "Random Encoder (baseline)"
TRAINS = "encoder"
DEFAULT_ALPHA = 1.0
TEACHER_RETAIN = True


def loss(student, teacher, batch, alpha: float):
    target_retain = teacher_retain(teacher, batch)
    with torch.no_grad():
        feats = teacher.encode(batch.forget, batch.forget_mask, seed=batch.seed)
        g = torch.Generator(device=feats.device).manual_seed(int(batch.seed))
        target_forget = torch.randn(feats.shape, generator=g, device=feats.device, dtype=feats.dtype) * feats.std() + feats.mean()
    e_retain, e_forget = student.encode_pair((batch.retain, batch.retain_mask), (batch.forget, batch.forget_mask), seed=batch.seed)
    retain = F.mse_loss(e_retain, target_retain)
    forget = F.mse_loss(e_forget, target_forget)
    return retain + alpha * forget, {"retain": retain, "forget": forget}
