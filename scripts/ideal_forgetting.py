"""What a perfectly unlearned encoder would give: the probe accuracy of outputs generated with the
encoder's output replaced by the original encoder's embedding of noise under the same mask.

The paper's forget term, E_n ||E_theta(T(x_f)) - E_theta0(T(n))||^2 with a fresh noise image n
every step, is smallest when E_theta(T(x_f)) is the *mean* noise embedding E_n[E_theta0(T(n))]; an
encoder that reached it for every forget image, the frozen decoder (and, for VQ-GAN, MaskGIT's
rounds, each of which calls the encoder again) would turn into the outputs measured here. That is
the floor the method can reach on a set, whatever its settings. Also shown: the embedding of one
noise image (a typical draw rather than their mean). For the families whose decoder reads a latent
of the encoder's (MAE, VQ-GAN); the diffusion family's forget target depends on the timestep and on
the noisy target, not on the mask alone.

    PYTHONPATH=. python scripts/ideal_forgetting.py                 # cats and dogs, MAE and VQ-GAN, center50 and outpaint50
    PYTHONPATH=. python scripts/ideal_forgetting.py --families vqgan --masks outpaint50 --sets cat
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager

import torch

from unlearn_core.checkpoints import load_model, load_probe
from unlearn_core.data import load_builtin
from unlearn_core.masks import parse_mask
from unlearn_core.noise import noise_like

FAMILIES = ("mae", "vqgan")


def latent_site(model):
    """(object, attribute name, noise latent function) of the call whose output the decoder reads:
    `noise_latent(noise_images, hidden)` -> that call's output for the noise images."""
    if model.family == "mae":
        real = model.forward_encoder
        return model, "forward_encoder", lambda n, hidden: real(n, hidden)
    if model.family == "vqgan":
        real = model.transformer.forward_encoder
        return model.transformer, "forward_encoder", lambda n, hidden: real(model.tokenize(n, hidden), hidden)
    raise SystemExit(f"{model.family}: no latent to replace (families: {', '.join(FAMILIES)})")


@contextmanager
def ideal_encoder(model, x: torch.Tensor, draws: int, seed: int = 1):
    """While inside, every call of the encoder on `x`'s batch returns the mean over `draws` noise
    images (the mean and std of `x`, a fixed draw) of the original encoder's output under the mask
    of that call: 1 draw is one noise image's embedding."""
    owner, name, noise_latent = latent_site(model)
    g = torch.Generator().manual_seed(seed)
    noises = [noise_like(x, g) for _ in range(draws)]

    def replaced(_inputs, hidden):
        outs = [noise_latent(n, hidden) for n in noises]
        first = outs[0]
        mean = torch.stack([o[0] for o in outs]).mean(0)
        return (mean, *first[1:])

    setattr(owner, name, replaced)
    try:
        yield
    finally:
        delattr(owner, name)  # back to the class's method


def accuracy(probe, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (probe.predict(images) == labels).float().mean().item()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--masks", default="center50,outpaint50")
    ap.add_argument("--sets", default="cat,dog", help="built-in classes, each taken as the forget set in turn")
    ap.add_argument("--n", type=int, default=200, help="held-out images per set")
    ap.add_argument("--draws", type=int, default=32, help="noise images averaged for the mean embedding")
    args = ap.parse_args(argv)
    probe = load_probe()
    for family in args.families.split(","):
        model = load_model(family).eval()
        for mask_name in args.masks.split(","):
            for name in args.sets.split(","):
                s = load_builtin(name)
                x, labels = s.test[: args.n], s.test_labels[: args.n]
                mask = parse_mask(mask_name).build(len(x), model.image_size, seed=0, grid=getattr(model, "grid", 8))
                with torch.no_grad():
                    row = {"original": accuracy(probe, model.generate(x, mask, seed=0).composite, labels)}
                    for what, draws in (("one noise image", 1), ("mean noise embedding", args.draws)):
                        with ideal_encoder(model, x, draws):
                            row[what] = accuracy(probe, model.generate(x, mask, seed=0).composite, labels)
                print(f"{family:6s} {mask_name:11s} {name:4s} probe_acc " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
