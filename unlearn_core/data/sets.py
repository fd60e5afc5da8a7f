"""Image sets: built-in animal silhouettes, folders, file lists and zip archives.

Every set becomes float tensors (N, C, H, W) in [0, 1] at the model's size and channel count,
split into the images we unlearn on (`train`) and held-out images we evaluate on (`test`).

Built-in sets (`builtin:cat`, `builtin:dog`, `builtin:others`, `builtin:<class>`, `builtin:all`,
`builtin:not-<class>`: every class but one, as `builtin:not-cat`, the paper's retain set; several
joined by `+`, as `builtin:bear+bird+cow`) come from `assets/animals/animals.npz` with its fixed split (200 test images per class, the rest,
612-800, for training; see assets/animals/README.md). A user's set keeps
`HOLDOUT_FRACTION` of its images (every fifth image in sorted order) for evaluation when it has at
least `MIN_IMAGES_FOR_HOLDOUT` images; a smaller set is evaluated on its own images and says so.

Hugging Face image datasets (`hf:<dataset>:<label>`, e.g. `hf:microsoft/cats_vs_dogs:cat`): the
images of one label of a dataset on the Hub (downloaded when online, from the local cache when
offline) or of a local dataset folder that `datasets.load_dataset` reads (parquet, image folders);
at most `MAX_HF_IMAGES` of them, in the dataset's order, with the same held-out rule as a user's set.
Their labels are not the probe's classes, so they count as unlabelled (`probe_agree`, not `probe_acc`).

User files are untrusted: only the formats in `FORMATS` are decoded, sizes and counts are capped,
zip archives are read in memory (never extracted), and every rejection names the file.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps

from unlearn_core import shipped
from unlearn_core.errors import UserInputError

ASSETS = shipped("assets") / "animals" / "animals.npz"
CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF", "TIFF"}
EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}

MAX_FILES = 2000  # images in one set
MAX_FILE_BYTES = 20 * 2**20  # one encoded image
MAX_TOTAL_BYTES = 500 * 2**20  # all images of a set, zip entries counted uncompressed
MAX_PIXELS = 40_000_000  # one decoded image (decompression-bomb guard)
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of one zip entry (zip-bomb guard)
MAX_HF_IMAGES = 600  # images taken from one label of a Hugging Face dataset
HF_PREFIX = "hf:"
MIN_IMAGES_FOR_HOLDOUT = 10
HOLDOUT_FRACTION = 0.2  # every 5th image (sorted by name) is held out


@dataclass(frozen=True)
class ImageSet:
    """A forget or retain set at one model's resolution.

    `train`/`test` are (N, C, H, W) float32 in [0, 1]. Labels index `CLASSES` and are None for
    user sets. `held_out` is False when the set was too small to hold images out, in which case
    `test` is `train` and evaluation uses the unlearned images themselves.
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None
    test_labels: torch.Tensor | None
    held_out: bool
    sha256: str

    def summary(self) -> dict:
        return {
            "name": self.name,
            "train": len(self.train),
            "test": len(self.test),
            "held_out": self.held_out,
            "labelled": self.test_labels is not None,
            "sha256": self.sha256,
        }


def tensor_digest(t: torch.Tensor) -> str:
    """SHA-1 of a tensor's values: the key of the caches whose results depend on the images only."""
    return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class DigestCache:
    """What a computation gave for the last `keep` tensors it was asked about, by their values
    (`tensor_digest`): for results that depend on the images alone."""

    def __init__(self, keep: int):
        self.keep, self._seen = keep, {}

    def get(self, t: torch.Tensor, compute):
        """`compute()`'s result for `t`, computed the first time these values come."""
        key = tensor_digest(t)
        if key not in self._seen:
            self._seen[key] = compute()
            while len(self._seen) > self.keep:  # the oldest go first
                del self._seen[next(iter(self._seen))]
        return self._seen[key]


def _hashes(s: ImageSet) -> list[bytes]:
    """One digest per distinct image of the set (a small set's test images are its train images)."""
    images = torch.cat([s.train, s.test]) if s.held_out else s.train
    return [hashlib.sha1(x.numpy().tobytes()).digest() for x in images]


def overlap(a: ImageSet, b: ImageSet) -> int:
    """How many of `a`'s images are also in `b`, by content: the images as the model sees them,
    so the same picture under two names or formats counts."""
    theirs = set(_hashes(b))
    return sum(h in theirs for h in _hashes(a))


def builtin_names() -> list[str]:
    return ["builtin:cat", "builtin:dog", "builtin:not-cat", "builtin:others", "builtin:all"] + [
        f"builtin:{c}" for c in CLASSES if c not in ("cat", "dog")
    ]


@lru_cache(maxsize=1)
def _animals() -> dict[str, np.ndarray]:
    if not ASSETS.exists():
        raise FileNotFoundError(f"{ASSETS} is missing; run scripts/build_animal_assets.py")
    with np.load(ASSETS, allow_pickle=False) as z:
        return {k: z[k] for k in ("images", "labels", "is_train")}


def builtin_classes(name: str) -> list[int]:
    """The class indices (into CLASSES) of a built-in set such as `builtin:not-cat` or `builtin:bear+cow`."""
    key = name.removeprefix("builtin:")
    if "+" in key:  # several sets as one: their classes, each once
        parts = [builtin_classes(f"builtin:{part}") for part in key.split("+")]
        return sorted({c for part in parts for c in part})
    if key == "all":
        return list(range(len(CLASSES)))
    if key == "others":  # the proxy retain set: every class but cat and dog
        return [i for i, c in enumerate(CLASSES) if c not in ("cat", "dog")]
    if key in CLASSES:
        return [CLASSES.index(key)]
    if key.startswith("not-") and key.removeprefix("not-") in CLASSES:  # every class but one: the paper's retain set
        return [i for i, c in enumerate(CLASSES) if c != key.removeprefix("not-")]
    raise UserInputError(f"unknown built-in set {name!r}; choose from {', '.join(builtin_names())}")


def _to_model_tensor(gray: np.ndarray, size: int, channels: int) -> torch.Tensor:
    """(N, 32, 32) uint8 -> (N, C, size, size) float in [0, 1]."""
    x = torch.from_numpy(gray).float().div(255).unsqueeze(1)
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return x.clamp(0, 1).repeat(1, channels, 1, 1)


def load_builtin(name: str, size: int = 32, channels: int = 1) -> ImageSet:
    classes = builtin_classes(name)
    a = _animals()
    chosen = np.isin(a["labels"], classes)
    parts = {}
    for split, keep in (("train", chosen & a["is_train"]), ("test", chosen & ~a["is_train"])):
        parts[split] = (_to_model_tensor(a["images"][keep], size, channels), torch.from_numpy(a["labels"][keep].astype(np.int64)))
    digest = hashlib.sha256(a["images"][chosen & a["is_train"]].tobytes()).hexdigest()
    return ImageSet(name, parts["train"][0], parts["test"][0], parts["train"][1], parts["test"][1], True, digest)


# ---------------------------------------------------------------- user files


def _open_image(data: bytes, label: str, size: int, channels: int) -> torch.Tensor:
    """Decode one untrusted image to (C, size, size) in [0, 1]; raise naming `label` on failure."""
    if not data:
        raise UserInputError(f"{label}: empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise UserInputError(f"{label}: file is {len(data) / 2**20:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit")
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise UserInputError(f"{label}: image is too large (decompression bomb guard)") from None
    except Exception:
        raise UserInputError(f"{label}: not an image (or a format we cannot read)") from None
    if im.format not in FORMATS:
        raise UserInputError(f"{label}: {im.format} images are not supported; use PNG, JPEG, WebP, BMP, GIF or TIFF")
    if im.width * im.height > MAX_PIXELS:
        raise UserInputError(f"{label}: {im.width}x{im.height} pixels is over the {MAX_PIXELS:,}-pixel limit")
    try:
        im.seek(0)  # first frame of an animation
        im.load()
        im = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError:
        raise UserInputError(f"{label}: image is too large (decompression bomb guard)") from None
    except Exception:
        raise UserInputError(f"{label}: truncated or corrupt image") from None
    return pil_to_tensor(im, size, channels)


def pil_to_tensor(im: Image.Image, size: int, channels: int) -> torch.Tensor:
    """Any PIL mode -> (C, size, size) float in [0, 1]: resize the short side, centre-crop.

    16-bit and float images are scaled by their range; transparency is composited over black,
    the background of the built-in silhouettes.
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / peak * 255, 0, 255).astype(np.uint8), "L")
    if im.mode in ("P", "LA", "PA", "RGBA", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im.alpha_composite(rgba)
    im = im.convert("L" if channels == 1 else "RGB")
    im = ImageOps.fit(im, (size, size), method=Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if channels == 1 else t.permute(2, 0, 1)


def _is_ignored(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return "__MACOSX" in parts or parts[-1] in IGNORED_NAMES or parts[-1].startswith("._")


def _zip_entries(path: Path) -> list[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise UserInputError(f"{path.name}: not a readable zip archive") from None
    entries, total = [], 0
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir() and not _is_ignored(i.filename)]
        if len(infos) > MAX_FILES:
            raise UserInputError(f"{path.name}: {len(infos)} files, over the {MAX_FILES}-file limit")
        for info in infos:
            name = info.filename
            label = f"{path.name}:{name}"
            pure = PurePosixPath(name.replace("\\", "/"))
            if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
                raise UserInputError(f"{label}: unsafe path in zip (absolute or '..')")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UserInputError(f"{label}: links are not allowed in zip archives")
            if pure.suffix.lower() == ".zip":
                raise UserInputError(f"{label}: a zip inside a zip; unpack the inner one and upload its images")
            if info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 20:
                raise UserInputError(
                    f"{label}: compressed {info.file_size // max(info.compress_size, 1)}:1, a zip bomb? (over {MAX_ZIP_RATIO}:1)"
                )
            if info.file_size > MAX_FILE_BYTES:
                raise UserInputError(f"{label}: {info.file_size / 2**20:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise UserInputError(f"{path.name}: more than {MAX_TOTAL_BYTES // 2**20} MB of images")
            try:
                entries.append((label, zf.read(info)))
            except Exception:
                raise UserInputError(f"{label}: corrupt zip entry") from None
    return entries


def _file_entries(paths: Iterable[Path]) -> list[tuple[str, bytes]]:
    paths = [p for p in paths if not _is_ignored(p.name)]
    if len(paths) > MAX_FILES:
        raise UserInputError(f"{len(paths)} files, over the {MAX_FILES}-file limit")
    entries, total = [], 0
    for p in paths:
        if p.is_symlink():
            raise UserInputError(f"{p.name}: links are not allowed")
        if not p.is_file():
            raise UserInputError(f"{p}: not a file")
        if p.suffix.lower() == ".zip":
            raise UserInputError(f"{p.name}: a zip among other files; give the zip on its own, or unpack it")
        n = p.stat().st_size
        if n > MAX_FILE_BYTES:
            raise UserInputError(f"{p.name}: {n / 2**20:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit")
        total += n
        if total > MAX_TOTAL_BYTES:
            raise UserInputError(f"more than {MAX_TOTAL_BYTES // 2**20} MB of images")
        entries.append((p.name, p.read_bytes()))
    return entries


def _gather(source: str | Path | list) -> tuple[str, list[tuple[str, bytes]]]:
    if isinstance(source, (list, tuple)):
        files = [Path(p) for p in source]
        if len(files) == 1 and files[0].suffix.lower() == ".zip":
            return _gather(files[0])
        zips = [f.name for f in files if f.suffix.lower() == ".zip"]
        if zips:
            raise UserInputError(f"{zips[0]}: upload a zip on its own, not mixed with other files")
        return f"{len(files)} files", _file_entries(files)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink())
        return path.name, _file_entries(files)
    if path.is_file() and path.suffix.lower() == ".zip":
        return path.name, _zip_entries(path)
    if path.is_file():
        return path.name, _file_entries([path])
    raise UserInputError(f"{source}: no such built-in set, folder, zip or image (built-ins: {', '.join(builtin_names()[:4])}, ...)")


def load_user_images(source: str | Path | list, size: int, channels: int) -> ImageSet:
    name, entries = _gather(source)
    entries.sort(key=lambda e: e[0])
    if not entries:
        raise UserInputError(f"{name}: contains no images")
    images = torch.stack([_open_image(data, label, size, channels) for label, data in entries])
    digest = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for _, d in entries)).hexdigest()
    return _held_out(name, images, digest)


def _held_out(name: str, images: torch.Tensor, digest: str) -> ImageSet:
    """An unlabelled set: every fifth image held out when there are enough."""
    if len(images) >= MIN_IMAGES_FOR_HOLDOUT:
        test_idx = torch.arange(len(images)) % round(1 / HOLDOUT_FRACTION) == round(1 / HOLDOUT_FRACTION) - 1
        return ImageSet(name, images[~test_idx], images[test_idx], None, None, True, digest)
    return ImageSet(name, images, images, None, None, False, digest)


def parse_hf(name: str) -> tuple[str, str]:
    """`hf:<dataset>:<label>` -> (dataset, label)."""
    dataset, _, label = name.removeprefix(HF_PREFIX).rpartition(":")
    if not dataset or not label:
        raise UserInputError(f"{name}: a Hugging Face set is hf:<dataset>:<label>, e.g. hf:microsoft/cats_vs_dogs:cat")
    return dataset, label


def hf_display_name(name: str) -> str:
    """How a Hugging Face set is named in results: a Hub dataset by its id, a local dataset folder
    by the folder's name (never a server path)."""
    dataset, label = parse_hf(name)
    return f"{HF_PREFIX}{Path(dataset).name}:{label}" if Path(dataset).exists() else name


def _hf_columns(features) -> tuple[str, str, list[str] | None]:
    """The image column, the label column and its class names (None for a plain column)."""
    from datasets import ClassLabel
    from datasets import Image as ImageFeature

    images = [k for k, f in features.items() if isinstance(f, ImageFeature)]
    labels = [k for k, f in features.items() if isinstance(f, ClassLabel)] or [k for k in features if k in ("label", "labels")]
    if not images or not labels:
        raise UserInputError(f"this dataset has no image column and label column (columns: {', '.join(features)})")
    f = features[labels[0]]
    return images[0], labels[0], list(f.names) if isinstance(f, ClassLabel) else None


@lru_cache(maxsize=8)
def _hf_images(name: str, size: int, channels: int) -> ImageSet:
    dataset, label = parse_hf(name)
    try:
        from datasets import load_dataset
    except ImportError:
        raise UserInputError("Hugging Face sets need the `datasets` package (pip install datasets)") from None
    try:
        splits = load_dataset(dataset)
    except Exception as e:  # offline and not cached, no such dataset, unreadable folder
        raise UserInputError(f"{name}: could not load dataset {dataset!r} ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    ds = splits["train"] if "train" in splits else splits[next(iter(splits))]
    image_col, label_col, names = _hf_columns(ds.features)
    if names is not None:
        lowered = [n.lower() for n in names]
        if label.lower() in lowered:
            wanted = lowered.index(label.lower())
        elif label.isdigit() and int(label) < len(names):
            wanted = int(label)
        else:
            raise UserInputError(f"{name}: no label {label!r} in {dataset}; its labels: {', '.join(names)}")
    else:
        wanted = label
    picked = [i for i, v in enumerate(ds[label_col]) if (v == wanted or str(v) == str(wanted))][:MAX_HF_IMAGES]
    if not picked:
        raise UserInputError(f"{name}: no images with label {label!r} in {dataset}")
    tensors = []
    for i, im in enumerate(ds.select(picked)[image_col]):
        if im.width * im.height > MAX_PIXELS:
            raise UserInputError(f"{name}: image {picked[i]} is {im.width}x{im.height} pixels, over the {MAX_PIXELS:,}-pixel limit")
        tensors.append(pil_to_tensor(ImageOps.exif_transpose(im), size, channels))
    images = torch.stack(tensors)
    digest = hashlib.sha256(images.numpy().tobytes()).hexdigest()
    return _held_out(hf_display_name(name), images, digest)


def load_image_set(source: str | Path | list, size: int = 32, channels: int = 1) -> ImageSet:
    """A built-in name (`builtin:cat`), a Hugging Face set (`hf:<dataset>:<label>`), a folder, a
    zip, an image file or a list of files."""
    if isinstance(source, str) and source.startswith("builtin:"):
        return load_builtin(source, size, channels)
    if isinstance(source, str) and source.startswith(HF_PREFIX):
        return _hf_images(source, size, channels)
    return load_user_images(source, size, channels)
