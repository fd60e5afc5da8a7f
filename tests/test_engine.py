import copy

import pytest
import torch

from unlearn_core.checkpoints import cached_model
from unlearn_core.engine import UnlearnConfig, unlearn
from unlearn_core.errors import RunFailed, UserInputError
from unlearn_core.masks import parse_mask
from unlearn_core.metrics import evaluate_set

MASK = parse_mask("outpaint50")


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _encoder_names(model) -> set[str]:
    ids = {id(p) for p in model.encoder_parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_step_zero_retain_loss_is_zero(tiny_model, cats_dogs):
    cats, dogs = cats_dogs
    events = []
    unlearn(tiny_model, cats.train[:64], dogs.train[:64], MASK, UnlearnConfig(steps=2, batch_size=8), on_step=events.append)
    assert events[0].retain == 0.0
    assert events[0].forget > 0 and events[0].step == 1 and events[-1].step == 2


def test_only_the_encoder_changes_and_the_original_is_untouched(tiny_model, cats_dogs):
    cats, dogs = cats_dogs
    before = _state(tiny_model)
    params = dict(tiny_model.named_parameters())
    result = unlearn(tiny_model, cats.train[:64], dogs.train[:64], MASK, UnlearnConfig(steps=5, batch_size=8, lr=1e-3))
    after = result.model.state_dict()
    encoder = _encoder_names(tiny_model)
    assert encoder and encoder < set(params)
    for k, v in before.items():
        assert torch.equal(tiny_model.state_dict()[k], v), f"original changed: {k}"
        if k in params:  # buffers (e.g. running statistics) are not parameters
            assert (not torch.equal(after[k], v)) == (k in encoder), f"{k} changed: {not torch.equal(after[k], v)}"
    assert not any(p.requires_grad for p in result.model.parameters())


def test_gradients_reach_only_encoder_parameters(tiny_model, cats_dogs):
    cats, dogs = cats_dogs
    seen = {}

    def on_step(e):
        seen.update({n: p.grad is not None for n, p in e.model.named_parameters()})

    unlearn(tiny_model, cats.train[:32], dogs.train[:32], MASK, UnlearnConfig(steps=1, batch_size=4), on_step=on_step)
    assert {n for n, g in seen.items() if g} == _encoder_names(tiny_model)


UNLEARN_STEPS = {"mae": 600, "vqgan": 300, "diffusion": 200}


@pytest.mark.parametrize("family", UNLEARN_STEPS)
def test_unlearning_moves_forget_towards_noise_and_keeps_retain(cats_dogs, family):
    # The embedded model: a tiny untrained encoder cannot tell cats from dogs, so both would move.
    cats, dogs = cats_dogs
    old = cached_model(family)
    result = unlearn(old, cats.train, dogs.train, MASK, UnlearnConfig(steps=UNLEARN_STEPS[family], batch_size=16))
    new = result.model
    gain = {}
    fast = 4 if hasattr(old, "sampling_steps") else None  # noise_cos does not depend on the sampler
    for name, s in (("forget", cats), ("retain", dogs)):
        before = evaluate_set(old, old, s.test[:100], None, MASK, steps=fast)["noise_cos"]
        gain[name] = evaluate_set(new, old, s.test[:100], None, MASK, steps=fast)["noise_cos"] - before
    # measured: MAE and VQ-GAN retain under a third of forget; diffusion 0.12 against 0.28 (its
    # encoder separates cats from dogs less well, README "Diffusion")
    assert gain["forget"] > 0.05 and gain["retain"] < gain["forget"] / 2, gain
    # Latent drift relative to the latent's size: retain latents move far less than forget latents
    # (measured: MAE 0.04 vs 0.24, VQ-GAN 0.15 vs 0.73, diffusion 0.12 vs 0.38).
    m = MASK.build(100, 32)
    drift = {}
    with torch.no_grad():
        for name, s in (("forget", cats), ("retain", dogs)):
            e_old = old.encode(s.test[:100], m)
            drift[name] = float(((new.encode(s.test[:100], m) - e_old) ** 2).mean() / (e_old**2).mean())
    assert drift["retain"] < drift["forget"] / 2.5, drift
    assert result.history[-1]["forget"] < 0.5 * result.history[0]["forget"]


def test_cancel_stops_within_a_step(tiny_model, cats_dogs):
    cats, dogs = cats_dogs
    events = []
    result = unlearn(
        tiny_model,
        cats.train[:32],
        dogs.train[:32],
        MASK,
        UnlearnConfig(steps=50, batch_size=4),
        on_step=events.append,
        should_stop=lambda: len(events) >= 3,
    )
    assert result.stopped and result.steps_done == 3 and len(result.history) == 3


def test_non_finite_loss_fails_clearly(tiny_mae, cats_dogs):
    cats, dogs = cats_dogs
    bad = cats.train[:8].clone()
    bad[:, :, 12:20, 12:20] = float("nan")  # inside the visible window
    with pytest.raises(RunFailed, match="loss became nan at step 1"):
        unlearn(tiny_mae, bad, dogs.train[:8], MASK, UnlearnConfig(steps=3, batch_size=4))


def test_runs_are_reproducible(tiny_model, cats_dogs):
    cats, dogs = cats_dogs
    cfg = UnlearnConfig(steps=3, batch_size=4, seed=7)
    a = unlearn(tiny_model, cats.train[:32], dogs.train[:32], parse_mask("patches75"), cfg)
    b = unlearn(copy.deepcopy(tiny_model), cats.train[:32], dogs.train[:32], parse_mask("patches75"), cfg)
    assert a.history == b.history


@pytest.mark.parametrize(
    "cfg, message",
    [
        (UnlearnConfig(steps=0), "at least 1"),
        (UnlearnConfig(lr=-1), "learning rate"),
        (UnlearnConfig(alpha=-1), "alpha"),
        (UnlearnConfig(method="magic"), "unknown method"),
    ],
)
def test_bad_settings_are_user_errors(tiny_mae, cats_dogs, cfg, message):
    cats, dogs = cats_dogs
    with pytest.raises(UserInputError, match=message):
        unlearn(tiny_mae, cats.train[:8], dogs.train[:8], MASK, cfg)
