"""Noisy Label (baseline): teach the model that forget inputs lead to noise.

Trains the whole model: L = L_model(x_r -> x_r) + alpha * L_model(x_f -> n), the family's
training objective with the forget images' ground truth replaced by the step's noise images n
(VQ-GAN: the noise's tokens, near-random codes; diffusion: the denoising target is n; MAE: n's
pixels).
"""

from __future__ import annotations

TITLE = "Noisy Label (baseline)"
TRAINS = "all"
DEFAULT_ALPHA = 1.0


def loss(student, teacher, batch, alpha: float):
    retain = student.training_loss(batch.retain, batch.retain_mask, seed=batch.seed)
    forget = student.training_loss(batch.forget, batch.forget_mask, batch.noise, seed=batch.seed)
    return retain + alpha * forget, {"retain": retain, "forget": forget}
