"""The diagnostic scripts under scripts/ do what their docstrings say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from unlearn_core.data.noise import noise_like

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_separability_tells_separable_sets_from_mixed_ones():
    sep = _script("separability")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=g)
    y = torch.cat([torch.ones(200), torch.zeros(200)])
    shifted = x + 3 * y[:, None] * torch.eye(20)[0]  # the classes differ along one axis
    test_acc, _ = sep.linear_accuracy(shifted[::2], y[::2], shifted[1::2], y[1::2])
    assert test_acc > 0.9
    test_acc, _ = sep.linear_accuracy(x[::2], y[::2], x[1::2], y[1::2])  # labels unrelated to x
    assert 0.3 < test_acc < 0.7


def test_separability_embeds_with_the_family_encoder():
    from unlearn_core.data.masks import parse_mask
    from unlearn_core.data.sets import load_builtin
    from unlearn_core.models.checkpoints import cached_model

    sep = _script("separability")
    model = cached_model("mae")
    x = load_builtin("cat").test[:6]
    mask = parse_mask("outpaint50").build(6, 32)
    e = sep.embeddings(model, x, mask, chunk=4)
    assert e.shape[0] == 6 and torch.allclose(e, model.encode(x, mask).flatten(1), atol=1e-5)


def test_ideal_forgetting_generates_from_the_mean_noise_latent_and_restores_the_encoder():
    from unlearn_core.data.masks import parse_mask
    from unlearn_core.data.noise import noise_like
    from unlearn_core.data.sets import load_builtin
    from unlearn_core.models.checkpoints import cached_model

    ideal = _script("ideal_forgetting")
    model = cached_model("mae")
    x = load_builtin("cat").test[:4]
    mask = parse_mask("outpaint50").build(4, 32)
    hidden = model.patch_mask(mask)
    with torch.no_grad():
        before = model.generate(x, mask).raw
        g = torch.Generator().manual_seed(1)
        noises = [noise_like(x, g) for _ in range(2)]
        latents = [model.forward_encoder(n, hidden) for n in noises]
        mean = (latents[0][0] + latents[1][0]) / 2
        expected = model._to_pixels(model.forward_decoder(mean, latents[0][1]), x, hidden)
        with ideal.ideal_encoder(model, x, draws=2):
            inside = model.generate(x, mask).raw
        after = model.generate(x, mask).raw
    assert torch.allclose(inside, expected, atol=1e-5)
    assert not torch.allclose(inside, before, atol=1e-3)  # the cats' own outputs differ from noise's
    assert torch.equal(after, before)


def _encoder_calls(ideal, model, x, mask, visible_pass: bool) -> list[tuple[int, bool]]:
    """(hidden tokens, whether the real encoder's output came back) for each encoder call of one
    generation under `ideal_encoder`."""
    tr = model.transformer
    real, calls = tr.forward_encoder, []
    with torch.no_grad(), ideal.ideal_encoder(model, x, draws=1, visible_pass=visible_pass):
        replaced = tr.forward_encoder

        def counting(tokens, hidden):
            out = replaced(tokens, hidden)
            calls.append((int(hidden.sum()), torch.allclose(out[0], real(tokens, hidden)[0])))
            return out

        with ideal.patched(tr, "forward_encoder", counting):
            model.generate(x, mask, steps=3)
        assert tr.forward_encoder == replaced  # the nested patch gave back what it found
    return calls


def test_ideal_forgetting_replaces_the_vqgan_transformer_encoder_in_every_round():
    from unlearn_core.data.masks import parse_mask
    from unlearn_core.data.noise import noise_like
    from unlearn_core.data.sets import load_builtin
    from unlearn_core.models.checkpoints import cached_model

    ideal = _script("ideal_forgetting")
    model = cached_model("vqgan")
    tr = model.transformer
    x = load_builtin("cat").test[:3]
    mask = parse_mask("center50").build(3, 32)
    hidden = model.token_mask(mask)
    real = tr.forward_encoder
    noise = noise_like(x, torch.Generator().manual_seed(1))
    with torch.no_grad(), ideal.ideal_encoder(model, x, draws=1):
        latent = tr.forward_encoder(model.tokenize(x, hidden), hidden)[0]
        assert torch.allclose(latent, real(model.tokenize(noise, hidden), hidden)[0])  # the noise's, not the cats'
    for visible_pass in (True, False):
        calls = _encoder_calls(ideal, model, x, mask, visible_pass)
        hidden_counts = [c[0] for c in calls]
        assert (
            len(calls) == 4 and hidden_counts[0] > hidden_counts[1] > hidden_counts[2] > 0 == hidden_counts[3]
        )  # 3 rounds + the final pass
        assert [c[1] for c in calls] == [False, False, False, not visible_pass]
    assert tr.forward_encoder == real


def _diffusion_case():
    """The embedded diffusion model, two held-out cats under outpaint50, and the Palette input
    pieces of one drawn step: (model, x, mask, y0, t, eps, cond)."""
    from unlearn_core.data.masks import parse_mask
    from unlearn_core.data.sets import load_builtin
    from unlearn_core.models.checkpoints import cached_model

    model = cached_model("diffusion")
    x = load_builtin("cat").test[:2]
    mask = parse_mask("outpaint50").build(2, 32)
    y0 = 2 * x - 1
    t, eps, cond_noise = model.draw(x, seed=3)
    return model, x, mask, y0, t, eps, model.condition(y0, mask, cond_noise)


def test_ideal_forgetting_shows_the_diffusion_unet_the_noise_its_target_was_made_from():
    ideal = _script("ideal_forgetting")
    model, x, mask, y0, t, eps, cond = _diffusion_case()
    with torch.no_grad():
        seen = model.unet(model._input(model.noisy(y0, t, eps), y0, cond, mask), t).sample
        with ideal.exact_diffusion_target(model, x):
            inside = model.unet(model._input(model.noisy(y0, t, eps), y0, cond, mask), t).sample
        expected = model.unet(model._input(eps, y0, cond, mask), t).sample  # the teacher's forget input
        after = model.unet(model._input(model.noisy(y0, t, eps), y0, cond, mask), t).sample
    assert torch.allclose(inside, expected, atol=1e-4)
    assert not torch.allclose(inside, seen, atol=1e-3)
    assert torch.equal(after, seen)


def test_ideal_forgetting_replaces_diffusion_skips_of_the_sizes_named_only():
    ideal = _script("ideal_forgetting")
    model, x, mask, y0, t, eps, cond = _diffusion_case()
    inp = model._input(model.noisy(y0, t, eps), y0, cond, mask)
    with torch.no_grad():
        seen = model.unet(inp, t).sample
        with ideal.diffusion_skips_replaced(model, x, ()):  # nothing replaced: the UNet's own output
            rebuilt = model.unet(inp, t).sample
        with ideal.diffusion_skips_replaced(model, x, (8,)):
            deep = model.unet(inp, t).sample
        with ideal.diffusion_skips_replaced(model, x, (32, 16, 8)):
            every = model.unet(inp, t).sample
        # every skip replaced: the output for the noise input the context drew (same generator)
        n = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
        expected = model.unet(model._input(n, y0, cond, mask), t).sample
        assert torch.equal(model.unet(inp, t).sample, seen)  # restored on leaving
    assert torch.allclose(rebuilt, seen, atol=1e-5)
    assert not torch.allclose(deep, seen, atol=1e-3) and not torch.allclose(deep, every, atol=1e-3)
    assert torch.allclose(every, expected, atol=1e-4)
    # a noise image in place of the image: every feature replaced gives the UNet's output for it
    with torch.no_grad(), ideal.diffusion_skips_replaced(model, x, (), start=0, noise_image=True):
        literal = model.unet(inp, t).sample
    g = torch.Generator().manual_seed(1)
    n, y0n = torch.randn(x.shape, generator=g), 2 * noise_like(x, g) - 1
    cond_n = model.condition(y0n, mask, torch.randn(x.shape, generator=g))
    with torch.no_grad():
        expected = model.unet(model._input(model.noisy(y0n, t, n), y0n, cond_n, mask), t).sample
    assert torch.allclose(literal, expected, atol=1e-4) and not torch.allclose(literal, every, atol=1e-3)
    # the embedded UNet attends at 8x8 only: its last down block's output and the middle block's
    assert [f.shape[-1] for f in model.features(inp, t)][ideal.first_attending_feature(model) :] == [8, 8]
