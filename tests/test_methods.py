"""Each unlearning method's loss: its sign, which parameters it trains, and a live forget term."""

import pytest
import torch

from unlearn_core.data.masks import parse_mask
from unlearn_core.data.noise import noise_like
from unlearn_core.methods import METHODS, UnlearnBatch, get_method
from unlearn_core.run.engine import UnlearnConfig, unlearn


def _batch(model, images, seed=3):
    g = torch.Generator().manual_seed(seed)
    x = images
    forget, retain = x[:4], x[4:]
    m = parse_mask("center50").build(4, x.shape[-1], seed=seed, grid=getattr(model, "grid", 8))
    return UnlearnBatch(forget=forget, retain=retain, noise=noise_like(forget, g), forget_mask=m, retain_mask=m, seed=seed)


def _grads(model, loss) -> dict[str, bool]:
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}


def test_the_registry_names_every_method():
    assert list(METHODS) == ["ours", "max_loss", "noisy_label", "retain_label", "random_encoder", "finetune"]
    assert {m.trains for m in METHODS.values()} == {"encoder", "all"}
    with pytest.raises(Exception, match="unknown method"):
        get_method("forget_everything")


@pytest.mark.parametrize("name", [n for n in METHODS if n != "finetune"])
def test_method_loss_signs_and_live_forget_term(tiny_model, images, name):
    import copy

    method = get_method(name)
    student, teacher = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model).requires_grad_(False)
    batch = _batch(student, images)
    total, terms = method.loss(student, teacher, batch, 0.5)
    assert set(terms) == {"retain", "forget"} and torch.isfinite(total)
    sign = -1 if name == "max_loss" else 1
    assert total.item() == pytest.approx(terms["retain"].item() + sign * 0.5 * terms["forget"].item(), rel=1e-5, abs=1e-6)
    # the forget term carries gradient on its own (no weight that zeroes it)
    trained = {id(p) for p in (student.encoder_parameters() if method.trains == "encoder" else student.trainable_parameters())}
    got = _grads(student, terms["forget"])
    named = dict(student.named_parameters())
    assert any(got[n] for n, p in named.items() if id(p) in trained)
    if name in ("ours", "random_encoder"):
        # encoder-only methods: at step 0 the student equals the teacher, so the retain term is 0
        assert terms["retain"].item() == pytest.approx(0, abs=1e-10) and terms["forget"].item() > 0


def test_the_fine_tune_control_trains_on_the_retain_set_alone(tiny_model, images):
    """FT: the total is the retain set's training loss; the forget set's is only watched (no gradient)."""
    import copy

    student, teacher = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model).requires_grad_(False)
    batch = _batch(student, images)
    total, terms = get_method("finetune").loss(student, teacher, batch, 5.0)
    assert total is terms["retain"] and terms["forget"].item() > 0 and not terms["forget"].requires_grad
    assert any(_grads(student, total).values())
    assert total.item() == pytest.approx(student.training_loss(batch.retain, batch.retain_mask, seed=batch.seed).item(), rel=1e-5)


@pytest.mark.parametrize("name", ["max_loss", "noisy_label", "retain_label", "random_encoder", "finetune"])
def test_what_each_baseline_trains(tiny_mae, images, name):
    """Whole-model baselines move the decoder too; encoder-only ones leave it untouched; fixed
    position tables never move."""
    cfg = UnlearnConfig(method=name, steps=3, batch_size=4, lr=1e-2)
    result = unlearn(tiny_mae, images[:4], images[4:], parse_mask("center50"), cfg)
    before, after = dict(tiny_mae.named_parameters()), dict(result.model.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    decoder = {n for n in moved if ".decoder." in f".{n}"}
    assert not any(n.endswith("position_embeddings") for n in moved)
    assert any(n.startswith("net.vit.") for n in moved)
    assert bool(decoder) == (get_method(name).trains == "all")


def test_baselines_differ_in_their_forget_targets(tiny_mae, images):
    """noisy_label aims the forget images at noise, retain_label at the original model's retain
    outputs, max_loss at nothing (ascent): three different forget terms on one batch."""
    import copy

    batch = _batch(tiny_mae, images)
    teacher = copy.deepcopy(tiny_mae)
    values = {n: get_method(n).loss(tiny_mae, teacher, batch, 1.0)[1]["forget"].item() for n in ("max_loss", "noisy_label", "retain_label")}
    assert len({round(v, 6) for v in values.values()}) == 3, values


def test_random_training_masks_are_shared_by_student_and_teacher(tiny_mae, images, monkeypatch):
    """With `random` training masks every step draws new masks, and the student and the teacher
    (and the noise target) see the same draw within a step."""
    from unlearn_core.models.mae import MAEModel

    seen = []
    encode = MAEModel.encode

    def spy(self, x, mask, *, seed=None):
        seen.append((seed, mask.clone()))
        return encode(self, x, mask, seed=seed)

    monkeypatch.setattr(MAEModel, "encode", spy)
    unlearn(tiny_mae, images[:4], images[4:], parse_mask("random"), UnlearnConfig(steps=3, batch_size=4))
    by_step = {}
    for seed, m in seen:
        by_step.setdefault(seed, []).append(m)
    # one draw for the step's retain and forget halves, so each encoder takes both in one pass
    assert len(by_step) == 3 and all(len(v) == 2 for v in by_step.values())  # teacher, student
    firsts = []
    for masks in by_step.values():
        assert torch.equal(masks[0], masks[1])  # the same draw for both encoders
        firsts.append(masks[0])
    assert not torch.equal(firsts[0], firsts[1]) or not torch.equal(firsts[1], firsts[2])  # fresh draws


def test_ft_trains_with_the_models_own_random_masks_unless_told():
    from unlearn_core.run.pipeline import RunSpec, prepare

    def train_mask(method: str, **over) -> str:
        spec = RunSpec(mask="center50", config=UnlearnConfig(method=method, steps=1), eval_masks=[], image_metrics=False, **over)
        return prepare(spec).train_mask.name

    assert get_method("finetune").train_mask == "random" and get_method("ours").train_mask is None
    assert train_mask("finetune") == "random" and train_mask("ours") == "center50"  # MAE's own: the run's mask
    assert train_mask("finetune", train_mask="outpaint50") == "outpaint50"  # a named one wins
