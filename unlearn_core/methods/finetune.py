"""FT (control): fine-tune the whole model on the retain set alone, with its own training objective.

Trains the whole model: L = L_model(x_r), the family's training objective (MAE: pixel MSE on hidden
patches; VQ-GAN: masked-token cross-entropy; diffusion: noise-prediction MSE) on the retain images,
for as many steps as any other method. The forget images take no part in training; their loss
L_model(x_f) is computed without gradients only to be watched (the plot's forget line), so one
sees whether training on the retain set alone moves the forget set. It is the standard control of
unlearning papers: what a method achieves beyond it is what its forget term does; and where FT
itself improves the retain metrics, the original was short of what its data allow.
"""

from __future__ import annotations

import torch

TITLE = "FT: fine-tune on the retain set (control)"
TRAINS = "all"
DEFAULT_ALPHA = 0.0  # no forget term; alpha is ignored
TOTAL = "retain (the forget term is only watched)"
# Its own training objective includes the masks: a fresh random mask every step, as the original's
# training drew them. Trained with the evaluation mask alone, FT specialises to that mask, lifting
# its retain score there while lowering it under others (docs/findings/fair-science.md).
TRAIN_MASK = "random"


def loss(student, teacher, batch, alpha: float):
    retain = student.training_loss(batch.retain, batch.retain_mask, seed=batch.seed)
    with torch.no_grad():
        forget = student.training_loss(batch.forget, batch.forget_mask, seed=batch.seed)
    return retain, {"retain": retain, "forget": forget}
