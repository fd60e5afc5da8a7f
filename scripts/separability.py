"""How well a linear classifier tells the forget set from the retain set: from the visible pixels,
and from each family's original encoder embedding (what the unlearning losses compare), under a
fixed mask. Trained on the train split, scored on the held-out test split. A diagnostic for the
findings in docs/findings/: forgetting one set while keeping the other needs an encoder whose
embeddings tell them apart.

    PYTHONPATH=. python scripts/separability.py         # cats / dogs, every family, center50 and outpaint50
    PYTHONPATH=. python scripts/separability.py --families vqgan --masks outpaint50
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from unlearn_core.data.masks import parse_mask
from unlearn_core.data.sets import load_builtin
from unlearn_core.models import family_names
from unlearn_core.models.checkpoints import load_model


def linear_accuracy(
    train: torch.Tensor, y_train: torch.Tensor, test: torch.Tensor, y_test: torch.Tensor, epochs: int = 300
) -> tuple[float, float]:
    """(test, train) accuracy of an L2-regularised logistic regression on standardised features."""
    mean, std = train.mean(0), train.std(0) + 1e-5
    train, test = (train - mean) / std, (test - mean) / std
    w = torch.zeros(train.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(train @ w + b, y_train) + 1e-3 * (w**2).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return tuple(((x @ w + b > 0).float() == y).float().mean().item() for x, y in ((test, y_test), (train, y_train)))


@torch.inference_mode()
def embeddings(model, x: torch.Tensor, mask: torch.Tensor, chunk: int = 200) -> torch.Tensor:
    """The encoder's output for each image, flattened (seed fixed: the diffusion family draws a timestep and noise)."""
    return torch.cat([model.encode(x[i : i + chunk], mask[i : i + chunk], seed=1).flatten(1).float() for i in range(0, len(x), chunk)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forget", default="cat", help="built-in class (default cat)")
    parser.add_argument("--retain", default="dog", help="built-in class (default dog)")
    parser.add_argument("--families", default=",".join(family_names()), help="comma-separated (default: every family)")
    parser.add_argument("--masks", default="center50,outpaint50", help="comma-separated presets")
    parser.add_argument("--per-class", type=int, default=800, help="train images per class (default 800)")
    args = parser.parse_args()
    torch.manual_seed(0)
    forget, retain = load_builtin(args.forget), load_builtin(args.retain)
    n = args.per_class

    def split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = getattr(forget, name)[:n], getattr(retain, name)[:n]
        return torch.cat([a, b]), torch.cat([torch.ones(len(a)), torch.zeros(len(b))])

    (x_train, y_train), (x_test, y_test) = split("train"), split("test")
    models = {f: load_model(f).eval() for f in args.families.split(",")}
    for name in args.masks.split(","):
        spec = parse_mask(name)
        m_train, m_test = spec.build(len(x_train), x_train.shape[-1], seed=0), spec.build(len(x_test), x_test.shape[-1], seed=0)
        visible = linear_accuracy((x_train * (1 - m_train)).flatten(1), y_train, (x_test * (1 - m_test)).flatten(1), y_test)
        print(f"{name}: visible pixels, test {visible[0]:.3f} (train {visible[1]:.3f})")
        for family, model in models.items():
            acc = linear_accuracy(embeddings(model, x_train, m_train), y_train, embeddings(model, x_test, m_test), y_test)
            print(f"{name}: {family} encoder embedding, test {acc[0]:.3f} (train {acc[1]:.3f})", flush=True)


if __name__ == "__main__":
    main()
