"""The app's services without a browser (`serving.studio`): the one function the fields that
follow the model family read their values from."""

from __future__ import annotations

import pytest

from unlearn_core.errors import UserInputError
from unlearn_core.methods import get_method
from unlearn_core.models import get_family
from unlearn_core.models.checkpoints import cached_model, embedded_path
from unlearn_core.serving import studio


@pytest.mark.parametrize("family", ["mae", "vqgan", "diffusion"])
def test_ui_defaults_are_what_a_run_with_the_family_uses(family):
    """The fields that follow the family show its own schedule, training mask, sampler and alpha,
    and a run left at them uses exactly that."""
    d = studio.ui_defaults(family)
    model = cached_model(family)
    named = get_family(family).defaults
    assert (d.steps, d.lr, d.train_mask) == (named.steps, named.lr, named.train_mask or studio.SAME_MASK)
    assert d.sampling_steps == model.sampling_steps and d.max_sampling_steps == model.max_sampling_steps
    if family == "mae":  # one pass, trained with the evaluation mask
        assert (d.train_mask, d.steps, d.lr, d.alpha, d.sampling_steps, d.max_sampling_steps) == ("same", 500, 1e-3, 0.2, None, None)
    else:
        assert d.sampling_steps >= 1 and d.max_sampling_steps >= d.sampling_steps
    assert d.alpha == named.alpha_for("ours", get_method("ours").default_alpha)
    assert studio.ui_defaults(family, method="max_loss").alpha == get_method("max_loss").default_alpha  # no family names one
    cfg = studio.make_spec(
        "builtin:cat", "builtin:dog", family, None, "center50", "ours", d.alpha, d.steps, d.lr, 0, d.sampling_steps
    ).config
    assert cfg.for_model(model).resolved_alpha() == d.alpha and cfg.steps == d.steps and cfg.lr == d.lr


def test_ui_defaults_of_a_checkpoint_are_its_familys():
    assert studio.ui_defaults("vqgan", str(embedded_path("vqgan"))) == studio.ui_defaults("vqgan")
    assert studio.ui_defaults("vqgan", method="ours").alpha == 0.2  # VQ-GAN names its own weight for ours
    with pytest.raises(UserInputError):
        studio.ui_defaults("unicorn")
