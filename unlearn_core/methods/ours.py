"""The paper's objective: match forget embeddings to the original encoder's embedding of noise.

Li et al., "Machine Unlearning for Image-to-Image Generative Models", ICLR 2024, Eq. (6):
    L(theta) = E ||E_theta(T(x_r)) - E_theta0(T(x_r))||^2 + alpha * E ||E_theta(T(x_f)) - E_theta0(T(n))||^2
Only E_theta is trained; E_theta0 is a frozen copy of the original encoder, and the decoder stays
fixed. The noise n goes through the same mask T as the forget image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unlearn_core.methods.common import teacher_targets

TITLE = "Ours (Li et al., ICLR 2024)"
TRAINS = "encoder"
# The official MAGE example uses 0.2, which MAE and VQ-GAN name as their own (`Defaults.alpha`: the
# best point of an alpha sweep under the paper's split, docs/findings/fair-science.md); a family
# that names none (diffusion) uses 1.
DEFAULT_ALPHA = 1.0
TEACHER_RETAIN = True


def loss(student, teacher, batch, alpha: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    target_retain, target_forget = teacher_targets(teacher, batch)
    e_retain, e_forget = student.encode_pair((batch.retain, batch.retain_mask), (batch.forget, batch.forget_mask), seed=batch.seed)
    retain = F.mse_loss(e_retain, target_retain)
    forget = F.mse_loss(e_forget, target_forget)
    return retain + alpha * forget, {"retain": retain, "forget": forget}
