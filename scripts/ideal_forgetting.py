"""What a perfectly unlearned encoder would give: the probe accuracy and psnr_masked of outputs
generated with the encoder's output replaced by the forget target itself, on held-out images.

MAE and VQ-GAN: the paper's forget term, E_n ||E_theta(T(x_f)) - E_theta0(T(n))||^2 with a fresh
noise image n every step, is smallest when E_theta(T(x_f)) is the *mean* noise embedding
E_n[E_theta0(T(n))]. Here every call of the encoder on the forget images (for VQ-GAN each MaskGIT
round, under that round's mask, and the final pass over the visible tokens) returns it, and the
frozen decoder draws what it makes of it: the floor the method can reach on a set, whatever its
settings. Also shown: one noise image's
embedding (a typical draw rather than the mean) and, for VQ-GAN, the mean with the original
encoder in the final pass (the forget term never trains the encoder on inputs with nothing hidden).

Diffusion: the official forget target is the teacher's features of the noisy input whose hidden
region holds the very noise eps the student's noisy target y_t was made from. A student that
matched it exactly for every y_t would see, at every sampling step, the noise implied by y_t and
the true image, eps = (y_t - sqrt(abar_t) y0) / sqrt(1 - abar_t), in place of y_t. Also shown:
which of the features the frozen up blocks read decide what they draw. At every sampling step
the features at some resolutions (8x8 on the embedded model: the last down block and the
middle block; 16x16; both), or every feature from the first attention layer's on, are replaced
by the teacher's features of the same input with fresh Gaussian noise in the hidden region of
the noisy target (a forget target whose optimum forgets, reached exactly), the others left as
the original encoder makes them. Only the deeper features can tell a cat from a dog (on
the embedded model a 32x32 feature is a function of the 7x7 pixels around it, a 16x16 one of at
most 17x17; the 8x8 level attends to the whole image); if replacing them leaves the cats cats, no
encoder can forget them here without changing the dogs too. Last, the features from the first
attention layer's on are replaced by those of the input a noise image would give (Eq. (6) taken
literally, no pixel of the image in them, visible or hidden): if that leaves the cats cats, the
frozen up blocks draw them from the shallow features alone. (`--checkpoint` screens a UNet of
another design, e.g. `train --preset animals-deep`, before unlearning it.)

    PYTHONPATH=. python scripts/ideal_forgetting.py                 # cats and dogs, every family, center50 and outpaint50
    PYTHONPATH=. python scripts/ideal_forgetting.py --families vqgan --masks outpaint50 --sets cat
    PYTHONPATH=. python scripts/ideal_forgetting.py --families diffusion --checkpoint DIR   # a model of your own
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from types import SimpleNamespace

import torch

from unlearn_core.data.masks import MaskSpec, parse_mask
from unlearn_core.data.noise import noise_like
from unlearn_core.data.sets import load_builtin
from unlearn_core.measure.metrics import evaluate_set
from unlearn_core.measure.probe import load_probe
from unlearn_core.models.checkpoints import load_model

FAMILIES = ("mae", "vqgan", "diffusion")


def latent_site(model):
    """(object, attribute name, input function) of the call whose output the decoder reads:
    `to_input(noise_images, hidden)` is that call's first argument for the noise images."""
    if model.family == "mae":
        return model, "forward_encoder", lambda n, hidden: n
    if model.family == "vqgan":
        return model.transformer, "forward_encoder", model.tokenize
    raise SystemExit(f"{model.family}: no latent to replace (families: mae, vqgan)")


@contextmanager
def patched(owner, name: str, replacement):
    """`owner.name` is `replacement` while inside; whatever the instance held before comes back."""
    missing = object()
    before = owner.__dict__.get(name, missing)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        if before is missing:
            delattr(owner, name)  # back to the class's method
        else:
            setattr(owner, name, before)


def ideal_encoder(model, x: torch.Tensor, draws: int, *, seed: int = 1, visible_pass: bool = True):
    """While inside, every call of the encoder on `x`'s batch returns the mean over `draws` noise
    images (the mean and std of `x`, a fixed draw) of the original encoder's output under the mask
    of that call: 1 draw is one noise image's embedding. `visible_pass` False leaves VQ-GAN's
    final pass (nothing hidden: it re-reads the visible tokens for the decoder) to the real
    encoder: the forget term never trains the encoder on such inputs."""
    owner, name, to_input = latent_site(model)
    real = getattr(owner, name)
    g = torch.Generator().manual_seed(seed)
    noises = [noise_like(x, g) for _ in range(draws)]

    def replaced(inputs, hidden):
        if len(inputs) != len(x):
            raise SystemExit("the encoder was called on part of the batch (a mask that hides more in some images than in others?)")
        if not visible_pass and not bool(hidden.any()):
            return real(inputs, hidden)
        outs = [real(to_input(n, hidden), hidden) for n in noises]
        return (torch.stack([o[0] for o in outs]).mean(0), *outs[0][1:])

    return patched(owner, name, replaced)


def exact_diffusion_target(model, x: torch.Tensor):
    """While inside, the diffusion UNet run on `x`'s batch sees, in the hidden region of its noisy
    target, the noise that target was made from given the true image (see the module's docstring)."""
    unet, c = model.unet, model.channels
    real = unet.forward
    y0 = 2 * x - 1

    def forward(inp, t, *args, **kwargs):
        y_t, rest, mask = inp[:, :c], inp[:, c:], inp[:, -1:]
        a = model.alphas_cumprod[t.long()].view(-1, 1, 1, 1)
        implied = (y_t - a.sqrt() * y0.to(y_t)) / (1 - a).sqrt()
        return real(torch.cat([mask * implied + (1 - mask) * y_t, rest], dim=1), t, *args, **kwargs)

    return patched(unet, "forward", forward)


def first_attending_feature(model) -> int:
    """The index, in `model.features`, of the first feature that has attended to the whole image
    (the first attention down block's first output); every later one has too."""
    index = 1  # after the input convolution's output
    for block in model.unet.down_blocks:
        if getattr(block, "attentions", None):
            return index
        index += len(block.resnets) + len(block.downsamplers or [])
    return index  # no attention down block: the middle block's output


def diffusion_skips_replaced(
    model, x: torch.Tensor, sizes: tuple[int, ...], *, start: int | None = None, noise_image: bool = False, seed: int = 1
):
    """While inside, the diffusion UNet run on `x`'s batch hands its up blocks, at the spatial
    sizes `sizes` (and from feature `start` on, where given), the features of its input with
    fresh Gaussian noise (drawn from `seed`, anew at every call) in the hidden region of the
    noisy target, or with `noise_image`, of the input a noise image would give at that step
    (Eq. (6) taken literally: no pixel of x, visible or hidden); elsewhere its own features."""
    unet, c = model.unet, model.channels
    g = torch.Generator().manual_seed(seed)

    def forward(inp, t, *args, **kwargs):
        if len(inp) != len(x):
            raise SystemExit("the UNet was called on part of the batch")
        y_t, rest, mask = inp[:, :c], inp[:, c:], inp[:, -1:]
        n = torch.randn(y_t.shape, generator=g).to(y_t)
        t = t.expand(len(inp))  # the sampler passes one timestep for the batch, training one each
        own = model.features(inp, t)
        if noise_image:  # the noise image as the image: visible, noised in the hole, conditioning
            y0 = 2 * noise_like(x, g).to(y_t) - 1
            cond = model.condition(y0, mask, torch.randn(y_t.shape, generator=g).to(y_t))
            noise = model.features(model._input(model.noisy(y0, t.long(), n), y0, cond, mask), t)
        else:
            noise = model.features(torch.cat([mask * n + (1 - mask) * y_t, rest], dim=1), t)
        picked = [a.shape[-1] in sizes or (start is not None and i >= start) for i, a in enumerate(own)]
        feats = [b if pick else a for pick, a, b in zip(picked, own, noise, strict=True)]
        # the rest of UNet2DModel.forward: the up blocks over the skips, then the output layers
        emb = unet.time_embedding(unet.time_proj(t).to(inp.dtype))
        skips, h = tuple(feats[:-1]), feats[-1]
        for block in unet.up_blocks:
            h = block(h, skips[-len(block.resnets) :], emb)
            skips = skips[: -len(block.resnets)]
        return SimpleNamespace(sample=unet.conv_out(unet.conv_act(unet.conv_norm_out(h))))

    return patched(unet, "forward", forward)


def variants(model, x: torch.Tensor, draws: int) -> dict:
    """{label: context} of the ideal encoders for `model`'s family."""
    if model.family == "diffusion":
        deep = model.image_size // 2 ** (len(model.unet.down_blocks) - 1)
        start = first_attending_feature(model)
        return {
            "target matched exactly": lambda: exact_diffusion_target(model, x),
            f"{deep}x{deep} features from noise": lambda: diffusion_skips_replaced(model, x, (deep,)),
            f"{2 * deep}x{2 * deep} and {deep}x{deep} from noise": lambda: diffusion_skips_replaced(model, x, (2 * deep, deep)),
            "every feature after the first attention from noise": lambda: diffusion_skips_replaced(model, x, (), start=start),
            "the same from a noise image": lambda: diffusion_skips_replaced(model, x, (), start=start, noise_image=True),
        }
    out = {"one noise image": lambda: ideal_encoder(model, x, 1), "mean noise embedding": lambda: ideal_encoder(model, x, draws)}
    if model.family == "vqgan":
        out["same, final visible pass by the original"] = lambda: ideal_encoder(model, x, draws, visible_pass=False)
    return out


def measure(probe, model, x: torch.Tensor, labels: torch.Tensor, mask: MaskSpec) -> str:
    """'probe_acc / psnr_masked' of the model's outputs for x (`metrics.evaluate_set`, one batch)."""
    m = evaluate_set(model, model, x, labels, mask, probe, seed=0, batch_size=len(x))
    return f"{m['probe_acc']:.3f} / {m['psnr_masked']:.2f} dB"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--masks", default="center50,outpaint50")
    ap.add_argument("--sets", default="cat,dog", help="built-in classes, each taken as the forget set in turn")
    ap.add_argument("--n", type=int, default=200, help="held-out images per set")
    ap.add_argument("--draws", type=int, default=32, help="noise images averaged for the mean embedding")
    ap.add_argument("--checkpoint", default=None, help="a model folder instead of the embedded one (one family only)")
    args = ap.parse_args(argv)
    families = args.families.split(",")
    if args.checkpoint and len(families) != 1:
        ap.error("--checkpoint takes one family (--families)")
    probe = load_probe()
    for family in families:
        model = load_model(family, args.checkpoint).eval()
        for mask_name in args.masks.split(","):
            for name in args.sets.split(","):
                s = load_builtin(name)
                x, labels = s.test[: args.n], s.test_labels[: args.n]
                mask = parse_mask(mask_name)
                with torch.no_grad():
                    row = {"original": measure(probe, model, x, labels, mask)}
                    for what, ideal in variants(model, x, args.draws).items():
                        with ideal():
                            row[what] = measure(probe, model, x, labels, mask)
                print(f"{family} {mask_name} {name}, probe_acc / psnr_masked: " + "; ".join(f"{k} {v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
