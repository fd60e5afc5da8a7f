"""Max Loss (baseline): gradient ascent on the forget set, descent on the retain set.

Trains the whole model: L = L_model(x_r) - alpha * L_model(x_f), with L_model the family's own
training objective (MAE: pixel MSE on hidden patches; VQ-GAN: masked-token cross-entropy;
diffusion: noise-prediction MSE). Unbounded below: it destroys forget outputs, and the whole
model drifts with them, which is what the paper shows it doing to the retain set.
"""

from __future__ import annotations

TITLE = "Max Loss (baseline)"
TRAINS = "all"
DEFAULT_ALPHA = 0.2
TOTAL = "retain − α·forget"


def loss(student, teacher, batch, alpha: float):
    retain = student.training_loss(batch.retain, batch.retain_mask, seed=batch.seed)
    forget = student.training_loss(batch.forget, batch.forget_mask, seed=batch.seed)
    return retain - alpha * forget, {"retain": retain, "forget": forget}
