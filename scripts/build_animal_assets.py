"""Convert the `animal-mnist` package's data into `assets/animals/animals.npz`.

Source: PyPI `animal-mnist` 0.4 (MIT, (c) 2025 SinaSR-6): 10 classes x 1000 grayscale 28x28
silhouettes stored as gzipped numpy pickles. We read them with a restricted unpickler (only the
numpy array constructors are allowed), drop exact duplicates (the source holds 284, which would
leak test images into training), pad each image to 32x32 with background (black), and fix the
train/test split: per class, a seeded permutation puts 200 images in `test` and the rest
(770-800) in `train`. The output holds only plain arrays and loads with `np.load(..., allow_pickle=False)`.

Run (the package declares tensorflow as a dependency it does not need, hence --no-deps):
    pip install --no-deps animal-mnist==0.4
    python scripts/build_animal_assets.py
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import pickle
import shutil
from pathlib import Path

import numpy as np

CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
TEST_PER_CLASS = 200
SPLIT_SEED = 0
OUT = Path(__file__).resolve().parent.parent / "assets" / "animals"


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except the ones a pickled numpy array needs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _load(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return _ArrayOnlyUnpickler(f).load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", type=Path, help="folder of the animal_mnist package")
    args = parser.parse_args()
    pkg = args.package_dir
    if pkg is None:
        spec = importlib.util.find_spec("animal_mnist")  # finds without importing (no tensorflow)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("animal_mnist not installed: pip install --no-deps animal-mnist==0.4")
        pkg = Path(next(iter(spec.submodule_search_locations)))
    data_dir = pkg / "data" / "Animal_MNIST"
    images = _load(data_dir / "animal_data_version_3.gz").astype(np.uint8)  # (10000, 28, 28)
    labels = _load(data_dir / "animal_label_version_3.gz").astype(np.int64)  # (10000,)
    if images.shape != (10000, 28, 28) or np.bincount(labels).tolist() != [1000] * 10:
        raise SystemExit(f"unexpected data: {images.shape}, {np.bincount(labels)}")
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    keep = np.sort(first)  # first copy of every distinct image, original order
    images, labels = images[keep], labels[keep]
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # (N, 32, 32), black border

    rng = np.random.default_rng(SPLIT_SEED)
    is_train = np.zeros(len(labels), dtype=bool)
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(labels == c))
        is_train[idx[TEST_PER_CLASS:]] = True

    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT / "animals.npz",
        images=images,
        labels=labels.astype(np.uint8),
        is_train=is_train,
        classes=np.array(CLASSES),
    )
    licence = pkg.parent / "animal_mnist-0.4.dist-info" / "licenses" / "LICENSE"
    if licence.exists():
        shutil.copy(licence, OUT / "LICENSE-animal-mnist")
    print(f"wrote {OUT / 'animals.npz'}: {images.shape}, train {is_train.sum()}, test {(~is_train).sum()}")


if __name__ == "__main__":
    main()
