"""Is it really gone? Attacks on an unlearned model, each judged against the original and, where
there is one, the model that never saw the forget class (docs/audit.md).

- `relearning` (relearn.py): fine-tune with the family's own training objective on k forget
  images; how many steps until the forget score is back at half the original's?
- `membership` (membership.py): can an attacker tell the images that were unlearned on from
  held-out images of the same class? ROC AUC of two scores.
- `inversion` (inversion.py): steer the frozen decoder (optimise its input) to draw held-out
  forget images; does it still can, better than the model that never saw the class?
- `mask_sweep` (sweep.py): forget and retain probe accuracy as the hidden fraction grows, for
  centre holes, outpainting and random patches.

`folder.open_run` loads what a run folder (`unlearn --out`) needs; `audit.run_audit` runs the
attacks asked for on it and `audit.write_audit` adds their figures and plots to the folder.
"""

AUDITS = ("relearning", "membership", "inversion", "mask_sweep")
TITLES = {"relearning": "Relearning", "membership": "Membership inference", "inversion": "Decoder inversion", "mask_sweep": "Mask sweep"}
