import io
import stat
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from unlearn_core.data import sets
from unlearn_core.data.sets import CLASSES, DigestCache, load_image_set
from unlearn_core.errors import UserInputError


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_builtin_sets_use_the_fixed_split():
    cat = load_image_set("builtin:cat")
    assert cat.train.shape == (792, 1, 32, 32) and cat.test.shape == (200, 1, 32, 32)
    assert cat.held_out and (cat.train_labels == CLASSES.index("cat")).all()
    assert 0 <= cat.train.min() and cat.train.max() <= 1 and cat.train.max() > 0.9
    others = load_image_set("builtin:others")
    assert len(others.train) == 6127 and set(others.test_labels.tolist()) == set(range(10)) - {2, 4}
    assert len(load_image_set("builtin:all").test) == 2000
    # the paper's retain set: every class but the forgotten one
    not_cat = load_image_set("builtin:not-cat")
    assert len(not_cat.train) == 7716 - 792 and len(not_cat.test) == 1800 and CLASSES.index("cat") not in not_cat.test_labels
    with pytest.raises(UserInputError, match="unknown built-in set"):
        load_image_set("builtin:not-unicorn")
    # several joined: a proxy retain set of some of those classes
    joined = load_image_set("builtin:bear+bird+bear")
    assert set(joined.test_labels.tolist()) == {CLASSES.index("bear"), CLASSES.index("bird")} and len(joined.test) == 400
    with pytest.raises(UserInputError, match="unknown built-in set"):
        load_image_set("builtin:bear+unicorn")
    # train and test images are distinct
    flat_train = {bytes(x.numpy().tobytes()) for x in cat.train}
    assert not any(bytes(x.numpy().tobytes()) in flat_train for x in cat.test[:50])


def test_builtin_resizes_and_replicates_channels():
    s = load_image_set("builtin:dog", size=64, channels=3)
    assert s.train.shape == (797, 3, 64, 64)
    assert torch.equal(s.train[:, 0], s.train[:, 2])


def test_unknown_builtin_is_a_user_error():
    with pytest.raises(UserInputError, match="unknown built-in set"):
        load_image_set("builtin:unicorn")


def _write_all_kinds(folder):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    rgb.save(folder / "a.png")
    rgb.save(folder / "b.jpg")
    rgb.save(folder / "c.webp")
    rgb.save(folder / "d.bmp")
    rgb.convert("CMYK").save(folder / "e.tif")
    rgb.convert("P").save(folder / "f.gif")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "g.png")
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) * 20).astype(np.uint16)).save(folder / "h.png")  # 16-bit
    rgb.convert("L").save(folder / "i.png")
    rgb.convert("1").save(folder / "j.png")


def test_folder_of_every_format_and_mode(tmp_path):
    _write_all_kinds(tmp_path)
    s = load_image_set(tmp_path, size=32, channels=3)
    assert s.train.shape[1:] == (3, 32, 32) and len(s.train) + len(s.test) == 10
    assert s.held_out and len(s.test) == 2  # every fifth image held out
    assert s.train_labels is None
    g = load_image_set(tmp_path, size=16, channels=1)
    assert g.train.shape[1:] == (1, 16, 16)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    arr = np.full((8, 8), 32768, np.uint16)
    Image.fromarray(arr).save(tmp_path / "x.png")
    s = load_image_set(tmp_path / "x.png", size=8, channels=1)
    assert abs(s.train.mean().item() - 0.5) < 0.01


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40), np.uint8)
    arr[:, :20] = 255  # left half white, landscape
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "r.jpg", exif=exif, quality=100)
    x = load_image_set(tmp_path / "r.jpg", size=20, channels=1).train[0, 0]
    # after rotation the white half is on top
    assert x[:8].mean() > 0.9 and x[12:].mean() < 0.1


def test_gif_first_frame(tmp_path):
    frames = [Image.new("L", (8, 8), 255), Image.new("L", (8, 8), 0)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert load_image_set(tmp_path / "anim.gif", 8, 1).train.mean() > 0.9


def test_small_set_is_evaluated_on_itself(tmp_path):
    for i in range(3):
        Image.new("L", (8, 8), i * 50).save(tmp_path / f"{i}.png")
    s = load_image_set(tmp_path, 8, 1)
    assert not s.held_out and s.test is s.train and len(s.train) == 3


def test_list_of_files_and_zip(tmp_path):
    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.png"
        Image.new("L", (8, 8), 60 * i).save(p)
        paths.append(p)
    assert len(load_image_set(paths, 8, 1).train) == 4
    z = tmp_path / "set.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in paths:
            zf.write(p, f"imgs/{p.name}")
        zf.writestr("__MACOSX/._0.png", b"junk")  # ignored
    s = load_image_set(z, 8, 1)
    assert len(s.train) == 4 and s.sha256 == load_image_set(z, 8, 1).sha256


# ------------------------------------------------------------------------- rejections


def test_non_image_is_rejected_by_name(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserInputError, match="notes.txt: not an image"):
        load_image_set(tmp_path)


def test_truncated_image_is_rejected(tmp_path):
    good = _png_bytes(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)))
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserInputError, match="cut.png: truncated or corrupt"):
        load_image_set(tmp_path / "cut.png")


def _set_png_size(png: bytes, w: int, h: int) -> bytes:
    """Rewrite the IHDR width/height (and its CRC) of a PNG: a tiny file claiming a huge image."""
    ihdr = bytearray(png[12:29])
    ihdr[4:12] = struct.pack(">II", w, h)
    crc = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return png[:12] + bytes(ihdr) + crc + png[33:]


def test_large_image_is_rejected(tmp_path):
    (tmp_path / "large.png").write_bytes(_set_png_size(_png_bytes(Image.new("L", (8, 8))), 8000, 8000))
    with pytest.raises(UserInputError, match="large.png: 8000x8000 pixels is over"):
        load_image_set(tmp_path / "large.png")


def test_decompression_bomb_is_rejected(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_set_png_size(_png_bytes(Image.new("L", (8, 8))), 50000, 50000))
    with pytest.raises(UserInputError, match="bomb.png: image is too large"):
        load_image_set(tmp_path / "bomb.png")


@pytest.mark.parametrize("entry", ["../evil.png", "/abs/evil.png", "a/../../evil.png", "C:/evil.png"])
def test_zip_with_unsafe_paths_is_rejected(tmp_path, entry):
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(entry, _png_bytes(Image.new("L", (8, 8))))
    with pytest.raises(UserInputError, match="unsafe path"):
        load_image_set(z)


def test_zip_with_link_is_rejected(tmp_path):
    z = tmp_path / "link.zip"
    info = zipfile.ZipInfo("link.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UserInputError, match="link.png: links are not allowed"):
        load_image_set(z)


def test_symlink_in_folder_is_rejected(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "real.png")
    (tmp_path / "alias.png").symlink_to(tmp_path / "real.png")
    with pytest.raises(UserInputError, match="alias.png: links are not allowed"):
        load_image_set(tmp_path)


def test_caps_on_count_and_bytes(tmp_path, monkeypatch):
    for i in range(3):
        Image.new("L", (8, 8), i).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(sets, "MAX_FILES", 2)
    with pytest.raises(UserInputError, match="over the 2-file limit"):
        load_image_set(tmp_path)
    monkeypatch.setattr(sets, "MAX_FILES", 100)
    monkeypatch.setattr(sets, "MAX_TOTAL_BYTES", 100)
    with pytest.raises(UserInputError, match="more than 0 MB"):
        load_image_set(tmp_path)


def test_oversized_file_is_rejected(tmp_path, monkeypatch):
    Image.new("L", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(sets, "MAX_FILE_BYTES", 10)
    with pytest.raises(UserInputError, match="big.png: .* over the"):
        load_image_set(tmp_path)


def test_missing_source_and_empty_folder(tmp_path):
    with pytest.raises(UserInputError, match="no such built-in set, folder, zip or image"):
        load_image_set(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="contains no images"):
        load_image_set(tmp_path / "empty")


def test_nothing_is_written_while_loading(tmp_path):
    z = tmp_path / "set.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.png", _png_bytes(Image.new("L", (8, 8))))
    before = sorted(tmp_path.rglob("*"))
    load_image_set(z, 8, 1)
    assert sorted(tmp_path.rglob("*")) == before


def hf_dataset_folder(root, per_label: int = 12):
    """A local stand-in for a Hub image dataset, in the format the Hub serves (parquet with the
    `datasets` features: an Image column and a ClassLabel column), as `datasets` writes it."""
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature

    images, labels = [], []
    for i in range(per_label):
        for label, colour in ((0, (230, 120, 30)), (1, (60, 90, 200))):
            images.append(Image.new("RGB", (48 + i, 40), (colour[0], colour[1] - i, colour[2])))
            labels.append(label)
    features = Features({"image": ImageFeature(), "labels": ClassLabel(names=["cat", "dog"])})
    ds = Dataset.from_dict({"image": images, "labels": labels}, features=features)
    (root / "data").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return root


def test_hugging_face_set_one_label_with_a_held_out_split(tmp_path):
    folder = hf_dataset_folder(tmp_path / "pets")
    s = load_image_set(f"hf:{folder}:cat", 32, 3)
    assert len(s.train) + len(s.test) == 12 and len(s.test) == 2 and s.held_out
    assert s.train_labels is None  # its labels are not the probe's classes
    assert s.train[:, 0].mean() > s.train[:, 2].mean()  # the orange ones, in colour
    dog = load_image_set(f"hf:{folder}:DOG", 32, 1)
    assert dog.train.shape[1] == 1 and dog.sha256 != s.sha256
    with pytest.raises(UserInputError, match="its labels: cat, dog"):
        load_image_set(f"hf:{folder}:unicorn")
    with pytest.raises(UserInputError, match="could not load dataset"):
        load_image_set(f"hf:{tmp_path / 'nothing'}:cat")
    with pytest.raises(UserInputError, match="hf:<dataset>:<label>"):
        load_image_set("hf:nolabel")


def test_digest_cache_computes_once_per_values_and_keeps_the_last_few():
    cache, calls = DigestCache(keep=2), []
    a, b, c = torch.zeros(3), torch.ones(3), torch.full((3,), 2.0)
    for t in (a, a.clone(), b, c, a):  # a copy has the same values; a is the oldest when c comes
        cache.get(t, lambda t=t: calls.append(t.sum().item()) or t.sum())
    assert calls == [0.0, 3.0, 6.0, 0.0]
    assert cache.get(c, lambda: None) == 6.0 and calls == [0.0, 3.0, 6.0, 0.0]
