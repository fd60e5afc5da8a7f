"""Bad input, through the library and through the app's API: each kind is refused with one clear
message naming the problem, or handled (the kinds a camera or an editor makes), and the app keeps
serving. Also overlapping sets, unreadable checkpoints and out-of-range settings."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unlearn_core.data.sets import load_image_set
from unlearn_core.errors import UserInputError


def _png(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def _jpeg(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _noise(w: int = 64, h: int = 64, mode: str = "RGB") -> Image.Image:
    arr = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def _claims_size(png: bytes, w: int, h: int) -> bytes:
    """A small PNG whose header claims w x h pixels (CRC fixed)."""
    ihdr = bytearray(png[12:29])
    ihdr[4:12] = struct.pack(">II", w, h)
    return png[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF) + png[33:]


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _exif_rotated() -> bytes:
    im = Image.new("RGB", (60, 30), (255, 255, 255))
    im.paste((0, 0, 0), (0, 0, 30, 30))  # left half black
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    return _jpeg(im, exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [Image.new("L", (32, 32), v) for v in (0, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _palette_with_transparency() -> bytes:
    im = Image.new("P", (32, 32), 0)
    im.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    im.paste(1, (8, 8, 24, 24))
    return _png(im, transparency=0)


_PHOTO = _jpeg(_noise(256, 256))
# Each refused kind: name -> (files {name: bytes}, words the message must contain)
REFUSED = {
    "zero-byte file": ({"empty.png": b""}, "empty.png: empty file"),
    "truncated PNG": ({"cut.png": _png(_noise())[:400]}, "cut.png: truncated or corrupt"),
    "truncated JPEG": ({"cut.jpg": _PHOTO[: len(_PHOTO) // 2]}, "cut.jpg: truncated or corrupt"),
    "text named .png": ({"notes.png": b"just some text\n" * 20}, "notes.png: not an image"),
    "HTML named .png": ({"page.png": b"<!doctype html><html><script>alert(1)</script></html>"}, "page.png: not an image"),
    "SVG": ({"drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>'}, "drawing.svg: not an image"),
    "decompression bomb": ({"bomb.png": _claims_size(_png(Image.new("L", (8, 8))), 20000, 20000)}, "bomb.png: image is too large"),
    "zip bomb": ({"bomb.zip": _zip([("big.png", b"\0" * (40 << 20))])}, "a zip bomb"),
    "nested zip": ({"outer.zip": _zip([("inner.zip", _zip([("a.png", _png(_noise()))]))])}, "a zip inside a zip"),
    "zip with ../": ({"up.zip": _zip([("../evil.png", _png(_noise()))])}, "unsafe path in zip"),
    "zip with an absolute path": ({"abs.zip": _zip([("/etc/evil.png", _png(_noise()))])}, "unsafe path in zip"),
    "empty set": ({"readme.txt.ignored": b""}, "contains no images"),
}
# Each handled kind: name -> (files, a check on the loaded (N, C, 32, 32) images)
HANDLED = {
    "animated GIF (first frame)": ({"anim.gif": _animated_gif()}, lambda x: x.max() < 0.01),
    "16-bit PNG": ({"deep.png": _png(Image.fromarray(np.full((32, 32), 40000, np.uint16)))}, lambda x: 0.55 < x.mean() < 0.65),
    "CMYK JPEG": ({"print.jpg": _jpeg(Image.new("CMYK", (40, 40), (0, 0, 0, 0)))}, lambda x: x.mean() > 0.9),
    "palette with transparency": ({"pal.png": _palette_with_transparency()}, lambda x: 0.1 < x.mean() < 0.5),
    "EXIF-rotated photo": ({"phone.jpg": _exif_rotated()}, lambda x: x[0, 0, :8].mean() < 0.2 and x[0, 0, -8:].mean() > 0.8),
    "1x1 image": ({"dot.png": _png(Image.new("L", (1, 1), 255))}, lambda x: x.min() > 0.99),
    "1x4000 image": ({"strip.png": _png(Image.new("L", (1, 4000), 128))}, lambda x: abs(x.mean() - 0.5) < 0.02),
    "non-UTF-8 and duplicate names in a zip": (
        {
            "names.zip": _zip(
                [
                    (zipfile.ZipInfo("caf\xe9.png"), _png(Image.new("L", (8, 8), 255))),
                    ("a.png", _png(Image.new("L", (8, 8)))),
                    ("a.png", _png(Image.new("L", (8, 8)))),
                ]
            )
        },
        lambda x: len(x) == 3,
    ),  # fmt: skip
}


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    """The files in a new folder; the set is that folder, or the zip itself when it is one zip
    (as an upload of one zip is read)."""
    root.mkdir(parents=True)
    for name, data in files.items():
        if not name.endswith(".ignored"):
            (root / name).write_bytes(data)
    names = [n for n in files if not n.endswith(".ignored")]
    return root / names[0] if len(names) == 1 and names[0].endswith(".zip") else root


@pytest.mark.parametrize("kind", REFUSED)
def test_bad_input_is_refused_with_one_clear_message(tmp_path, kind):
    files, words = REFUSED[kind]
    folder = _folder(tmp_path / "set", files)
    with pytest.raises(UserInputError, match=words.replace("(", r"\(").replace(".", r"\.")) as e:
        load_image_set(folder)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", HANDLED)
def test_odd_but_valid_images_are_handled(tmp_path, kind):
    files, check = HANDLED[kind]
    s = load_image_set(_folder(tmp_path / "set", files), 32, 1)
    x = s.train
    assert x.shape[1:] == (1, 32, 32) and torch.isfinite(x).all() and check(x), kind


def test_same_or_overlapping_sets_are_run_and_said(tmp_path):
    from unlearn_core.run.engine import UnlearnConfig
    from unlearn_core.run.pipeline import RunSpec, prepare

    cats = load_image_set("builtin:cat").test[:12]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for i, x in enumerate(cats):
        png = _png(Image.fromarray((x[0].numpy() * 255).astype(np.uint8)))
        (a / f"{i}.png").write_bytes(png)
        if i < 4:
            (b / f"copy-{i}.png").write_bytes(png)  # the same pictures under other names
    (b / "other.png").write_bytes(_png(Image.new("L", (32, 32), 90)))
    spec = RunSpec(forget=str(a), retain=str(b), mask="center50", config=UnlearnConfig(steps=1), eval_masks=[], image_metrics=False)
    notes = " ".join(prepare(spec).notes)
    assert "4 of the forget set's 12 images are also in the retain set" in notes
    notes = " ".join(prepare(RunSpec(forget=str(a), retain=str(a), mask="center50", eval_masks=[], image_metrics=False)).notes)
    assert "all of the forget set's 12 images are also in the retain set" in notes


# ------------------------------------------------------------------------------ checkpoints


def _mae_folder(tmp_path) -> Path:
    from unlearn_core.models.mae import PRESETS, MAEModel

    folder = tmp_path / "mae"
    MAEModel.from_config(PRESETS["tiny"], seed=0).save(folder)
    return folder


def test_corrupt_checkpoint_pickles_and_wrong_shapes_are_refused(tmp_path):
    from unlearn_core.models.checkpoints import load_model

    folder = _mae_folder(tmp_path)
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated download
    with pytest.raises(UserInputError, match="mae: cannot"):
        load_model("mae", folder)
    # a folder carrying only pickled weights: never unpickled
    weights.unlink()
    torch.save({"payload": _Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(UserInputError, match="no safetensors weights"):
        load_model("mae", folder)
    # a config whose shapes do not fit the weights
    folder = _mae_folder(tmp_path / "2")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_size": 48}))
    with pytest.raises(UserInputError, match="mae: (cannot load it as a ViTMAE|checkpoint does not match)"):
        load_model("mae", folder)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"steps": -5}, "at least 1"),
        ({"steps": 10**9}, "at most 100,000"),
        ({"alpha": "nan"}, "alpha must be zero or positive"),
        ({"alpha": -1}, "alpha must be zero or positive"),
        ({"lr": "abc"}, "learning rate must be a number"),
        ({"lr": 0}, "learning rate must be positive"),
        ({"seed": -3}, "seed must be a whole number"),
        ({"seed": 2.5}, "seed must be a whole number"),
        ({"method": "forget_everything"}, "unknown method"),
        ({"model": "gan"}, "unknown model"),
        ({"mask": "middle"}, "unknown mask"),
        ({"mask": "Dockerfile"}, "unknown mask"),  # a file beside app.py: not even looked at
        ({"mask": "random"}, "random is a training mask"),
        ({"train_mask": "sometimes"}, "unknown training mask"),
        ({"sampling_steps": 3}, "generates in one pass"),
        ({"checkpoint": "/etc"}, "only reads the embedded checkpoints"),
        ({"checkpoint": "../../../../etc"}, "only reads the embedded checkpoints"),
        ({"forget": "/etc/passwd"}, "only reads the embedded checkpoints"),
        ({"forget": "hf:someone/anything:cat"}, "only the Hugging Face sets its operator named"),
    ],
)
def test_bad_settings_through_the_app_function(settings, words, monkeypatch):
    import app

    monkeypatch.setattr(app, "EVAL_MASKS", [])
    args = {"forget": "builtin:cat", "retain": "builtin:dog", "steps": 2} | settings
    with pytest.raises(app.gr.Error, match=words):
        app.unlearn_api(**args)


@pytest.mark.slow
def test_batch_size_limits_on_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    for batch, words in (("0", "at least 1"), ("1000000", "batch size must be at most 4,096")):
        r = subprocess.run(
            [sys.executable, "-m", "unlearn_core", "unlearn", "--forget", "builtin:cat", "--retain", "builtin:dog", "--batch-size", batch,
             "--out", str(tmp_path / "o")],
            capture_output=True, text=True, cwd=root, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ------------------------------------------------------------------------------ through the API


@pytest.mark.slow
def test_every_bad_input_through_the_api_and_the_app_keeps_serving(server, tmp_path, monkeypatch):
    """The same files in folders the operator allowed, named through `/unlearn` by gradio_client."""
    from gradio_client import Client

    monkeypatch.setenv("UNLEARN_ALLOWED_DIRS", str(tmp_path))
    client = Client(server, verbose=False)
    refused = 0
    for i, (kind, (files, words)) in enumerate(REFUSED.items()):
        folder = _folder(tmp_path / f"k{i}", files)
        with pytest.raises(Exception) as e:
            client.predict(forget=str(folder), retain="builtin:dog", steps=2, api_name="/unlearn")
        assert words in str(e.value), (kind, str(e.value))
        refused += 1
    for settings, words in (
        ({"steps": -1}, "at least 1"),
        ({"lr": "abc"}, "must be a number"),
        ({"checkpoint": "/proc/self"}, "only reads"),
    ):
        with pytest.raises(Exception, match=words):
            client.predict(forget="builtin:cat", retain="builtin:dog", **settings, api_name="/unlearn")
    assert refused == len(REFUSED)
    # still serving: a good call right after
    result = client.predict(forget="builtin:cat", retain="builtin:dog", steps=2, api_name="/unlearn")
    assert result["steps"] == 2
